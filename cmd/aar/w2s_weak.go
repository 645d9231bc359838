package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/w2s"
)

func newW2SWeakCmd(g *globals) *cobra.Command {
	var (
		seed string
		out  string
	)
	c := &cobra.Command{
		Use:   "weak [--seed 42] [--out FILE]",
		Short: "Write a weak seed's artifacts: soft labels, hard label and confidence per pool row",
		Long: `Weak writes, for each public pool row, the weak model's soft labels for the
seed, its hard label (argmax) and its confidence (the margin between the
two most probable classes), as JSONL. On stderr it summarises the hard-label
distribution and how many rows pass the study's confidence filter.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := w2s.OpenView(viewFlag(cmd))
			if err != nil {
				return err
			}
			soft, err := v.SoftLabels(seed)
			if err != nil {
				return usageError{err}
			}
			w, done, err := outputFile(g, out)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(w)
			k := len(v.Manifest.Classes)
			counts := make([]int, k)
			confident := 0
			for _, r := range v.Pool {
				p := soft[r.ID]
				hard := w2s.Argmax([][]float64{p})[0]
				conf := w2s.Confidence(p)
				counts[hard]++
				if conf >= w2s.MinConfidence {
					confident++
				}
				if err := enc.Encode(map[string]any{"id": r.ID, "probs": p, "label": hard, "confidence": conf}); err != nil {
					done()
					return err
				}
			}
			if err := done(); err != nil {
				return err
			}
			var dist []string
			for c, n := range counts {
				dist = append(dist, fmt.Sprintf("%s %d", v.Manifest.Classes[c], n))
			}
			fmt.Fprintf(g.stderr, "weak seed %s on %d pool rows: hard labels %s; %d rows with confidence ≥ %.2f\n",
				seed, len(v.Pool), strings.Join(dist, ", "), confident, w2s.MinConfidence)
			return nil
		},
	}
	c.Flags().StringVar(&seed, "seed", "42", "weak seed")
	c.Flags().StringVar(&out, "out", "", "output file (default stdout)")
	return c
}
