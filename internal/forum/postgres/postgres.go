// Package postgres is the forum on PostgreSQL (pgx), for a lab shared by
// several machines, with full-text search over a generated tsvector
// (english) ranked by ts_rank. Its tables are named forum_* and its
// migrations are recorded in their own goose table (forum_goose_version),
// so it may share a database with the ledger.
//
// Adds take a transaction-scoped advisory lock, so seqs are committed in
// order and a reader paging by cursor never skips a finding, even with
// several lab processes on one database. This package stores and finds; it
// never judges a finding (the lab does) and passes a caller's search text
// only to websearch_to_tsquery, which accepts any text.
package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/aar-lab/aar/internal/forum"
)

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable is where goose records the forum's migrations, apart from
// the ledger's goose_db_version.
const VersionTable = "forum_goose_version"

const (
	// addLock is the advisory lock key that serialises adds ("aarforum").
	addLock = 0x616172666f72756d
	// maxLimit caps a page or a search.
	maxLimit = 1000
	// maxTerms caps the words of a search query.
	maxTerms = 32
)

// DB is a forum in a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

var _ forum.Store = (*DB)(nil)

// Open connects to url (postgres://...) and migrates the forum's tables.
func Open(ctx context.Context, url string) (*DB, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open forum database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open forum database: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{pool: pool, now: time.Now}, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub, goose.WithTableName(VersionTable))
	if err != nil {
		return fmt.Errorf("forum migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("forum migrations: %w", err)
	}
	return nil
}

// findingColumns are scanned by scanFinding; f is forum_findings.
const findingColumns = `f.seq, f.id, f.campaign, f.author, f.type, f.title, f.body, f.family,
	f.metrics, f.config, f.worked, f.submission, f.snapshot, f.card, f.at,
	(SELECT COALESCE(SUM(v.value), 0) FROM forum_votes v WHERE v.finding = f.id),
	(SELECT COUNT(*) FROM forum_comments c WHERE c.finding = f.id)`

func scanFinding(row pgx.Row) (forum.Finding, error) {
	var f forum.Finding
	var metrics, config, card *string
	var score, comments int64
	err := row.Scan(&f.Seq, &f.ID, &f.Campaign, &f.Author, &f.Type, &f.Title, &f.Body, &f.Family,
		&metrics, &config, &f.Worked, &f.Submission, &f.Snapshot, &card, &f.At, &score, &comments)
	if err != nil {
		return f, err
	}
	f.At = f.At.UTC()
	if metrics != nil {
		f.Metrics = json.RawMessage(*metrics)
	}
	if config != nil {
		f.Config = json.RawMessage(*config)
	}
	if card != nil {
		f.Card = new(forum.MethodCard)
		if err := json.Unmarshal([]byte(*card), f.Card); err != nil {
			return f, fmt.Errorf("finding %s: bad method card: %w", f.ID, err)
		}
	}
	f.Score, f.Comments = int(score), int(comments)
	return f, nil
}

func scanFindings(rows pgx.Rows) ([]forum.Finding, error) {
	defer rows.Close()
	out := []forum.Finding{}
	for rows.Next() {
		f, err := scanFinding(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Add implements forum.Store.
func (db *DB) Add(ctx context.Context, f forum.Finding) (forum.Finding, error) {
	card, err := forum.PrepareAdd(&f, db.now())
	if err != nil {
		return f, err
	}

	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return f, fmt.Errorf("add finding %s: %w", f.ID, err)
	}
	defer tx.Rollback(ctx)
	// Without the lock, a seq drawn earlier could commit later, behind a
	// reader's cursor.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(addLock)); err != nil {
		return f, fmt.Errorf("add finding %s: %w", f.ID, err)
	}
	err = tx.QueryRow(ctx, `INSERT INTO forum_findings
		(id, campaign, author, type, title, body, family, metrics, config, worked, submission, snapshot, card, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (id) DO NOTHING RETURNING seq`,
		f.ID, f.Campaign, f.Author, f.Type, f.Title, f.Body, f.Family, forum.NullText(f.Metrics), forum.NullText(f.Config),
		f.Worked, f.Submission, f.Snapshot, forum.NullText(card), f.At).Scan(&f.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, fmt.Errorf("add finding %s: %w", f.ID, forum.ErrDuplicate)
	}
	if err != nil {
		return f, fmt.Errorf("add finding %s: %w", f.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return f, fmt.Errorf("add finding %s: %w", f.ID, err)
	}
	return f, nil
}

// Get implements forum.Store.
func (db *DB) Get(ctx context.Context, campaign, id string) (forum.Finding, []forum.Comment, error) {
	// One snapshot: the comment count and the comments agree.
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return forum.Finding{}, nil, fmt.Errorf("get finding %s: %w", id, err)
	}
	defer tx.Rollback(ctx)
	f, err := scanFinding(tx.QueryRow(ctx, `SELECT `+findingColumns+` FROM forum_findings f WHERE f.id = $1 AND f.campaign = $2`, id, campaign))
	if errors.Is(err, pgx.ErrNoRows) {
		return forum.Finding{}, nil, fmt.Errorf("finding %s in campaign %s: %w", id, campaign, forum.ErrNotFound)
	}
	if err != nil {
		return forum.Finding{}, nil, fmt.Errorf("get finding %s: %w", id, err)
	}
	rows, err := tx.Query(ctx, `SELECT id, finding, author, body, at FROM forum_comments WHERE finding = $1 ORDER BY at, seq`, id)
	if err != nil {
		return forum.Finding{}, nil, fmt.Errorf("get finding %s: comments: %w", id, err)
	}
	defer rows.Close()
	comments := []forum.Comment{}
	for rows.Next() {
		var c forum.Comment
		if err := rows.Scan(&c.ID, &c.Finding, &c.Author, &c.Body, &c.At); err != nil {
			return forum.Finding{}, nil, fmt.Errorf("get finding %s: comments: %w", id, err)
		}
		c.At = c.At.UTC()
		comments = append(comments, c)
	}
	if err := rows.Err(); err != nil {
		return forum.Finding{}, nil, fmt.Errorf("get finding %s: comments: %w", id, err)
	}
	return f, comments, nil
}

func clamp(limit int) int { return min(max(limit, 1), maxLimit) }

// List implements forum.Store.
func (db *DB) List(ctx context.Context, campaign string, since int64, limit int) (forum.Page, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+findingColumns+` FROM forum_findings f
		WHERE f.campaign = $1 AND f.seq > $2 ORDER BY f.seq LIMIT $3`, campaign, since, clamp(limit))
	if err != nil {
		return forum.Page{}, fmt.Errorf("list campaign %s since %d: %w", campaign, since, err)
	}
	fs, err := scanFindings(rows)
	if err != nil {
		return forum.Page{}, fmt.Errorf("list campaign %s since %d: %w", campaign, since, err)
	}
	p := forum.Page{Findings: fs, Next: since}
	if len(fs) > 0 {
		p.Next = fs[len(fs)-1].Seq
	}
	return p, nil
}

// searchText makes untrusted text fit to pass to websearch_to_tsquery:
// valid UTF-8 without NUL (which PostgreSQL text refuses), at most
// maxTerms words. It returns "" when nothing is left.
func searchText(q string) string {
	q = strings.ToValidUTF8(strings.ReplaceAll(q, "\x00", " "), " ")
	words := strings.Fields(q)
	if len(words) > maxTerms {
		words = words[:maxTerms]
	}
	return strings.Join(words, " ")
}

// Search implements forum.Store; title words weigh more than body words.
func (db *DB) Search(ctx context.Context, campaign, query string, limit int) ([]forum.Finding, error) {
	text := searchText(query)
	if text == "" {
		return []forum.Finding{}, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+findingColumns+`
		FROM forum_findings f, websearch_to_tsquery('english', $2) q
		WHERE f.campaign = $1 AND f.search @@ q
		ORDER BY ts_rank(f.search, q) DESC, f.seq LIMIT $3`, campaign, text, clamp(limit))
	if err != nil {
		return nil, fmt.Errorf("search campaign %s for %q: %w", campaign, query, err)
	}
	fs, err := scanFindings(rows)
	if err != nil {
		return nil, fmt.Errorf("search campaign %s for %q: %w", campaign, query, err)
	}
	return fs, nil
}

// findingIn returns ErrNotFound unless finding is a finding of campaign.
func findingIn(ctx context.Context, tx pgx.Tx, campaign, finding string) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM forum_findings WHERE id = $1 AND campaign = $2)`, finding, campaign).Scan(&ok)
	if err == nil && !ok {
		return fmt.Errorf("finding %s in campaign %s: %w", finding, campaign, forum.ErrNotFound)
	}
	return err
}

// Comment implements forum.Store. An empty ID is filled in, and so is a
// zero At.
func (db *DB) Comment(ctx context.Context, campaign string, c forum.Comment) (forum.Comment, error) {
	if c.ID == "" {
		c.ID = rand.Text()
	}
	if c.At.IsZero() {
		c.At = db.now()
	}
	c.At = c.At.UTC().Truncate(time.Microsecond)
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return c, fmt.Errorf("comment on %s: %w", c.Finding, err)
	}
	defer tx.Rollback(ctx)
	if err := findingIn(ctx, tx, campaign, c.Finding); err != nil {
		return c, fmt.Errorf("comment on %s: %w", c.Finding, err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO forum_comments (id, finding, author, body, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO NOTHING`, c.ID, c.Finding, c.Author, c.Body, c.At)
	if err != nil {
		return c, fmt.Errorf("comment on %s: %w", c.Finding, err)
	}
	if tag.RowsAffected() == 0 {
		return c, fmt.Errorf("comment %s: %w", c.ID, forum.ErrDuplicate)
	}
	if err := tx.Commit(ctx); err != nil {
		return c, fmt.Errorf("comment on %s: %w", c.Finding, err)
	}
	return c, nil
}

// Vote implements forum.Store.
func (db *DB) Vote(ctx context.Context, campaign, finding, voter string, value int) error {
	if value != 1 && value != -1 {
		return fmt.Errorf("vote on %s by %s: value %d is not +1 or -1", finding, voter, value)
	}
	if voter == "" {
		return fmt.Errorf("vote on %s: no voter", finding)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("vote on %s: %w", finding, err)
	}
	defer tx.Rollback(ctx)
	if err := findingIn(ctx, tx, campaign, finding); err != nil {
		return fmt.Errorf("vote on %s: %w", finding, err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO forum_votes (finding, voter, value, at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (finding, voter) DO NOTHING`, finding, voter, value, db.now().UTC())
	if err != nil {
		return fmt.Errorf("vote on %s: %w", finding, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("vote on %s by %s: %w", finding, voter, forum.ErrDuplicate)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("vote on %s: %w", finding, err)
	}
	return nil
}

// Close implements forum.Store; it is idempotent.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}
