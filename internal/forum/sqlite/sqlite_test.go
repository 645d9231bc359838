package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/forum/forumtest"
	"github.com/aar-lab/aar/internal/store"
	ledger "github.com/aar-lab/aar/internal/store/sqlite"
)

func open(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestContract(t *testing.T) {
	paths := map[forum.Store]string{}
	forumtest.Run(t, forumtest.Harness{
		Open: func(t *testing.T) forum.Store {
			path := filepath.Join(t.TempDir(), "forum.db")
			db := open(t, path)
			paths[db] = path
			return db
		},
		Reopen: func(t *testing.T, s forum.Store) forum.Store {
			path := paths[s]
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			db := open(t, path)
			paths[db] = path
			return db
		},
	})
}

// TestSharesLedgerFile puts the forum in the ledger's file: each keeps its
// own tables and goose version table, and either may be opened first.
func TestSharesLedgerFile(t *testing.T) {
	ctx := t.Context()
	for _, forumFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("forumFirst=%v", forumFirst), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lab.db")
			var f *DB
			if forumFirst {
				f = open(t, path)
			}
			l, err := ledger.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if !forumFirst {
				f = open(t, path)
			}
			if _, err := l.Append(ctx, store.Input{Kind: "campaign.created", Actor: "admin", Campaign: "c1", Body: map[string]string{"name": "c1"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Add(ctx, forum.Finding{ID: "f1", Campaign: "c1", Type: forum.TypeInsight, Title: "shared file"}); err != nil {
				t.Fatal(err)
			}
			// Both reopen cleanly: neither sees the other's migrations as its own.
			f.Close()
			f = open(t, path)
			if fs, err := f.Search(ctx, "c1", "shared", 10); err != nil || len(fs) != 1 {
				t.Fatalf("search after reopen: %v %v", fs, err)
			}
			l.Close()
			l, err = ledger.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			if h, err := l.Head(ctx); err != nil || h.Seq != 1 {
				t.Fatalf("ledger head: %+v %v", h, err)
			}
			var versions int
			if err := f.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+VersionTable+` WHERE version_id > 0`).Scan(&versions); err != nil || versions != 1 {
				t.Fatalf("forum versions: %d %v", versions, err)
			}
		})
	}
}

func TestMatchQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"   ":                   "",
		`"`:                     "",
		"*":                     "",
		"AND OR NOT":            `"AND" "OR" "NOT"`,
		"title:x":               `"title" "x"`,
		"'; DROP TABLE":         `"DROP" "TABLE"`,
		"weak-to-strong":        `"weak" "to" "strong"`,
		"ünïcödé 42":            `"ünïcödé" "42"`,
		"NEAR(a b, 2)":          `"NEAR" "a" "b" "2"`,
		"a\x00b\xffc":           `"a" "b" "c"`,
		"x\"y\" OR z* ^w -v +u": `"x" "y" "OR" "z" "w" "v" "u"`,
	} {
		if got := matchQuery(in); got != want {
			t.Errorf("matchQuery(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzMatchQuery(f *testing.F) {
	for _, s := range []string{"", `"`, "a OR b", "title:x", "NEAR(a b)", "x*", "'; DROP TABLE"} {
		f.Add(s)
	}
	db := open(f, filepath.Join(f.TempDir(), "forum.db"))
	if _, err := db.Add(context.Background(), forum.Finding{ID: "f", Campaign: "c", Title: "a title", Body: "a body"}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if _, err := db.Search(context.Background(), "c", q, 10); err != nil {
			t.Fatalf("search %q (match %s): %v", q, matchQuery(q), err)
		}
	})
}

// BenchmarkListSince pages (100 findings) from a random cursor through
// 100,000 findings of one campaign interleaved with 10,000 of another.
// The target is 10 ms a page.
func BenchmarkListSince(b *testing.B) {
	ctx := context.Background()
	db := open(b, filepath.Join(b.TempDir(), "forum.db"))
	const n, page = 100_000, 100
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO forum_findings
		(id, campaign, author, type, title, body, family, metrics, submission, snapshot, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '', ?)`)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Now().UTC().Format(timeLayout)
	for i := range n + n/10 {
		campaign := "bench"
		if i%11 == 10 {
			campaign = "other"
		}
		if _, err := stmt.ExecContext(ctx, fmt.Sprintf("f%06d", i), campaign, "r1", forum.TypeResult,
			fmt.Sprintf("finding %d on calibration", i), "a short body about weak-to-strong generalisation", "other",
			`{"pgr":0.3}`, at); err != nil {
			b.Fatal(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	var maxSeq int64
	if err := db.read.QueryRowContext(ctx, `SELECT MAX(seq) FROM forum_findings`).Scan(&maxSeq); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
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
