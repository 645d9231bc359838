package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/pgtest"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/store/storetest"
)

// dollars turns '?' placeholders into $1, $2, ….
func dollars(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestContract(t *testing.T) {
	pgtest.AdminURL(t)
	urls := map[store.Ledger]string{}
	open := func(t *testing.T, u string) store.Ledger {
		db, err := Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		urls[db] = u
		return db
	}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Ledger { return open(t, pgtest.FreshDatabase(t)) },
		Reopen: func(t *testing.T, l store.Ledger) store.Ledger {
			u := urls[l]
			l.Close()
			return open(t, u)
		},
		Another: func(t *testing.T, l store.Ledger) store.Ledger { return open(t, urls[l]) },
		Exec: func(t *testing.T, l store.Ledger, query string, args ...any) {
			if err := l.(*DB).Exec(context.Background(), dollars(query), args...); err != nil {
				t.Fatal(err)
			}
		},
	})
}
