package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/testbed"
)

func newTestbedShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a testbed's manifest, splits and fixed baselines (admin: includes holdout and sealed figures)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := g.testbeds()
			if err != nil {
				return err
			}
			m, err := store.Manifest(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, m)
			}
			w := g.stdout
			fmt.Fprintf(w, "testbed %s\n", m.Name)
			fmt.Fprintf(w, "kind: %s · classes: %s · %s\n", m.Kind, strings.Join(m.Classes, ", "), m.PredictionEncoding())
			fmt.Fprintf(w, "subsets: ID %s · OOD %s\n", orNone(m.IDSubsets), orNone(m.OODSubsets))
			if m.License != "" || m.Source != "" {
				fmt.Fprintf(w, "licence: %s · source: %s\n", m.License, m.Source)
			}
			if c := m.Counts; c != nil {
				fmt.Fprintf(w, "rows: train_label %d · train_unlabel %d (%d sealed) · test %d (feedback %d, holdout %d, sealed %d)\n",
					c.TrainLabel, c.Pool, c.PoolSealed, c.Test, c.TestFeedback, c.TestHoldout, c.TestSealed)
			}
			if s := m.Split; s != nil {
				fmt.Fprintf(w, "splits: sealed %.0f%%, holdout %.0f%% of the rest, stratified by %s\n", 100*s.SealedFraction, 100*s.HoldoutFraction, s.StratifiedBy)
			}
			fmt.Fprintf(w, "weak soft-label seeds: %d\n", len(m.WeakSeeds))
			if m.Notes != "" {
				fmt.Fprintf(w, "notes: %s\n", m.Notes)
			}
			fmt.Fprintln(w, "\nfixed baselines (mean ± SE over seeds):")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SPLIT\tGROUP\tROWS\tWEAK\tCEILING\tGAP\tBASIS\tNOTE")
			for _, cb := range m.Baselines {
				gap := "-"
				if cb.Weak != nil && cb.Ceiling != nil {
					gap = fmt.Sprintf("%.4f", cb.Ceiling.Mean-cb.Weak.Mean)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", cb.Split, cb.Group, cb.Rows, fig(cb.Weak), fig(cb.Ceiling), gap, basis(cb), cb.Note)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, n := range m.ImportNotes {
				fmt.Fprintf(w, "note: %s\n", n)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the private manifest as JSON")
	return c
}

func fig(f *testbed.Figure) string {
	if f == nil {
		return "-"
	}
	if f.Seeds < 2 {
		return fmt.Sprintf("%.4f (1 seed)", f.Mean)
	}
	return fmt.Sprintf("%.4f ± %.4f (%d)", f.Mean, f.SE, f.Seeds)
}

func basis(cb testbed.CellBaseline) string {
	var b []string
	for _, f := range []*testbed.Figure{cb.Weak, cb.Ceiling} {
		if f != nil && (len(b) == 0 || b[0] != f.Basis) {
			b = append(b, f.Basis)
		}
	}
	return strings.Join(b, "/")
}
