package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/w2s"
)

func newW2SFeaturesCmd(g *globals) *cobra.Command {
	var (
		split, which, format, out string
	)
	c := &cobra.Command{
		Use:   "features --split pool|test [--which strong|weak] [--format jsonl|npy] [--out FILE]",
		Short: "Write the frozen representation of the view's rows",
		Long: `Features writes the strong (default) or weak representation of the public
pool or test rows. JSONL lines are sparse: {"id", "idx": [...], "val": [...]}
with "dim" on every line. .npy is a dense float32 array in the rows' order,
with the ids one per line in OUT.ids.`,
		Example: `  aar w2s features --split pool --out pool.jsonl
  aar w2s features --split test --format npy --out test.npy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "jsonl" && format != "npy" {
				return usagef("--format %q: use jsonl or npy", format)
			}
			if which != "strong" && which != "weak" {
				return usagef("--which %q: use strong or weak", which)
			}
			if format == "npy" && (out == "" || out == "-") {
				return usagef("--format npy needs --out FILE")
			}
			v, err := w2s.OpenView(viewFlag(cmd))
			if err != nil {
				return err
			}
			rows, err := v.Rows(split)
			if err != nil {
				return usageError{err}
			}
			build := v.Repr.BuildStrong
			if which == "weak" {
				build = v.Repr.BuildWeak
			}
			m, err := build(w2s.PublicText(rows))
			if err != nil {
				return err
			}
			w, done, err := outputFile(g, out)
			if err != nil {
				return err
			}
			if format == "npy" {
				if err := writeNPY(w, m); err != nil {
					done()
					return err
				}
				ids := make([]string, len(rows))
				for i, r := range rows {
					ids[i] = r.ID
				}
				if err := os.WriteFile(out+".ids", []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
					done()
					return err
				}
			} else {
				enc := json.NewEncoder(w)
				for i, r := range rows {
					idx, val := m.Row(i)
					if err := enc.Encode(featureLine{ID: r.ID, Dim: m.Cols, Idx: idx, Val: val}); err != nil {
						done()
						return err
					}
				}
			}
			if err := done(); err != nil {
				return err
			}
			if out != "" && out != "-" {
				fmt.Fprintf(g.stderr, "wrote %s features of %d %s rows (%d columns) to %s\n", which, m.Rows(), split, m.Cols, out)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&split, "split", "pool", "pool (train_unlabel) or test")
	f.StringVar(&which, "which", "strong", "strong (the student's input) or weak (the weak model's)")
	f.StringVar(&format, "format", "jsonl", "jsonl (sparse) or npy (dense float32)")
	f.StringVar(&out, "out", "", "output file (default stdout; required for npy)")
	return c
}

type featureLine struct {
	ID  string    `json:"id"`
	Dim int       `json:"dim"`
	Idx []int32   `json:"idx"`
	Val []float32 `json:"val"`
}
