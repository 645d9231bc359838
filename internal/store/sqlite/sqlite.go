// Package sqlite is the ledger on SQLite (pure Go, modernc.org/sqlite): the
// default store, a single file in the lab's data directory. One writer
// connection serialises appends (WAL, synchronous=NORMAL: an append that
// returned survives a crash of the process); reads use their own pool.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sync"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/aar-lab/aar/internal/sqlitedb"
	"github.com/aar-lab/aar/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a ledger in one SQLite file.
type DB struct {
	path   string
	write  *sql.DB
	read   *sql.DB
	now    func() time.Time
	mu     sync.Mutex // serialises appends in this process
	closed bool       // guarded by mu
}

var _ store.Ledger = (*DB)(nil)

// Open opens (creating and migrating) the ledger at path.
func Open(ctx context.Context, path string) (*DB, error) {
	// Writes take the database lock at BEGIN (sqlitedb), so the head read
	// inside an append is the head the append extends, even with another
	// process (an admin command) writing too.
	pools, err := sqlitedb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	db := &DB{path: path, write: pools.Write, read: pools.Read, now: time.Now}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, sub)
	if err != nil {
		return fmt.Errorf("ledger migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("ledger migrations: %w", err)
	}
	return nil
}

func scanEvent(scan func(...any) error) (store.Event, error) {
	var e store.Event
	var at, body string
	if err := scan(&e.Seq, &at, &e.Kind, &e.Actor, &e.Campaign, &body, &e.Prev, &e.Hash); err != nil {
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
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil, errors.New("ledger is closed")
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	defer tx.Rollback()
	var head *store.Event
	e, err := scanEvent(tx.QueryRowContext(ctx, `SELECT seq, at, kind, actor, campaign, body, prev, hash FROM ledger ORDER BY seq DESC LIMIT 1`).Scan)
	switch {
	case err == nil:
		head = &e
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	evs, err := store.Seal(head, db.now(), in)
	if err != nil {
		return nil, err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO ledger (seq, at, kind, actor, campaign, body, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	defer stmt.Close()
	for _, e := range evs {
		if _, err := stmt.ExecContext(ctx, e.Seq, e.At.Format(store.TimeLayout), e.Kind, e.Actor, e.Campaign, string(e.Body), e.Prev, e.Hash); err != nil {
			return nil, fmt.Errorf("ledger append %s: %w", e.Kind, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	return evs, nil
}

// Head implements store.Ledger.
func (db *DB) Head(ctx context.Context) (store.Event, error) {
	e, err := scanEvent(db.read.QueryRowContext(ctx, `SELECT seq, at, kind, actor, campaign, body, prev, hash FROM ledger ORDER BY seq DESC LIMIT 1`).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Event{}, store.ErrEmpty
	}
	if err != nil {
		return store.Event{}, fmt.Errorf("ledger head: %w", err)
	}
	return e, nil
}

// Scan implements store.Ledger.
func (db *DB) Scan(ctx context.Context, from int64, fn func(store.Event) error) error {
	return db.ScanRange(ctx, from, math.MaxInt64, fn)
}

// ScanRange implements store.Ledger: the query itself is bounded, so
// stopping early never reads (or, with pgx, drains) the rest of the ledger.
func (db *DB) ScanRange(ctx context.Context, from, to int64, fn func(store.Event) error) error {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, at, kind, actor, campaign, body, prev, hash FROM ledger WHERE seq >= ? AND seq <= ? ORDER BY seq`, from, to)
	if err != nil {
		return fmt.Errorf("ledger scan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows.Scan)
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
	db.mu.Lock()
	defer db.mu.Unlock()
	_, err := db.write.ExecContext(ctx, `INSERT OR REPLACE INTO checkpoints (seq, hash, at, pub, sig) VALUES (?, ?, ?, ?, ?)`,
		c.Seq, c.Hash, c.At.UTC().Format(store.TimeLayout), c.Pub, c.Sig)
	if err != nil {
		return fmt.Errorf("ledger checkpoint: %w", err)
	}
	return nil
}

// Checkpoints implements store.Ledger.
func (db *DB) Checkpoints(ctx context.Context) ([]store.Checkpoint, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, hash, at, pub, sig FROM checkpoints ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("ledger checkpoints: %w", err)
	}
	defer rows.Close()
	return store.ScanCheckpoints(rows)
}

// Exec runs a statement on the writer connection (tests use it to damage a
// ledger on purpose).
func (db *DB) Exec(ctx context.Context, query string, args ...any) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	_, err := db.write.ExecContext(ctx, query, args...)
	return err
}

// Close implements store.Ledger; it is idempotent.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	return errors.Join(db.read.Close(), db.write.Close())
}
