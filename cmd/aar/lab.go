package main

import (
	"context"
	"fmt"
	"github.com/aar-lab/aar/internal/web"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/forum"
	forumpg "github.com/aar-lab/aar/internal/forum/postgres"
	forumsqlite "github.com/aar-lab/aar/internal/forum/sqlite"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/labmcp"
	"github.com/aar-lab/aar/internal/proxy"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/store/postgres"
	"github.com/aar-lab/aar/internal/store/sqlite"
)

func newLabCmd(g *globals) *cobra.Command {
	var (
		addr, db, socket string
		checkpointEvery  int
	)
	c := &cobra.Command{
		Use:   "lab [--addr 127.0.0.1:8420] [--db PATH|postgres://...] [--socket PATH]",
		Short: "Run the lab server: scoring API, tokens, campaigns, ledger",
		Long: `Lab serves the versioned JSON API under /v1 (OpenAPI at /v1/openapi.json,
liveness at /healthz) on --addr and on a Unix socket (default DATA/lab.sock)
so sandboxes reach it without a network. State is the ledger (--db: a SQLite
file, default DATA/lab.db, or a postgres:// URL). On first start it prints
the admin token once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.dataDir()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			if socket == "" {
				socket = filepath.Join(dir, "lab.sock")
			}
			ctx := cmd.Context()
			ledger, err := openLabLedger(ctx, dir, db)
			if err != nil {
				return err
			}
			defer ledger.Close()
			fstore, err := openForum(ctx, dir, db)
			if err != nil {
				return err
			}
			defer fstore.Close()
			log := slog.New(slog.NewJSONHandler(g.stderr, nil))
			l, admin, err := lab.New(ctx, lab.Config{DataDir: dir, Ledger: ledger, Forum: fstore, Logger: log, CheckpointEvery: checkpointEvery})
			if err != nil {
				return err
			}
			if admin != "" {
				fmt.Fprintf(g.stdout, "admin token (shown once; the lab keeps only its hash):\n%s\n", admin)
			}
			dash, err := web.New(l, webOptions(dir, socket))
			if err != nil {
				return err
			}
			l.SetWeb(dash.Handler())
			l.SetMCP(labmcp.New(l, &labmcp.Options{Logger: log, Version: version}).Handler())
			l.SetProxy(proxy.FromEnv(l, os.Getenv, log))
			if vf, err := newVerifier(g, l, dir, io.Discard, verifyOpts{seeds: 5}); err == nil {
				l.SetVerifier(vf.Verify)
			} else {
				log.Warn("no verifier: POST /v1/verify will answer 503", "error", err)
			}
			return l.Serve(ctx, addr, socket, func(a net.Addr) {
				fmt.Fprintf(g.stdout, "lab listening on http://%s and unix://%s (dashboard: http://%s/)\n", a, socket, a)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8420", "TCP address to listen on")
	f.StringVar(&db, "db", "", "ledger database: a SQLite path or postgres://… (default DATA/lab.db)")
	f.StringVar(&socket, "socket", "", "Unix socket path (default DATA/lab.sock)")
	f.IntVar(&checkpointEvery, "checkpoint-every", 100, "sign the ledger head every N entries")
	c.AddCommand(newLabTokenCmd(g), newLabCampaignCmd(g))
	return c
}

// openLabLedger opens (creating if needed) the ledger: db is a postgres://
// URL or a SQLite path; empty means DATA/lab.db.
func openLabLedger(ctx context.Context, dir, db string) (store.Ledger, error) {
	if isPostgres(db) {
		return postgres.Open(ctx, db)
	}
	if db == "" {
		db = filepath.Join(dir, "lab.db")
	}
	return sqlite.Open(ctx, db)
}

func newLabTokenCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "Manage researcher tokens (admin; uses AAR_LAB and an admin AAR_TOKEN)"}
	var researcher, campaign string
	create := &cobra.Command{
		Use:   "create --researcher NAME --campaign ID",
		Short: "Create a researcher token for a campaign (printed once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if researcher == "" || campaign == "" {
				return usagef("--researcher and --campaign are required")
			}
			cl, err := labclient.FromEnv()
			if err != nil {
				return usageError{err}
			}
			var out map[string]string
			if _, err := cl.Do(cmd.Context(), "POST", "/v1/tokens", map[string]string{"researcher": researcher, "campaign": campaign}, &out, nil); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, out["token"])
			return nil
		},
	}
	create.Flags().StringVar(&researcher, "researcher", "", "researcher name")
	create.Flags().StringVar(&campaign, "campaign", "", "campaign id")
	revoke := &cobra.Command{
		Use:   "revoke TOKEN|SHA256",
		Short: "Revoke a token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := labclient.FromEnv()
			if err != nil {
				return usageError{err}
			}
			if _, err := cl.Do(cmd.Context(), "DELETE", "/v1/tokens/"+args[0], nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "revoked")
			return nil
		},
	}
	c.AddCommand(create, revoke)
	return c
}

func newLabCampaignCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "campaign", Short: "Manage campaigns (admin; uses AAR_LAB and an admin AAR_TOKEN)"}
	var camp lab.Campaign
	create := &cobra.Command{
		Use:   "create --id ID --testbed NAME [--policy default|ladder|anchor]",
		Short: "Create a campaign",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if camp.ID == "" || camp.Testbed == "" {
				return usagef("--id and --testbed are required")
			}
			cl, err := labclient.FromEnv()
			if err != nil {
				return usageError{err}
			}
			var out lab.Campaign
			if _, err := cl.Do(cmd.Context(), "POST", "/v1/campaigns", camp, &out, nil); err != nil {
				return err
			}
			return writeJSON(g.stdout, out)
		},
	}
	f := create.Flags()
	f.StringVar(&camp.ID, "id", "", "campaign id")
	f.StringVar(&camp.Testbed, "testbed", "", "installed testbed")
	f.StringVar(&camp.Policy, "policy", "default", "feedback policy: default, ladder or anchor")
	f.IntVar(&camp.Quota.PerResearcherPerHour, "quota-researcher", 0, "submissions per researcher per hour (default 30; 0 with anchor = unlimited)")
	f.IntVar(&camp.Quota.PerCampaignPerHour, "quota-campaign", 0, "submissions per campaign per hour (default 500)")
	c.AddCommand(create)
	return c
}

// openForum opens the forum store in the same database as the ledger.
func openForum(ctx context.Context, dir, db string) (forum.Store, error) {
	if isPostgres(db) {
		return forumpg.Open(ctx, db)
	}
	if db == "" {
		db = filepath.Join(dir, "lab.db")
	}
	return forumsqlite.Open(ctx, db)
}

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}
