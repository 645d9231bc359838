package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/store/storetest"
)

// adminURL is a PostgreSQL server the tests may create databases on
// (AAR_TEST_POSTGRES, e.g. postgres://postgres:postgres@127.0.0.1:5432/postgres).
// .ci/run installs and starts one and sets it; without it the tests skip,
// except under CI, where a missing server is a failure.
func adminURL(t *testing.T) string {
	u := os.Getenv("AAR_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("AAR_TEST_POSTGRES is not set under CI: .ci/run must start PostgreSQL")
		}
		t.Skip("set AAR_TEST_POSTGRES to a PostgreSQL server URL to run the PostgreSQL contract tests")
	}
	return u
}

// freshDatabase creates an empty database and returns its URL; it is
// dropped when the test ends.
func freshDatabase(t *testing.T) string {
	ctx := context.Background()
	admin := adminURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "aar_test_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", admin, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

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
	adminURL(t)
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
		Open: func(t *testing.T) store.Ledger { return open(t, freshDatabase(t)) },
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
