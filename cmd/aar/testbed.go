package main

import "github.com/spf13/cobra"

func newTestbedCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "testbed",
		Short: "Import, list, show and publish testbeds (research problems with hidden test labels)",
	}
	c.AddCommand(newTestbedImportCmd(g), newTestbedListCmd(g), newTestbedShowCmd(g), newTestbedPublicCmd(g), newTestbedBuildCmd(g), newTestbedInstallCmd(g), newTestbedRemoveCmd(g))
	return c
}
