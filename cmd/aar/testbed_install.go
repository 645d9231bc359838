package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/builtin"
	"github.com/aar-lab/aar/internal/testbed"
)

func newTestbedInstallCmd(g *globals) *cobra.Command {
	var (
		from       string
		seeds      int
		threads    int
		replace    bool
		splitSeedN uint64
	)
	c := &cobra.Command{
		Use:   "install [NAME...]",
		Short: "Install built-in testbeds into the lab: splits, 16-seed weak artifacts, ceilings, fixed baselines",
		Long: `Install reads each built-in testbed from the committed testbeds directory
(--from, else $AAR_TESTBEDS, else testbeds/ beside bin/, else ./testbeds),
trains its weak model and ceiling for every seed (42, 43, …) on CPU, draws
private splits and imports it into the lab's data directory. With no NAME
it installs every testbed found there. Testbed data is never built into the
aar binary.`,
		Example: `  aar testbed install reviews
  aar testbed install --replace`,
		RunE: func(cmd *cobra.Command, args []string) error {
			softMemoryLimit()
			var splitSeed *uint64
			if cmd.Flags().Changed("split-seed") {
				splitSeed = &splitSeedN
			}
			dir, err := builtin.FindDir(from)
			if err != nil {
				return err
			}
			names := args
			if len(names) == 0 {
				if names, err = committedNames(dir); err != nil {
					return err
				}
			}
			store, err := g.testbeds()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(g.stderr, nil))
			for _, name := range names {
				if replace {
					if err := store.Remove(name); err != nil && !isNotFound(err) {
						return err
					}
				}
				start := time.Now()
				fmt.Fprintf(g.stdout, "installing %s from %s …\n", name, dir)
				tb, err := builtin.Install(cmd.Context(), store, dir, name, builtin.InstallOptions{Seeds: seeds, Threads: threads, Log: log, SplitSeed: splitSeed})
				if err != nil {
					return err
				}
				printInstalled(g, tb, time.Since(start))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&from, "from", "", "directory of committed built-in testbeds")
	f.IntVar(&seeds, "seeds", builtin.ArtifactSeedCount, "weak and ceiling seeds to make")
	f.IntVar(&threads, "threads", runtime.NumCPU(), "seeds trained in parallel")
	f.BoolVar(&replace, "replace", false, "remove an installed testbed of the same name first")
	f.Uint64Var(&splitSeedN, "split-seed", 0, "draw the private splits from this seed (reproducible installs; default: a fresh random seed)")
	return c
}

func isNotFound(err error) bool {
	_, ok := err.(*testbed.NotFoundError)
	return ok
}

// committedNames lists the testbed directories under dir.
func committedNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if _, err := os.Stat(dir + "/" + e.Name() + "/testbed.json"); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no testbeds under %s", dir)
	}
	return names, nil
}

func printInstalled(g *globals, tb *testbed.Testbed, took time.Duration) {
	m := tb.Manifest
	c := m.Counts
	fmt.Fprintf(g.stdout, "installed %s in %s: train_label %d · pool %d (%d sealed) · test %d (feedback %d, holdout %d, sealed %d)\n",
		m.Name, took.Round(time.Millisecond), c.TrainLabel, c.Pool, c.PoolSealed, c.Test, c.TestFeedback, c.TestHoldout, c.TestSealed)
	for _, cb := range m.Baselines {
		if cb.Split == testbed.SplitFeedback && cb.Rows > 0 && cb.Weak != nil && cb.Ceiling != nil {
			fmt.Fprintf(g.stdout, "  feedback %-7s weak %s  ceiling %s  gap %.1f points\n", cb.Group, fig(cb.Weak), fig(cb.Ceiling), 100*(cb.Ceiling.Mean-cb.Weak.Mean))
		}
	}
}
