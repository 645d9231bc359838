package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/testbed"
)

func newTestbedImportCmd(g *globals) *cobra.Command {
	var (
		opts      testbed.ImportOptions
		idSubs    string
		oodSubs   string
		splitSeed string
		asJSON    bool
		sealed    float64
	)
	c := &cobra.Command{
		Use:   "import DIR --name NAME",
		Short: "Validate a labelled testbed directory and copy it into the lab's private store",
		Long: `Import reads DIR (train_label.jsonl, train_unlabel.jsonl, test.jsonl and an
optional testbed.json, weak/, baselines/ and features/), checks every row,
draws the feedback/holdout/sealed splits and computes the fixed baselines.
The public study's labeled_data/<chat|math|code> directories import
unchanged; --cache reads its cache_results for weak soft labels and baselines.
Nothing is written unless the whole directory checks out.`,
		Example: `  aar testbed import labeled_data/chat --name chat --cache cache_results
  aar testbed import mydata --name mine --ood-subsets imdb,yelp`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Name == "" {
				return usagef("--name is required: the name the testbed will have in the lab")
			}
			opts.IDSubsets = splitList(idSubs)
			opts.OODSubsets = splitList(oodSubs)
			if splitSeed != "" {
				s, err := strconv.ParseUint(splitSeed, 10, 64)
				if err != nil {
					return usagef("--split-seed %q is not a non-negative integer", splitSeed)
				}
				opts.SplitSeed = &s
			}
			if !(sealed >= 0 && sealed < 1) {
				return usagef("--sealed-fraction %v: use a value in [0, 1)", sealed)
			}
			opts.SealedFraction = &sealed
			store, err := g.testbeds()
			if err != nil {
				return err
			}
			tb, err := store.Import(args[0], opts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, tb.Manifest)
			}
			m := tb.Manifest
			fmt.Fprintf(g.stdout, "imported testbed %s (%s, classes %s) into %s\n", m.Name, m.Kind, strings.Join(m.Classes, "/"), tb.Dir())
			c := m.Counts
			fmt.Fprintf(g.stdout, "rows: train_label %d · train_unlabel %d (%d sealed) · test %d (feedback %d, holdout %d, sealed %d)\n",
				c.TrainLabel, c.Pool, c.PoolSealed, c.Test, c.TestFeedback, c.TestHoldout, c.TestSealed)
			fmt.Fprintf(g.stdout, "subsets: ID %s · OOD %s\n", orNone(m.IDSubsets), orNone(m.OODSubsets))
			fmt.Fprintf(g.stdout, "weak soft-label seeds: %d\n", len(m.WeakSeeds))
			for _, n := range m.ImportNotes {
				fmt.Fprintf(g.stdout, "note: %s\n", n)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&opts.Name, "name", "", "name of the testbed in the lab (required)")
	f.StringVar(&opts.Cache, "cache", "", "the public study's cache_results directory (weak soft labels, baselines)")
	f.StringVar(&opts.CacheDataset, "cache-dataset", "", "dataset name inside --cache (default: DIR's base name)")
	f.StringVar(&idSubs, "id-subsets", "", "comma-separated subset values that are in-distribution")
	f.StringVar(&oodSubs, "ood-subsets", "", "comma-separated subset values that are out-of-distribution")
	f.StringVar(&splitSeed, "split-seed", "", "seed for the split draw (default: random, recorded privately)")
	f.Float64Var(&sealed, "sealed-fraction", testbed.DefaultSealedFraction, "share of train_unlabel and of test rows sealed away from every public view")
	f.BoolVar(&asJSON, "json", false, "print the private manifest as JSON")
	return c
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "(none)"
	}
	return strings.Join(xs, ", ")
}
