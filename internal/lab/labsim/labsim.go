// Package labsim measures how one lab holds up as researchers are added: it
// starts a real lab (SQLite, or PostgreSQL in a fresh database) with a
// synthetic testbed, serves it over loopback TCP and its Unix socket, and
// drives it with N scripted researchers, each a goroutine with its own
// token and its own HTTP connection, doing what an aar researcher worker
// does per step (a control poll, transcript batches, and a tool call that
// may submit, validate, read the leaderboard, sync, search or post to the
// forum, read its spend or push a snapshot) with no think time, for a fixed
// time. It reports requests/s overall and per kind, submissions scored/s,
// p50/p99 latency per kind as the researcher saw it and time spent per kind
// inside the lab, the ledger's growth by event kind, the time the ledger
// and the forum store were busy, and the CPU used.
//
// It is a benchmark harness, never part of a lab: it holds the labels of
// the testbed it generates (as the admin who imports a testbed does), and
// its researchers see only what the API answers them.
package labsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/store"
)

// Stores a simulation runs on.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// Transports the researchers use.
const (
	TransportTCP  = "tcp"
	TransportUnix = "unix"
	// TransportBoth alternates: even researchers on TCP, odd on the socket.
	TransportBoth = "both"
)

// Config configures one simulation run.
type Config struct {
	// Researchers is how many scripted researchers run at once.
	Researchers int
	// Duration is how long the closed loop runs.
	Duration time.Duration
	// Store is StoreSQLite or StorePostgres.
	Store string
	// PostgresURL names the server for StorePostgres: the run makes a
	// database of its own there and drops it at the end.
	PostgresURL string
	// Transport is TransportTCP, TransportUnix or TransportBoth.
	Transport string
	// Campaigns spreads the researchers round-robin over this many
	// campaigns (one testbed).
	Campaigns int
	// TestRows is the synthetic testbed's test size (the public study's
	// chat testbed has 1,579 rows, of which 80% are public).
	TestRows int
	// Mix is what a researcher does per step.
	Mix Mix
	// Seed fixes the researchers' random choices.
	Seed uint64
	// Dir is the lab's data directory; empty: a temporary one, removed
	// at the end.
	Dir string
	// VerifyLedger walks the whole ledger at the end and checks its hash
	// chain and checkpoints (Result.Verified).
	VerifyLedger bool
	// CPUProfile, when set, receives a CPU profile of this process (the lab
	// and the simulated researchers) during the closed loop.
	CPUProfile io.Writer
	// MutexProfile, when set, receives the mutex contention profile
	// recorded during the closed loop (every contention event). Records
	// accumulate over a process's life, so take it in a process that
	// profiles one run only.
	MutexProfile io.Writer
	Logger       *slog.Logger
}

// DefaultConfig is 4 researchers for 10 s on SQLite over both transports.
func DefaultConfig() Config {
	return Config{Researchers: 4, Duration: 10 * time.Second, Store: StoreSQLite, Transport: TransportBoth,
		Campaigns: 1, TestRows: 1579, Mix: DefaultMix(), Seed: 1}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	switch {
	case c.Researchers < 1:
		return fmt.Errorf("labsim: Researchers %d: give at least 1", c.Researchers)
	case c.Duration <= 0:
		return fmt.Errorf("labsim: Duration %s: give a positive duration", c.Duration)
	case c.Store != StoreSQLite && c.Store != StorePostgres:
		return fmt.Errorf("labsim: Store %q: use %q or %q", c.Store, StoreSQLite, StorePostgres)
	case c.Store == StorePostgres && c.PostgresURL == "":
		return errors.New("labsim: Store postgres needs PostgresURL (postgres://user:pass@host:port/db)")
	case !slices.Contains([]string{TransportTCP, TransportUnix, TransportBoth}, c.Transport):
		return fmt.Errorf("labsim: Transport %q: use tcp, unix or both", c.Transport)
	case c.Campaigns < 1 || c.Campaigns > c.Researchers:
		return fmt.Errorf("labsim: Campaigns %d: give 1 to Researchers (%d)", c.Campaigns, c.Researchers)
	case c.TestRows < 100:
		return fmt.Errorf("labsim: TestRows %d: give at least 100", c.TestRows)
	}
	return c.Mix.Validate()
}

// Run starts a lab, runs the researchers for cfg.Duration and reports.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	env, err := startLab(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer env.close()

	researchers, err := env.researchers(ctx, cfg)
	if err != nil {
		return nil, err
	}
	head, err := env.ledger.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger head before the run: %w", err)
	}
	dbBefore := env.dbBytes(ctx)
	cpuBefore := readCPU()
	env.ledger.reset()
	env.forum.reset()
	env.server.reset()
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if cfg.MutexProfile != nil {
		prev := runtime.SetMutexProfileFraction(1)
		defer runtime.SetMutexProfileFraction(prev)
	}

	start := time.Now()
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for _, r := range researchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(ctx, end)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if cfg.MutexProfile != nil {
		runtime.SetMutexProfileFraction(0)
		if err := pprof.Lookup("mutex").WriteTo(cfg.MutexProfile, 0); err != nil {
			return nil, fmt.Errorf("mutex profile: %w", err)
		}
	}
	cpuAfter := readCPU()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &Result{Store: cfg.Store, Researchers: cfg.Researchers, Campaigns: cfg.Campaigns, Transport: cfg.Transport,
		TestRows: cfg.TestRows, Seconds: elapsed.Seconds()}
	res.collect(researchers, env.server, elapsed)
	res.CPU = cpuAfter.since(cpuBefore, elapsed)
	if res.Requests > 0 {
		res.CPU.ProcessPerRq = res.CPU.Process * elapsed.Seconds() * 1000 / float64(res.Requests)
	}
	res.Ledger, err = env.ledgerGrowth(ctx, head.Seq, elapsed)
	if err != nil {
		return nil, err
	}
	res.Forum = env.forum.usage(elapsed)
	res.StoreBytes = env.dbBytes(ctx) - dbBefore
	res.SnapshotBytes = dirBytes(env.snapshotDir())
	if res.Replay, err = env.replay(ctx); err != nil {
		return nil, err
	}
	if cfg.VerifyLedger {
		rep, err := store.Verify(ctx, env.ledger.Ledger, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("verify the ledger: %w", err)
		}
		res.Verified = rep
	}
	return res, nil
}

// kindOf maps a lab request to the kind of step it serves ("" for routes
// the researchers do not call).
func kindOf(r *http.Request) string {
	switch r.Method + " " + r.URL.Path {
	case "GET /v1/control":
		return KindControl
	case "POST /v1/transcripts":
		return KindTranscript
	case "POST /v1/submissions":
		return KindSubmit
	case "POST /v1/validate":
		return KindValidate
	case "GET /v1/leaderboard":
		return KindLeaderboard
	case "GET /v1/findings":
		return KindForumSync
	case "GET /v1/findings/search":
		return KindForumSearch
	case "POST /v1/findings":
		return KindForumPost
	case "GET /v1/spend":
		return KindSpend
	case "POST /v1/snapshots":
		return KindSnapshot
	}
	return ""
}

// newLab opens the lab over the timed stores.
func newLab(ctx context.Context, dir string, ledger *timedLedger, forum *timedForum, log *slog.Logger) (*lab.Lab, error) {
	l, _, err := lab.New(ctx, lab.Config{DataDir: dir, Ledger: ledger, Forum: forum, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open the lab: %w", err)
	}
	return l, nil
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
