// Package postgres is the ledger on PostgreSQL (pgx), for a lab shared by
// several machines. Appends take a transaction-scoped advisory lock and read
// the head inside the transaction, so even several lab processes on one
// database extend a single chain.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/aar-lab/aar/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// appendLock is the advisory lock key that serialises appends ("aarledgr").
const appendLock = 0x6161726c65646772

// DB is a ledger in a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

var _ store.Ledger = (*DB)(nil)

// Open connects to url (postgres://...) and migrates the schema.
func Open(ctx context.Context, url string) (*DB, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open ledger database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open ledger database: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		pool.Close()
		return nil, err
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("ledger migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ledger migrations: %w", err)
	}
	return &DB{pool: pool, now: time.Now}, nil
}

const columns = `seq, at, kind, actor, campaign, body, prev, hash`

func scanEvent(row pgx.Row) (store.Event, error) {
	var e store.Event
	var at, body string
	if err := row.Scan(&e.Seq, &at, &e.Kind, &e.Actor, &e.Campaign, &body, &e.Prev, &e.Hash); err != nil {
		return e, err
	}
	t, err := time.Parse(store.TimeLayout, at)
	if err != nil {
		return e, fmt.Errorf("entry %d: bad time %q", e.Seq, at)
	}
	e.At, e.Body = t, []byte(body)
	if e.Prev == nil {
		e.Prev = []byte{}
	}
	return e, nil
}

// Append implements store.Ledger.
func (db *DB) Append(ctx context.Context, in ...store.Input) ([]store.Event, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(appendLock)); err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	var head *store.Event
	e, err := scanEvent(tx.QueryRow(ctx, `SELECT `+columns+` FROM ledger ORDER BY seq DESC LIMIT 1`))
	switch {
	case err == nil:
		head = &e
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	evs, err := store.Seal(head, db.now(), in)
	if err != nil {
		return nil, err
	}
	batch := &pgx.Batch{}
	for _, e := range evs {
		batch.Queue(`INSERT INTO ledger (`+columns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.Seq, e.At.Format(store.TimeLayout), e.Kind, e.Actor, e.Campaign, string(e.Body), e.Prev, e.Hash)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	return evs, nil
}

// Head implements store.Ledger.
func (db *DB) Head(ctx context.Context) (store.Event, error) {
	e, err := scanEvent(db.pool.QueryRow(ctx, `SELECT `+columns+` FROM ledger ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Event{}, store.ErrEmpty
	}
	return e, err
}

// Scan implements store.Ledger.
func (db *DB) Scan(ctx context.Context, from int64, fn func(store.Event) error) error {
	return db.ScanRange(ctx, from, math.MaxInt64, fn)
}

// ScanRange implements store.Ledger: the query itself is bounded, so
// stopping early never reads (or, with pgx, drains) the rest of the ledger.
func (db *DB) ScanRange(ctx context.Context, from, to int64, fn func(store.Event) error) error {
	rows, err := db.pool.Query(ctx, `SELECT `+columns+` FROM ledger WHERE seq >= $1 AND seq <= $2 ORDER BY seq`, from, to)
	if err != nil {
		return fmt.Errorf("ledger scan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("ledger scan: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AddCheckpoint implements store.Ledger.
func (db *DB) AddCheckpoint(ctx context.Context, c store.Checkpoint) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO checkpoints (seq, hash, at, pub, sig) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (seq) DO UPDATE SET hash = EXCLUDED.hash, at = EXCLUDED.at, pub = EXCLUDED.pub, sig = EXCLUDED.sig`,
		c.Seq, c.Hash, c.At.UTC().Format(store.TimeLayout), c.Pub, c.Sig)
	if err != nil {
		return fmt.Errorf("ledger checkpoint: %w", err)
	}
	return nil
}

// Checkpoints implements store.Ledger.
func (db *DB) Checkpoints(ctx context.Context) ([]store.Checkpoint, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, hash, at, pub, sig FROM checkpoints ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("ledger checkpoints: %w", err)
	}
	defer rows.Close()
	return store.ScanCheckpoints(rows)
}

// Exec runs a statement (tests use it to damage a ledger on purpose).
func (db *DB) Exec(ctx context.Context, query string, args ...any) error {
	_, err := db.pool.Exec(ctx, query, args...)
	return err
}

// Close implements store.Ledger.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}
