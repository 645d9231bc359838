// Package sqlite is the forum on SQLite (pure Go, modernc.org/sqlite), with
// FTS5 full-text search ranked by bm25. Its tables are named forum_* and its
// migrations are recorded in their own goose table (forum_goose_version), so
// it may live in a file of its own or in the ledger's file.
//
// One writer connection serialises writes, so Seq order is commit order and
// a reader paging by cursor never skips a finding; reads use their own pool.
// This package stores and finds; it never judges a finding (the lab does)
// and never runs a caller's text as FTS5 syntax.
package sqlite

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/pressly/goose/v3"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/sqlitedb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable is where goose records the forum's migrations, apart from
// the ledger's goose_db_version.
const VersionTable = "forum_goose_version"

const (
	// timeLayout is how times are stored: UTC, microseconds, fixed width so
	// text order is time order.
	timeLayout = "2006-01-02T15:04:05.000000Z"
	// maxLimit caps a page or a search.
	maxLimit = 1000
	// maxTerms caps the words of a search query.
	maxTerms = 32
)

// DB is a forum in one SQLite file.
type DB struct {
	write  *sql.DB // one connection: every write, in commit order
	read   *sql.DB
	now    func() time.Time
	mu     sync.Mutex
	closed bool // guarded by mu
}

var _ forum.Store = (*DB)(nil)

// Open opens (creating and migrating) the forum in the SQLite file at path,
// which may be the ledger's file.
func Open(ctx context.Context, path string) (*DB, error) {
	pools, err := sqlitedb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open forum: %w", err)
	}
	db := &DB{write: pools.Write, read: pools.Read, now: time.Now}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open forum %s: %w", path, err)
	}
	return db, nil
}

func (db *DB) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, sub, goose.WithTableName(VersionTable))
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

func scanFinding(scan func(...any) error) (forum.Finding, error) {
	var f forum.Finding
	var metrics, config, card sql.NullString
	var worked sql.NullBool
	var at string
	var score, comments int64
	err := scan(&f.Seq, &f.ID, &f.Campaign, &f.Author, &f.Type, &f.Title, &f.Body, &f.Family,
		&metrics, &config, &worked, &f.Submission, &f.Snapshot, &card, &at, &score, &comments)
	if err != nil {
		return f, err
	}
	if f.At, err = time.Parse(timeLayout, at); err != nil {
		return f, fmt.Errorf("finding %s: bad time %q", f.ID, at)
	}
	if metrics.Valid {
		f.Metrics = json.RawMessage(metrics.String)
	}
	if config.Valid {
		f.Config = json.RawMessage(config.String)
	}
	if worked.Valid {
		f.Worked = &worked.Bool
	}
	if card.Valid {
		f.Card = new(forum.MethodCard)
		if err := json.Unmarshal([]byte(card.String), f.Card); err != nil {
			return f, fmt.Errorf("finding %s: bad method card: %w", f.ID, err)
		}
	}
	f.Score, f.Comments = int(score), int(comments)
	return f, nil
}

func scanFindings(rows *sql.Rows) ([]forum.Finding, error) {
	defer rows.Close()
	out := []forum.Finding{}
	for rows.Next() {
		f, err := scanFinding(rows.Scan)
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
	var worked any
	if f.Worked != nil {
		worked = *f.Worked
	}
	err = db.write.QueryRowContext(ctx, `INSERT INTO forum_findings
		(id, campaign, author, type, title, body, family, metrics, config, worked, submission, snapshot, card, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING RETURNING seq`,
		f.ID, f.Campaign, f.Author, f.Type, f.Title, f.Body, f.Family, forum.NullText(f.Metrics), forum.NullText(f.Config),
		worked, f.Submission, f.Snapshot, forum.NullText(card), f.At.Format(timeLayout)).Scan(&f.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("add finding %s: %w", f.ID, forum.ErrDuplicate)
	}
	if err != nil {
		return f, fmt.Errorf("add finding %s: %w", f.ID, err)
	}
	return f, nil
}

// Get implements forum.Store.
func (db *DB) Get(ctx context.Context, campaign, id string) (forum.Finding, []forum.Comment, error) {
	// One read transaction: the comment count and the comments agree.
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		return forum.Finding{}, nil, fmt.Errorf("get finding %s: %w", id, err)
	}
	defer tx.Rollback()
	f, err := scanFinding(tx.QueryRowContext(ctx, `SELECT `+findingColumns+` FROM forum_findings f WHERE f.id = ? AND f.campaign = ?`, id, campaign).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return forum.Finding{}, nil, fmt.Errorf("finding %s in campaign %s: %w", id, campaign, forum.ErrNotFound)
	}
	if err != nil {
		return forum.Finding{}, nil, fmt.Errorf("get finding %s: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, finding, author, body, at FROM forum_comments WHERE finding = ? ORDER BY at, seq`, id)
	if err != nil {
		return forum.Finding{}, nil, fmt.Errorf("get finding %s: comments: %w", id, err)
	}
	defer rows.Close()
	comments := []forum.Comment{}
	for rows.Next() {
		var c forum.Comment
		var at string
		if err := rows.Scan(&c.ID, &c.Finding, &c.Author, &c.Body, &at); err != nil {
			return forum.Finding{}, nil, fmt.Errorf("get finding %s: comments: %w", id, err)
		}
		if c.At, err = time.Parse(timeLayout, at); err != nil {
			return forum.Finding{}, nil, fmt.Errorf("comment %s: bad time %q", c.ID, at)
		}
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
	rows, err := db.read.QueryContext(ctx, `SELECT `+findingColumns+` FROM forum_findings f
		WHERE f.campaign = ? AND f.seq > ? ORDER BY f.seq LIMIT ?`, campaign, since, clamp(limit))
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

// matchQuery turns untrusted text into an FTS5 query that cannot be
// anything but words: each run of letters and digits becomes a quoted
// phrase, and the phrases are ANDed (at most maxTerms of them). It returns
// "" when the text has no words.
func matchQuery(q string) string {
	words := strings.FieldsFunc(q, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) > maxTerms {
		words = words[:maxTerms]
	}
	for i, w := range words {
		words[i] = `"` + w + `"`
	}
	return strings.Join(words, " ")
}

// Search implements forum.Store; title words weigh ten times body words.
func (db *DB) Search(ctx context.Context, campaign, query string, limit int) ([]forum.Finding, error) {
	match := matchQuery(query)
	if match == "" {
		return []forum.Finding{}, nil
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+findingColumns+`
		FROM forum_findings_fts JOIN forum_findings f ON f.seq = forum_findings_fts.rowid
		WHERE forum_findings_fts MATCH ? AND f.campaign = ?
		ORDER BY bm25(forum_findings_fts, 10.0, 1.0), f.seq LIMIT ?`, match, campaign, clamp(limit))
	if err != nil {
		return nil, fmt.Errorf("search campaign %s for %q: %w", campaign, query, err)
	}
	fs, err := scanFindings(rows)
	if err != nil {
		return nil, fmt.Errorf("search campaign %s for %q: %w", campaign, query, err)
	}
	return fs, nil
}

// findingIn reports whether finding is a finding of campaign.
func findingIn(ctx context.Context, tx *sql.Tx, campaign, finding string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM forum_findings WHERE id = ? AND campaign = ?`, finding, campaign).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
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
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return c, fmt.Errorf("comment on %s: %w", c.Finding, err)
	}
	defer tx.Rollback()
	if err := findingIn(ctx, tx, campaign, c.Finding); err != nil {
		return c, fmt.Errorf("comment on %s: %w", c.Finding, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO forum_comments (id, finding, author, body, at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, c.ID, c.Finding, c.Author, c.Body, c.At.Format(timeLayout))
	if err != nil {
		return c, fmt.Errorf("comment on %s: %w", c.Finding, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return c, fmt.Errorf("comment %s: %w", c.ID, cmp.Or(err, forum.ErrDuplicate))
	}
	if err := tx.Commit(); err != nil {
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
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("vote on %s: %w", finding, err)
	}
	defer tx.Rollback()
	if err := findingIn(ctx, tx, campaign, finding); err != nil {
		return fmt.Errorf("vote on %s: %w", finding, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO forum_votes (finding, voter, value, at) VALUES (?, ?, ?, ?)
		ON CONFLICT (finding, voter) DO NOTHING`, finding, voter, value, db.now().UTC().Format(timeLayout))
	if err != nil {
		return fmt.Errorf("vote on %s: %w", finding, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("vote on %s by %s: %w", finding, voter, cmp.Or(err, forum.ErrDuplicate))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vote on %s: %w", finding, err)
	}
	return nil
}

// Close implements forum.Store; it is idempotent.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	return errors.Join(db.read.Close(), db.write.Close())
}
