package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/store/postgres"
	"github.com/aar-lab/aar/internal/store/sqlite"
	"github.com/aar-lab/aar/internal/testbed"
)

// benchTestbed has 1,579 binary test rows, 1,263 of them public (the
// study's chat test size).
func benchTestbed(b *testing.B, dir string) []testbed.Row {
	src := b.TempDir()
	var lab, pool, test, w, c strings.Builder
	for i := range 50 {
		fmt.Fprintf(&lab, `{"text":"l%d","label":%d}`+"\n", i, i%2)
	}
	for i := range 100 {
		fmt.Fprintf(&pool, `{"text":"u%d"}`+"\n", i)
	}
	for i := range 1579 {
		fmt.Fprintf(&test, `{"text":"t%d","label":%d,"subset":"s"}`+"\n", i, (i*7)%2)
		fmt.Fprintf(&w, `{"label":%d}`+"\n", i%2)
		fmt.Fprintf(&c, `{"label":%d}`+"\n", (i*7)%2*((i%5+4)/5))
	}
	files := map[string]string{"testbed.json": `{"kind":"classification","classes":["a","b"]}`, "train_label.jsonl": lab.String(),
		"train_unlabel.jsonl": pool.String(), "test.jsonl": test.String(), "baselines/weak/1.jsonl": w.String(), "baselines/ceiling/1.jsonl": c.String()}
	for name, body := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	tbs, _ := testbed.OpenStore(dir)
	tb, err := tbs.Import(src, testbed.ImportOptions{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return tb.PublicTest()
}

// BenchmarkSubmissions measures accepted single-seed submissions of 1,263
// predictions per second against the lab's HTTP server on loopback, quotas
// off, 16 concurrent clients, and reports the p99 latency. Run with
// `make bench-lab` (SQLite; and PostgreSQL when AAR_TEST_POSTGRES is set).
func BenchmarkSubmissions(b *testing.B) {
	backends := map[string]func(b *testing.B, dir string) store.Ledger{
		"sqlite": func(b *testing.B, dir string) store.Ledger {
			db, err := sqlite.Open(context.Background(), filepath.Join(dir, "lab.db"))
			if err != nil {
				b.Fatal(err)
			}
			return db
		},
	}
	if u := os.Getenv("AAR_TEST_POSTGRES"); u != "" {
		backends["postgres"] = func(b *testing.B, dir string) store.Ledger {
			db, err := postgres.Open(context.Background(), u)
			if err != nil {
				b.Fatal(err)
			}
			db.Exec(context.Background(), "TRUNCATE ledger, checkpoints")
			return db
		}
	}
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			rows := benchTestbed(b, dir)
			ledger := backends[name](b, dir)
			defer ledger.Close()
			l, admin, err := New(context.Background(), Config{DataDir: dir, Ledger: ledger})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(l.Handler())
			defer srv.Close()
			if _, err := l.CreateCampaign(context.Background(), Campaign{ID: "c", Testbed: "bench", Quota: QuotaSpec{PerResearcherPerHour: 1 << 30, PerCampaignPerHour: 1 << 30}}); err != nil {
				b.Fatal(err)
			}
			_ = admin
			tok, err := l.CreateToken(context.Background(), "r", "c")
			if err != nil {
				b.Fatal(err)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			const workers = 16
			var next atomic.Int64
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					preds := make([]int, len(rows))
					for {
						i := int(next.Add(1)) - 1
						if i >= b.N {
							return
						}
						rng := rand.New(rand.NewPCG(uint64(i), 7))
						for j := range preds {
							preds[j] = rng.IntN(2)
						}
						body, _ := json.Marshal(map[string]any{"predictions": preds})
						req, _ := http.NewRequest("POST", srv.URL+"/v1/submissions", bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+tok)
						t0 := time.Now()
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						resp.Body.Close()
						lat[i] = time.Since(t0)
						if resp.StatusCode != 201 {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "submissions/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkTranscriptPage reads a page of 200 events from a random position
// of a researcher's 100,000-event transcript, with another researcher's
// events interleaved in the ledger (SQLite): the index gives the page's
// seqs, and the ledger is scanned from the first to the last of them only.
func BenchmarkTranscriptPage(b *testing.B) {
	dir := b.TempDir()
	benchTestbed(b, dir)
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "lab.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	l, _, err := New(ctx, Config{DataDir: dir, Ledger: db, CheckpointEvery: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.CreateCampaign(ctx, Campaign{ID: "c", Testbed: "bench"}); err != nil {
		b.Fatal(err)
	}
	var ids []*Identity
	for _, name := range []string{"r", "other"} {
		tok, err := l.CreateToken(ctx, name, "c")
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, l.Authenticate(tok))
	}
	const total, batch = 100_000, 500
	data := json.RawMessage(`{"role":"assistant","content":"` + strings.Repeat("a thought about weak labels ", 20) + `"}`)
	for from := 0; from < total; from += batch {
		for _, id := range ids {
			evs := make([]TranscriptEvent, batch)
			for i := range evs {
				evs[i] = TranscriptEvent{Session: fmt.Sprintf("s%d", (from+i)/5000), Type: "message", Data: data}
			}
			if _, err := l.AppendTranscript(ctx, id, evs); err != nil {
				b.Fatal(err)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		after := rng.IntN(total-200) - 1
		p, err := l.Transcript(ctx, ids[0], TranscriptQuery{After: after, Limit: 200})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Events) != 200 || p.Events[0].Pos != after+1 {
			b.Fatalf("page of %d events from %d", len(p.Events), p.Events[0].Pos)
		}
	}
}
