package postgres

import (
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/pgtest"

	"github.com/jackc/pgx/v5"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/forum/forumtest"
	"github.com/aar-lab/aar/internal/store"
	ledger "github.com/aar-lab/aar/internal/store/postgres"
)

func open(t testing.TB, u string) *DB {
	t.Helper()
	db, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestContract(t *testing.T) {
	pgtest.AdminURL(t)
	urls := map[forum.Store]string{}
	forumtest.Run(t, forumtest.Harness{
		Open: func(t *testing.T) forum.Store {
			u := pgtest.FreshDatabase(t)
			db := open(t, u)
			urls[db] = u
			return db
		},
		Reopen: func(t *testing.T, s forum.Store) forum.Store {
			u := urls[s]
			s.Close()
			db := open(t, u)
			urls[db] = u
			return db
		},
	})
}

// TestSharesLedgerDatabase puts the forum in the ledger's database: each
// keeps its own tables and goose version table, and either may be opened
// first.
func TestSharesLedgerDatabase(t *testing.T) {
	ctx := t.Context()
	for _, forumFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("forumFirst=%v", forumFirst), func(t *testing.T) {
			u := pgtest.FreshDatabase(t)
			var f *DB
			if forumFirst {
				f = open(t, u)
			}
			l, err := ledger.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if !forumFirst {
				f = open(t, u)
			}
			if _, err := l.Append(ctx, store.Input{Kind: "campaign.created", Actor: "admin", Campaign: "c1", Body: map[string]string{"name": "c1"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Add(ctx, forum.Finding{ID: "f1", Campaign: "c1", Type: forum.TypeInsight, Title: "shared database"}); err != nil {
				t.Fatal(err)
			}
			f.Close()
			f = open(t, u)
			if fs, err := f.Search(ctx, "c1", "shared", 10); err != nil || len(fs) != 1 {
				t.Fatalf("search after reopen: %v %v", fs, err)
			}
			l.Close()
			l, err = ledger.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			if h, err := l.Head(ctx); err != nil || h.Seq != 1 {
				t.Fatalf("ledger head: %+v %v", h, err)
			}
			var versions int
			if err := f.pool.QueryRow(ctx, `SELECT COUNT(*) FROM `+VersionTable+` WHERE version_id > 0`).Scan(&versions); err != nil || versions != 1 {
				t.Fatalf("forum versions: %d %v", versions, err)
			}
		})
	}
}

// BenchmarkListSince pages (100 findings) from a random cursor through
// 100,000 findings of one campaign interleaved with 10,000 of another.
// The target is 10 ms a page.
func BenchmarkListSince(b *testing.B) {
	ctx := context.Background()
	db := open(b, pgtest.FreshDatabase(b))
	const n, page = 100_000, 100
	at := time.Now().UTC()
	rows := make([][]any, 0, n+n/10)
	for i := range n + n/10 {
		campaign := "bench"
		if i%11 == 10 {
			campaign = "other"
		}
		rows = append(rows, []any{fmt.Sprintf("f%06d", i), campaign, "r1", forum.TypeResult,
			fmt.Sprintf("finding %d on calibration", i), "a short body about weak-to-strong generalisation", "other",
			`{"pgr":0.3}`, "", "", at})
	}
	if _, err := db.pool.CopyFrom(ctx, pgx.Identifier{"forum_findings"},
		[]string{"id", "campaign", "author", "type", "title", "body", "family", "metrics", "submission", "snapshot", "at"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `ANALYZE forum_findings`); err != nil {
		b.Fatal(err)
	}
	var maxSeq int64
	if err := db.pool.QueryRow(ctx, `SELECT MAX(seq) FROM forum_findings`).Scan(&maxSeq); err != nil {
		b.Fatal(err)
	}
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	for b.Loop() {
		since := rng.Int64N(maxSeq - 2*page)
		p, err := db.List(ctx, "bench", since, page)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Findings) != page {
			b.Fatalf("page since %d: %d findings", since, len(p.Findings))
		}
	}
}
