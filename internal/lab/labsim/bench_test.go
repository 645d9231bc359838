package labsim

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkScale runs the lab under 1 to 1,024 scripted researchers in a
// closed loop (AAR_LABSIM_DURATION each, default 3 s) on SQLite, and on
// PostgreSQL when AAR_TEST_POSTGRES names a server, and reports requests/s,
// submissions scored/s, p99 latency and the share of time the ledger was
// appending. Run it with -benchtime 1x; make bench-scale writes the same
// runs as a table and a plot (cmd/labsim).
func BenchmarkScale(b *testing.B) {
	d := 3 * time.Second
	if v, err := time.ParseDuration(os.Getenv("AAR_LABSIM_DURATION")); err == nil && v > 0 {
		d = v
	}
	stores := []string{StoreSQLite}
	if os.Getenv("AAR_TEST_POSTGRES") != "" {
		stores = append(stores, StorePostgres)
	}
	for _, st := range stores {
		for _, n := range []int{1, 4, 16, 64, 256, 1024} {
			b.Run(fmt.Sprintf("%s/researchers=%d", st, n), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Researchers, cfg.Duration, cfg.Store, cfg.PostgresURL = n, d, st, os.Getenv("AAR_TEST_POSTGRES")
				var res *Result
				for b.Loop() {
					var err error
					if res, err = Run(context.Background(), cfg); err != nil {
						b.Fatal(err)
					}
					if res.Errors > 0 {
						b.Fatalf("%d errors: %s", res.Errors, strings.Join(res.FirstErrors, "; "))
					}
				}
				b.ReportMetric(res.RequestsPerSec, "requests/s")
				b.ReportMetric(res.SubmissionsPerSec, "submissions/s")
				b.ReportMetric(res.P99Ms, "p99-ms")
				b.ReportMetric(100*res.Ledger.AppendBusy, "append-busy-%")
			})
		}
	}
}
