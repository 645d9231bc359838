// Package pgtest gives tests an empty PostgreSQL database of their own on
// the server named by AAR_TEST_POSTGRES (.ci/run starts one and sets it).
// Without it the tests skip, except under CI, where a missing server is a
// failure. Only tests import this package.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// AdminURL returns AAR_TEST_POSTGRES, or skips (fails under CI).
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("AAR_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("AAR_TEST_POSTGRES is not set under CI: .ci/run must start PostgreSQL")
		}
		t.Skip("set AAR_TEST_POSTGRES to a PostgreSQL server URL to run the PostgreSQL tests")
	}
	return u
}

// FreshDatabase creates an empty database, dropped when the test ends, and
// returns its URL.
func FreshDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	admin := AdminURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "aar_test_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
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
