package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newTestbedRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a testbed (its rows, splits and baselines) from the lab",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := g.testbeds()
			if err != nil {
				return err
			}
			if err := store.Remove(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed testbed %s\n", args[0])
			return nil
		},
	}
}
