package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newTestbedPublicCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "public NAME OUT",
		Short: "Write the public view of a testbed (what researchers see: no labels, subsets or sealed rows)",
		Long: `Public writes OUT/testbed.json (public manifest with the feedback split's fixed
baselines), OUT/train_unlabel.jsonl and OUT/test.jsonl (id and the row kind's
public fields only; no label, subset or difficulty; no sealed row),
OUT/weak/<seed>.jsonl (the weak model's soft labels on the pool, when the
testbed has them) and OUT/features/ (when it ships a frozen representation).
There is no train_label.jsonl. Predictions given as a JSON array follow the
order of OUT/test.jsonl.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tb, err := g.loadTestbed(args[0])
			if err != nil {
				return err
			}
			if err := tb.WritePublic(args[1], force); err != nil {
				return err
			}
			pm := tb.PublicManifest()
			fmt.Fprintf(g.stdout, "wrote the public view of %s to %s: %d test rows, %d pool rows, %d weak seeds\n",
				tb.Manifest.Name, args[1], pm.Rows.Test, pm.Rows.Pool, len(pm.WeakSeeds))
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "replace OUT if it is not empty")
	return c
}
