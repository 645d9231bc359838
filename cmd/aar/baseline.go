package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/baseline"
	"github.com/aar-lab/aar/internal/builtin"
	"github.com/aar-lab/aar/internal/testbed"
	"github.com/aar-lab/aar/internal/w2s"
)

func newBaselineCmd(g *globals) *cobra.Command {
	var (
		tbName  string
		methods string
		seeds   string
		split   string
		all     bool
		out     string
		from    string
		threads int
		asJSON  bool
	)
	var names []string
	for _, m := range w2s.Methods {
		names = append(names, m.Name)
	}
	c := &cobra.Command{
		Use:   "baseline (--testbed T --method M | --all)",
		Short: "Run built-in weak-to-strong baselines on CPU and report accuracy and PGR per cell (admin: reads labels)",
		Long: `Baseline trains each method's strong student from every seed's weak soft
labels on the testbed's public pool, predicts the test rows and prints weak,
ceiling and transfer accuracy and PGR (overall, ID, OOD) as mean ± SE over
seeds, with the time taken.

Methods: ` + strings.Join(names, ", ") + `.

--all runs every method on every built-in testbed (installing any that is
missing) and writes OUT/baselines.md, OUT/baselines.png and OUT/baselines.svg.`,
		Example: `  aar baseline --testbed reviews --method vanilla_w2s
  aar baseline --testbed metamath --method logconf --seeds 42,43,44 --split feedback --json
  aar baseline --all --out results`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			softMemoryLimit()
			if split != testbed.SplitFeedback && split != testbed.SplitHoldout {
				return usagef("--split %q: use feedback or holdout", split)
			}
			if !all && (tbName == "" || methods == "") {
				return usagef("give --testbed and --method, or --all")
			}
			seedList := splitList(seeds)
			var methodList []string
			if methods != "" {
				methodList = splitList(methods)
			} else {
				methodList = names
			}
			for _, m := range methodList {
				if _, err := w2s.MethodByName(m); err != nil {
					return usageError{err}
				}
			}
			store, err := g.testbeds()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			var tbNames []string
			if all && tbName == "" {
				dir, err := builtin.FindDir(from)
				if err != nil {
					return err
				}
				if tbNames, err = committedNames(dir); err != nil {
					return err
				}
			} else {
				tbNames = splitList(tbName)
			}
			start := time.Now()
			var results []*baseline.Result
			for _, name := range tbNames {
				tb, err := ensureInstalled(cmd, g, store, from, name, threads, log)
				if err != nil {
					return err
				}
				prep, err := baseline.Prepare(tb)
				if err != nil {
					return err
				}
				if !asJSON {
					fmt.Fprintf(g.stderr, "%s: featurized in %s\n", name, prep.FeaturizeTime.Round(time.Millisecond))
				}
				for _, m := range methodList {
					res, err := prep.Run(cmd.Context(), baseline.Options{Method: m, Seeds: seedList, Splits: []string{split}, Threads: threads})
					if err != nil {
						return err
					}
					results = append(results, res)
					if !asJSON {
						printResult(g, res, split)
					}
				}
			}
			if err := baseline.CompareToVanilla(results, split, 2000); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, results)
			}
			if all {
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				md := filepath.Join(out, "baselines.md")
				f, err := os.Create(md)
				if err != nil {
					return err
				}
				fmt.Fprintf(f, "# Built-in baselines (%s split, seeds %s)\n\n", split, strings.Join(results[0].Seeds, ", "))
				fmt.Fprintf(f, "Mean ± SE over seeds. Δ PGR vs vanilla: paired bootstrap over the split's rows (2,000 resamples, each row's correctness averaged over seeds); * marks a 95%% interval that excludes zero.\n\n")
				if err := baseline.Markdown(f, results, split); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				for _, ext := range []string{"png", "svg"} {
					if err := baseline.Chart(filepath.Join(out, "baselines."+ext), results, split); err != nil {
						return fmt.Errorf("chart: %w", err)
					}
				}
				fmt.Fprintln(g.stdout)
				if err := baseline.Markdown(g.stdout, results, split); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "\nwrote %s, %s and %s in %s\n", md, filepath.Join(out, "baselines.png"), filepath.Join(out, "baselines.svg"), time.Since(start).Round(time.Second))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&tbName, "testbed", "", "testbed name(s), comma-separated")
	f.StringVar(&methods, "method", "", "method name(s), comma-separated (default with --all: every method)")
	f.StringVar(&seeds, "seeds", strings.Join(baseline.DefaultSeeds, ","), "weak-artifact seeds to run")
	f.StringVar(&split, "split", testbed.SplitHoldout, "feedback or holdout")
	f.BoolVar(&all, "all", false, "every method on every built-in testbed; writes a table and charts")
	f.StringVar(&out, "out", "baselines", "where --all writes baselines.md, .png and .svg")
	f.StringVar(&from, "from", "", "directory of committed built-in testbeds (to install missing ones)")
	f.IntVar(&threads, "threads", runtime.NumCPU(), "seeds trained in parallel")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// ensureInstalled loads a testbed, installing it from the built-in testbeds
// when it is missing.
func ensureInstalled(cmd *cobra.Command, g *globals, store *testbed.Store, from, name string, threads int, log *slog.Logger) (*testbed.Testbed, error) {
	tb, err := store.Load(name)
	if err == nil || !isNotFound(err) {
		return tb, err
	}
	dir, derr := builtin.FindDir(from)
	if derr != nil {
		return nil, fmt.Errorf("%w; and it is not installable: %v", err, derr)
	}
	if _, serr := os.Stat(filepath.Join(dir, name, "testbed.json")); serr != nil {
		return nil, err
	}
	fmt.Fprintf(g.stderr, "%s is not installed: installing it from %s (16 weak and ceiling seeds) …\n", name, dir)
	start := time.Now()
	tb, err = builtin.Install(cmd.Context(), store, dir, name, builtin.InstallOptions{Threads: threads, Log: log})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(g.stderr, "installed %s in %s\n", name, time.Since(start).Round(time.Millisecond))
	return tb, nil
}

func printResult(g *globals, r *baseline.Result, split string) {
	fmt.Fprintf(g.stdout, "\n%s · %s · %s split · seeds %s · %s\n", r.Testbed, r.Method, split, strings.Join(r.Seeds, ","), r.Elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tROWS\tWEAK\tCEILING\tTRANSFER\tPGR\tNOTE")
	for _, c := range r.Report.Cells {
		if c.Rows == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Group, c.Rows, fig(c.Weak), fig(c.Ceiling), baseline.FormatSummary(c.Accuracy, 4), baseline.FormatSummary(c.PGR, 3), c.Note)
	}
	tw.Flush()
}

// softMemoryLimit asks the garbage collector to keep the heap under 400 MiB
// (unless GOMEMLIMIT says otherwise): baselines hold a few hundred MB of
// features and soft labels and make short-lived garbage while loading, and
// without a limit the collector lets the heap grow to twice what is live.
// It is a soft limit: a larger live heap still runs, with more collection.
func softMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(400 << 20)
	}
}
