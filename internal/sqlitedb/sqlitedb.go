// Package sqlitedb owns how aar opens a SQLite file (pure Go,
// modernc.org/sqlite): WAL, a busy timeout, synchronous=NORMAL (durable
// against a crash of the process), one writer connection whose transactions
// take the write lock at BEGIN (so a read-then-write inside one is
// consistent even with another process writing), and a separate read-only
// pool. The ledger and the forum open their files through it.
package sqlitedb

import (
	"database/sql"
	"errors"
	"fmt"
	"runtime"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Pools are a file's writer (one connection) and reader pools.
type Pools struct {
	Write *sql.DB
	Read  *sql.DB
}

// Open opens the file at path (created if missing).
func Open(path string) (*Pools, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	return &Pools{Write: w, Read: r}, nil
}

// Close closes both pools.
func (p *Pools) Close() error {
	return errors.Join(p.Read.Close(), p.Write.Close())
}
