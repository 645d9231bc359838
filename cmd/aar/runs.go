package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/campaign"
	"github.com/aar-lab/aar/internal/labclient"
)

// runsAdmin finds an admin client for campaign id: AAR_LAB and AAR_TOKEN
// when set; else the control file of a running aar run in DATA; else, when
// no lab runs on DATA, an embedded lab opened for this command (closed by
// the returned func).
func runsAdmin(ctx context.Context, g *globals, id string) (*labclient.Client, *embedded, func(), error) {
	if lab, tok := os.Getenv("AAR_LAB"), os.Getenv("AAR_TOKEN"); lab != "" && tok != "" {
		cl, err := labclient.New(lab, tok)
		return cl, nil, func() {}, err
	}
	dir, err := g.dataDir()
	if err != nil {
		return nil, nil, nil, err
	}
	var files []string
	if id != "" {
		files = []string{filepath.Join(dir, "runs", id, "control.json")}
	} else {
		files, _ = filepath.Glob(filepath.Join(dir, "runs", "*", "control.json"))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var c struct{ Lab, Token string }
		if json.Unmarshal(b, &c) == nil && labAlive(strings.TrimPrefix(c.Lab, "unix://")) {
			cl, err := labclient.New(c.Lab, c.Token)
			return cl, nil, func() {}, err
		}
	}
	if labAlive(filepath.Join(dir, "lab.sock")) {
		return nil, nil, nil, usagef("a lab is running on %s: set AAR_LAB=unix://%s and an admin AAR_TOKEN", dir, filepath.Join(dir, "lab.sock"))
	}
	if _, err := os.Stat(filepath.Join(dir, "lab.db")); err != nil {
		return nil, nil, nil, usagef("no lab in %s (nothing has run there): give --data, or AAR_LAB and an admin AAR_TOKEN", dir)
	}
	e, err := openEmbedded(ctx, g, dir, "127.0.0.1:0", "aar runs")
	if err != nil {
		return nil, nil, nil, err
	}
	return e.client(), e, func() { e.close(context.WithoutCancel(ctx)) }, nil
}

func newRunsCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "runs",
		Short: "Campaigns: list, show, stop, pause/resume/stop a researcher, send a note, add a researcher, report (admin)",
		Long: `Runs controls campaigns through the lab: with AAR_LAB and an admin
AAR_TOKEN, or, on the machine of a running aar run, through its control
file in DATA/runs/ID; with no lab running, it opens the lab in DATA itself.
Every action is a ledger event.`,
	}
	list := &cobra.Command{
		Use: "list", Short: "The campaigns", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, done, err := runsAdmin(cmd.Context(), g, "")
			if err != nil {
				return err
			}
			defer done()
			cs, err := cl.Campaigns(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "CAMPAIGN\tTESTBED\tPOLICY\tCREATED\tRESEARCHERS\tSTATE")
			for _, c := range cs {
				state := "open"
				if c.Stopped {
					state = "stopped"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.Testbed, c.Policy, c.Created.UTC().Format("2006-01-02 15:04"), len(c.Researchers), state)
			}
			return tw.Flush()
		},
	}
	var asJSON bool
	show := &cobra.Command{
		Use: "show ID", Short: "A campaign: each researcher's state, submissions, best feedback PGR and spend", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, done, err := runsAdmin(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer done()
			c, err := cl.Campaign(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, c)
			}
			state := "open"
			if c.Stopped {
				state = "stopped"
			}
			fmt.Fprintf(g.stdout, "campaign %s · testbed %s · policy %s · %s · spec %s\n", c.ID, c.Testbed, c.Policy, state, short(c.SpecSHA256))
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "RESEARCHER\tSTATE\tSUBMISSIONS\tBEST FEEDBACK PGR\t$\tTOKENS\tCPU s\tTOOL CALLS")
			for _, r := range c.Researchers {
				best := "—"
				if r.BestFeedbackPGR != nil {
					best = fmt.Sprintf("%.3f", *r.BestFeedbackPGR)
				}
				s := r.Spend
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.2f\t%d\t%.0f\t%d\n", r.Name, r.State, r.Submissions, best, s.CostUSD,
					s.InputTokens+s.OutputTokens+s.CacheReadTokens+s.CacheWriteTokens, s.CPUSeconds, s.ToolCalls)
			}
			return tw.Flush()
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	control := func(use, short, action string, minArgs, maxArgs int) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.RangeArgs(minArgs, maxArgs),
			RunE: func(cmd *cobra.Command, args []string) error {
				nargs := len(args)
				cl, _, done, err := runsAdmin(cmd.Context(), g, args[0])
				if err != nil {
					return err
				}
				defer done()
				req := labclient.ControlRequest{Action: action}
				if nargs >= 2 {
					req.Researcher = args[1]
				}
				if nargs >= 3 {
					req.Text = args[2]
				}
				seq, err := cl.Control(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				who := "campaign " + args[0]
				if req.Researcher != "" {
					who = req.Researcher + " in " + args[0]
				}
				fmt.Fprintf(g.stdout, "%s: %s (ledger seq %d)\n", action, who, seq)
				return nil
			},
		}
	}
	stop := control("stop ID [RESEARCHER]", "Stop a campaign cleanly (or one researcher): they finish their current call and stop", "stop", 1, 2)
	pause := control("pause ID RESEARCHER", "Pause a researcher before its next step", "pause", 2, 2)
	resume := control("resume ID RESEARCHER", "Resume a paused researcher", "resume", 2, 2)
	note := control("note ID RESEARCHER TEXT", "Send a researcher a note; it reads it before its next step", "note", 3, 3)
	var addDir, addBackend, addModel string
	var addSeed uint64
	add := &cobra.Command{
		Use: "add ID RESEARCHER [--direction TEXT] [--backend B] [--model M]", Short: "Add a researcher to a running campaign", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, done, err := runsAdmin(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer done()
			cfg, _ := json.Marshal(campaign.ResearcherSpec{Name: args[1], Direction: addDir, Backend: addBackend, Model: addModel, Seed: addSeed})
			seq, err := cl.Control(cmd.Context(), args[0], labclient.ControlRequest{Action: "add", Researcher: args[1], Config: cfg})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "add: %s to %s (ledger seq %d); the running aar run starts it\n", args[1], args[0], seq)
			return nil
		},
	}
	add.Flags().StringVar(&addDir, "direction", "", "its direction (default: the undirected prompt)")
	add.Flags().StringVar(&addBackend, "backend", "", "its backend (default: the campaign's)")
	add.Flags().StringVar(&addModel, "model", "", "its model")
	add.Flags().Uint64Var(&addSeed, "seed", 0, "builtin: its seed")
	var out string
	report := &cobra.Command{
		Use: "report ID [--out DIR]", Short: "Write a campaign's report (leaderboard with holdout, frontier plots, spend, results, events)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, emb, done, err := runsAdmin(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer done()
			dir := out
			if dir == "" {
				d, err := g.dataDir()
				if err != nil {
					return err
				}
				dir = filepath.Join(d, "runs", args[0], "report")
			}
			var judge campaign.Judge
			if emb != nil {
				prepared := preparedCache(g)
				judge = func(ctx context.Context, sub, method string) ([]campaign.Comparison, error) {
					return judgeSubmission(ctx, emb.lab, prepared, sub, method)
				}
			}
			rep, err := campaign.Report(cmd.Context(), cl, args[0], dir, judge)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s (%s)\n", filepath.Join(dir, "report.md"), strings.Join(rep.Files, ", "))
			return nil
		},
	}
	report.Flags().StringVar(&out, "out", "", "directory (default DATA/runs/ID/report)")
	events := &cobra.Command{
		Use: "events ID", Short: "Every ledger event of a campaign, as JSON lines", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, done, err := runsAdmin(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer done()
			return cl.ExportEvents(cmd.Context(), args[0], 0, g.stdout)
		},
	}
	c.AddCommand(list, show, stop, pause, resume, note, add, report, events)
	return c
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
