package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/stats"
	"github.com/aar-lab/aar/internal/testbed"
)

func newScoreCmd(g *globals) *cobra.Command {
	var (
		tbName  string
		split   string
		compare string
		asJSON  bool
	)
	c := &cobra.Command{
		Use:   "score --testbed NAME PREDICTIONS...",
		Short: "Score prediction files against a testbed's hidden labels (admin: reads labels)",
		Long: `Score reads one predictions file per seed and prints accuracy and PGR for every
cell (split × overall/ID/OOD), with mean ± SE across seeds.

A predictions file is JSONL, one {"id": ..., "label": CLASS_INDEX} per line,
or a JSON array of class indexes in the order of the public test.jsonl.
A prediction is the class index: comparison A=0, B=1; binary false=0, true=1.
Each file is one seed, named by its base name.

PGR = (accuracy − weak) / (ceiling − weak) against the cell's fixed
baselines; it is not clipped, and it is null when ceiling − weak is under 5
points. --compare FILE[,FILE...] adds a paired bootstrap 95% interval of the
accuracy and PGR difference (PREDICTIONS minus the compared files, each side
averaged over its seeds) per cell.`,
		Example: `  aar score --testbed chat preds/42.jsonl preds/43.jsonl
  aar score --testbed chat --split holdout --json preds/*.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tbName == "" {
				return usagef("--testbed is required")
			}
			var splits []string
			switch split {
			case "all", "":
			case testbed.SplitFeedback, testbed.SplitHoldout, testbed.SplitSealed:
				splits = []string{split}
			default:
				return usagef("--split %q: use feedback, holdout, sealed or all", split)
			}
			tb, err := g.loadTestbed(tbName)
			if err != nil {
				return err
			}
			var preds []score.Predictions
			for _, path := range args {
				p, err := score.ReadPredictionsFile(path, tb)
				if err != nil {
					return err
				}
				preds = append(preds, p)
			}
			rep, err := score.Score(tb, preds, splits)
			if err != nil {
				return err
			}
			var cmps []*score.Comparison
			if compare != "" {
				var other []score.Predictions
				for _, path := range strings.Split(compare, ",") {
					o, err := score.ReadPredictionsFile(strings.TrimSpace(path), tb)
					if err != nil {
						return err
					}
					other = append(other, o)
				}
				for _, cell := range rep.Cells {
					if cell.Rows == 0 {
						continue
					}
					cmp, err := score.Compare(tb, preds, other, cell.Split, cell.Group, 2000, 1)
					if err != nil {
						return err
					}
					cmps = append(cmps, cmp)
				}
			}
			if asJSON {
				if cmps != nil {
					return writeJSON(g.stdout, struct {
						*score.Report
						Comparisons []*score.Comparison `json:"comparisons"`
					}{rep, cmps})
				}
				return writeJSON(g.stdout, rep)
			}
			return printReport(g, rep, cmps)
		},
	}
	f := c.Flags()
	f.StringVar(&tbName, "testbed", "", "testbed name (required)")
	f.StringVar(&split, "split", "all", "feedback, holdout, sealed, or all (every split the predictions cover)")
	f.StringVar(&compare, "compare", "", "predictions to compare against (paired bootstrap): a file, or comma-separated files one per seed")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printReport(g *globals, rep *score.Report, cmps []*score.Comparison) error {
	w := g.stdout
	fmt.Fprintf(w, "testbed %s · %d seed(s): %s\n", rep.Testbed, len(rep.Seeds), strings.Join(rep.Seeds, ", "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SPLIT\tGROUP\tROWS\tACCURACY\tWEAK\tCEILING\tPGR\tNOTE")
	for _, c := range rep.Cells {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Split, c.Group, c.Rows, summary(c.Accuracy), figMean(c.Weak), figMean(c.Ceiling), summary(c.PGR), c.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(cmps) > 0 {
		fmt.Fprintln(w, "\npaired bootstrap, PREDICTIONS (seed-averaged) minus --compare (95% interval, 2000 resamples):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SPLIT\tGROUP\tROWS\tΔ ACCURACY\tΔ PGR")
		for _, c := range cmps {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", c.Split, c.Group, c.Rows, interval(&c.Accuracy), interval(c.PGR))
		}
		return tw.Flush()
	}
	return nil
}

func summary(s *stats.Summary) string {
	if s == nil {
		return "null"
	}
	if s.N < 2 {
		return fmt.Sprintf("%.4f", s.Mean)
	}
	return fmt.Sprintf("%.4f ± %.4f", s.Mean, s.SE)
}

func figMean(f *testbed.Figure) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", f.Mean)
}

func interval(iv *stats.Interval) string {
	if iv == nil {
		return "null"
	}
	return fmt.Sprintf("%+.4f [%+.4f, %+.4f]", iv.Estimate, iv.Lo, iv.Hi)
}
