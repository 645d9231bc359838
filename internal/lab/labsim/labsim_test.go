package labsim

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/pgtest"
)

// TestSimulation runs four researchers for a second against each store
// and checks the simulator's own books: every request succeeded, every
// researcher took steps over both transports, the kinds add up, and the
// ledger holds exactly what the lab acknowledged, on an intact chain.
func TestSimulation(t *testing.T) {
	stores := map[string]string{StoreSQLite: ""}
	if os.Getenv("AAR_TEST_POSTGRES") != "" {
		stores[StorePostgres] = pgtest.AdminURL(t)
	}
	for name, url := range stores {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Researchers, cfg.Duration, cfg.Store, cfg.PostgresURL = 4, time.Second, name, url
			cfg.VerifyLedger = true
			// Every tool at once, so each route is exercised in a second.
			for tool := range cfg.Mix.Tools {
				cfg.Mix.Tools[tool] = 1
			}
			cfg.Mix.MultiSeed = 0.5
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 {
				t.Fatalf("%d errors: %s", res.Errors, strings.Join(res.FirstErrors, "; "))
			}
			if res.StepsMin < 1 {
				t.Errorf("a researcher took %d steps (max %d)", res.StepsMin, res.StepsMax)
			}
			var sum int64
			for _, k := range res.Kinds {
				sum += k.Requests
				if k.P50Ms <= 0 || k.P99Ms < k.P50Ms || k.MaxMs < k.P99Ms {
					t.Errorf("%s: p50 %g, p99 %g, max %g ms", k.Kind, k.P50Ms, k.P99Ms, k.MaxMs)
				}
			}
			if sum != res.Requests || res.Requests == 0 {
				t.Errorf("kinds add up to %d requests, the run made %d", sum, res.Requests)
			}
			// Each step polls control once and appends two transcript
			// batches; the last step may stop part way.
			if c := res.Kind(KindControl).Requests; c < res.Steps || c > res.Steps+int64(cfg.Researchers) {
				t.Errorf("%d control polls for %d steps", c, res.Steps)
			}
			for _, k := range []string{KindSubmit, KindTranscript, KindControl} {
				if res.Kind(k).Requests == 0 {
					t.Errorf("no %s requests", k)
				}
			}
			if res.Sent.Submissions == 0 || res.SubmissionsPerSec <= 0 {
				t.Errorf("no submissions scored: %+v", res.Sent)
			}
			for kind, want := range map[string]int64{
				"transcript": res.Sent.TranscriptEvents, "submission.accepted": res.Sent.Submissions,
				"snapshot.pushed": res.Sent.Snapshots, "finding.posted": res.Sent.Findings,
			} {
				if got := res.Ledger.LedgerKind(kind).Events; got != want {
					t.Errorf("ledger holds %d %s events, the lab acknowledged %d", got, kind, want)
				}
			}
			if n := res.Ledger.LedgerKind("submission.rejected").Events; n != 0 {
				t.Errorf("%d rejected submissions", n)
			}
			if res.Ledger.Appends == 0 || res.Ledger.AppendBusy <= 0 || res.Ledger.BodyBytes == 0 {
				t.Errorf("ledger growth not measured: %+v", res.Ledger)
			}
			if res.Verified == nil || !res.Verified.OK {
				t.Errorf("ledger chain: %+v", res.Verified)
			}
			if res.Replay.Events < res.Ledger.Events || res.Replay.EventsPerSec <= 0 {
				t.Errorf("replay: %+v after %d events", res.Replay, res.Ledger.Events)
			}
			if res.SnapshotBytes == 0 || res.Sent.Snapshots == 0 {
				t.Errorf("no snapshots stored: %d bytes, %d pushed", res.SnapshotBytes, res.Sent.Snapshots)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"no researchers":   func(c *Config) { c.Researchers = 0 },
		"no duration":      func(c *Config) { c.Duration = 0 },
		"unknown store":    func(c *Config) { c.Store = "mysql" },
		"postgres no url":  func(c *Config) { c.Store = StorePostgres },
		"bad transport":    func(c *Config) { c.Transport = "udp" },
		"campaigns > n":    func(c *Config) { c.Campaigns = 5 },
		"tiny testbed":     func(c *Config) { c.TestRows = 10 },
		"unknown tool":     func(c *Config) { c.Mix.Tools = map[string]float64{"control": 1} },
		"negative weight":  func(c *Config) { c.Mix.Tools = map[string]float64{"bash": -1, "submit": 2} },
		"too many seeds":   func(c *Config) { c.Mix.ResultSeeds = 17 },
		"huge transcripts": func(c *Config) { c.Mix.ToolResultBytes = 300 << 10 },
	} {
		c := DefaultConfig()
		c.Mix = DefaultMix()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}
