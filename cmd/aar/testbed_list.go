package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/testbed"
)

func newTestbedListCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the testbeds in the lab",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := g.testbeds()
			if err != nil {
				return err
			}
			names, err := store.Names()
			if err != nil {
				return err
			}
			ms := make([]*testbed.Manifest, 0, len(names))
			for _, n := range names {
				m, err := store.Manifest(n)
				if err != nil {
					return err
				}
				ms = append(ms, m)
			}
			if asJSON {
				return writeJSON(g.stdout, ms)
			}
			if len(ms) == 0 {
				fmt.Fprintln(g.stdout, "no testbeds yet (import one: aar testbed import DIR --name NAME)")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tCLASSES\tTEST\tPOOL\tWEAK SEEDS\tIMPORTED")
			for _, m := range ms {
				c := m.Counts
				if c == nil {
					c = &testbed.Counts{}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", m.Name, m.Kind, len(m.Classes), c.Test, c.Pool, len(m.WeakSeeds), m.ImportedAt)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
