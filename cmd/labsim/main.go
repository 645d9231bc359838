// Command labsim measures the lab's throughput as researchers are added
// (internal/lab/labsim): for each store and each researcher count it runs a
// fresh lab with that many scripted researchers in a closed loop, then
// writes a table (Markdown and JSON) and a plot of throughput and p99
// latency against the researcher count.
//
//	go run ./cmd/labsim -out docs/scale            # make bench-scale
//	go run ./cmd/labsim -researchers 1,16,256 -duration 5s -stores sqlite
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/lab/labsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "labsim:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "Try: go run ./cmd/labsim -researchers 1,4,16 -duration 5s -stores sqlite -out /tmp/scale")
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("labsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := labsim.DefaultConfig()
	var (
		counts    = fs.String("researchers", "1,4,16,64,256,1024", "researcher counts to run, comma-separated")
		duration  = fs.Duration("duration", 10*time.Second, "closed-loop time per run")
		storeList = fs.String("stores", "sqlite,postgres", "stores to run on: sqlite, postgres (postgres is skipped without -postgres)")
		pgURL     = fs.String("postgres", os.Getenv("AAR_TEST_POSTGRES"), "PostgreSQL server URL (default $AAR_TEST_POSTGRES); each run makes and drops its own database")
		transport = fs.String("transport", def.Transport, "tcp, unix or both (alternate researchers)")
		campaigns = fs.Int("campaigns", 1, "campaigns to spread the researchers over (at most the smallest count)")
		rows      = fs.Int("rows", def.TestRows, "test rows of the synthetic testbed")
		out       = fs.String("out", "docs/scale", "directory for NAME.md, NAME.json, NAME.svg and NAME.png")
		name      = fs.String("name", "scale", "base name of the files written")
		profile   = fs.String("profile", "", "directory for CPU and mutex profiles of the largest run per store (cpu-STORE-N.pprof, mutex-STORE-N.pprof; mutex records accumulate, so profile one store per invocation)")
		verify    = fs.Bool("verify", false, "check each run's ledger chain at the end")
		from      = fs.String("from", "", "run nothing: rewrite the table and plot from this NAME.json")
	)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *from != "" {
		b, err := os.ReadFile(*from)
		if err != nil {
			return err
		}
		var rep labsim.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: %w", *from, err)
		}
		return rep.WriteFiles(*out, *name)
	}
	var ns []int
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return usageError{fmt.Errorf("-researchers %q: give counts ≥ 1, comma-separated", *counts)}
		}
		ns = append(ns, n)
	}
	slices.Sort(ns)
	var stores []string
	for _, s := range strings.Split(*storeList, ",") {
		switch s = strings.TrimSpace(s); s {
		case labsim.StoreSQLite:
			stores = append(stores, s)
		case labsim.StorePostgres:
			if *pgURL == "" {
				fmt.Fprintln(stderr, "labsim: skipping postgres: give -postgres URL or set AAR_TEST_POSTGRES")
				continue
			}
			stores = append(stores, s)
		default:
			return usageError{fmt.Errorf("-stores %q: use sqlite and/or postgres", *storeList)}
		}
	}
	if len(stores) == 0 {
		return usageError{errors.New("no store to run on")}
	}

	rep := &labsim.Report{Command: "go run ./cmd/labsim " + strings.Join(args, " "), Date: time.Now().UTC().Format("2006-01-02"),
		Machine: labsim.ThisMachine(), Duration: duration.String(), Transport: *transport, Mix: def.Mix}
	for _, st := range stores {
		for _, n := range ns {
			cfg := def
			cfg.Researchers, cfg.Duration, cfg.Store, cfg.PostgresURL = n, *duration, st, *pgURL
			cfg.Transport, cfg.Campaigns, cfg.TestRows, cfg.VerifyLedger = *transport, min(*campaigns, n), *rows, *verify
			var profs []*os.File
			if *profile != "" && n == ns[len(ns)-1] {
				if err := os.MkdirAll(*profile, 0o755); err != nil {
					return err
				}
				for _, kind := range []string{"cpu", "mutex"} {
					f, err := os.Create(filepath.Join(*profile, fmt.Sprintf("%s-%s-%d.pprof", kind, st, n)))
					if err != nil {
						return err
					}
					profs = append(profs, f)
				}
				cfg.CPUProfile, cfg.MutexProfile = profs[0], profs[1]
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			res, err := labsim.Run(ctx, cfg)
			for _, f := range profs {
				f.Close()
			}
			if err != nil {
				return fmt.Errorf("%s with %d researchers: %w", st, n, err)
			}
			fmt.Fprintf(stderr, "%-8s %5d researchers: %7.0f req/s, %6.1f submissions/s, p50 %7.2f ms, p99 %8.2f ms, %d errors, ledger %5.0f events/s (append busy %3.0f%%), CPU %.2f/%.2f cores\n",
				st, n, res.RequestsPerSec, res.SubmissionsPerSec, res.P50Ms, res.P99Ms, res.Errors, res.Ledger.EventsPerSec, 100*res.Ledger.AppendBusy, res.CPU.Process, res.CPU.Machine)
			rep.Runs = append(rep.Runs, res)
		}
	}
	if err := rep.WriteFiles(*out, *name); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", filepath.Join(*out, *name+".{md,json,svg,png}"))
	return nil
}
