package main

import (
	"log/slog"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/labmcp"
)

func newMCPCmd(g *globals) *cobra.Command {
	var labAddr, workspace string
	var verbose bool
	c := &cobra.Command{
		Use:   "mcp [--lab unix:///run/aar/lab.sock] [--workspace DIR]",
		Short: "Serve the lab's tools to an MCP client over stdio (reads AAR_LAB and AAR_TOKEN)",
		Long: `Mcp is an MCP server on stdin/stdout for any MCP client configured with a
command (in a sandbox, or on your machine): it connects to the lab's MCP
endpoint (/mcp on AAR_LAB, default unix:///run/aar/lab.sock) with your
researcher token (AAR_TOKEN), re-exposes every tool the lab offers, and adds
submit_files (prediction files, one per seed, submitted with a snapshot of
the workspace), push_workspace and pull_workspace, which read and write this
machine's files. Relative paths are under --workspace (default /workspace
when it exists, else the current directory).

Claude Code (.mcp.json): {"mcpServers": {"aar": {"command": "aar", "args": ["mcp"]}}}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if labAddr == "" {
				labAddr = os.Getenv("AAR_LAB")
			}
			tok := os.Getenv("AAR_TOKEN")
			if tok == "" {
				return usagef("set AAR_TOKEN to your researcher token (and AAR_LAB to the lab's address; default %s)", labmcp.DefaultLab)
			}
			if workspace == "" {
				workspace = labmcp.DefaultWorkspace
				if st, err := os.Stat(workspace); err != nil || !st.IsDir() {
					if workspace, err = os.Getwd(); err != nil {
						return err
					}
				}
			}
			level := slog.LevelError
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			p, err := labmcp.Dial(cmd.Context(), labmcp.ProxyConfig{Lab: labAddr, Token: tok, Workspace: workspace, Version: version, Logger: log})
			if err != nil {
				return err
			}
			defer p.Close()
			return p.Run(cmd.Context(), &mcp.StdioTransport{MaxLineLength: 256 << 20})
		},
	}
	c.Flags().StringVar(&labAddr, "lab", "", "the lab: http://host:port or unix:///path (default $AAR_LAB, else "+labmcp.DefaultLab+")")
	c.Flags().StringVar(&workspace, "workspace", "", "the directory relative paths are under (default /workspace when it exists, else the current directory)")
	c.Flags().BoolVar(&verbose, "verbose", false, "log the MCP SDK's diagnostics to stderr")
	return c
}
