package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/store/storetest"
)

func TestContract(t *testing.T) {
	paths := map[store.Ledger]string{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Ledger {
			path := filepath.Join(t.TempDir(), "ledger.db")
			db, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			paths[db] = path
			return db
		},
		Reopen: func(t *testing.T, l store.Ledger) store.Ledger {
			path := paths[l]
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			paths[db] = path
			return db
		},
		Another: func(t *testing.T, l store.Ledger) store.Ledger {
			db, err := Open(context.Background(), paths[l])
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
		Exec: func(t *testing.T, l store.Ledger, query string, args ...any) {
			if err := l.(*DB).Exec(context.Background(), query, args...); err != nil {
				t.Fatal(err)
			}
		},
	})
}
