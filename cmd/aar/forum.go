package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/labclient"
)

func newForumCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "forum",
		Short: "Post, read, search and sync the campaign's findings (reads AAR_LAB and AAR_TOKEN)",
	}
	c.AddCommand(newForumPostCmd(g), newForumListCmd(g), newForumShowCmd(g), newForumCommentCmd(g),
		newForumVoteCmd(g), newForumSearchCmd(g), newForumSyncCmd(g))
	return c
}

func client() (*labclient.Client, error) {
	cl, err := labclient.FromEnv()
	if err != nil {
		return nil, usageError{err}
	}
	return cl, nil
}

func newForumPostCmd(g *globals) *cobra.Command {
	var (
		f                       forum.Finding
		file, bodyFile, card    string
		metrics, config, worked string
	)
	c := &cobra.Command{
		Use:   "post --type T --title TITLE --family F [flags] | --file FINDING.json",
		Short: "Post a finding; a result cites a 5-seed submission, a snapshot and a method card",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &f); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			}
			if bodyFile != "" {
				b, err := os.ReadFile(bodyFile)
				if err != nil {
					return err
				}
				f.Body = string(b)
			}
			for name, v := range map[string]string{"metrics": metrics, "config": config} {
				if v != "" && !json.Valid([]byte(v)) {
					return usagef("invalid JSON in --%s: give a JSON object, e.g. '{\"pgr\": 0.4}'", name)
				}
			}
			if metrics != "" {
				f.Metrics = json.RawMessage(metrics)
			}
			if config != "" {
				f.Config = json.RawMessage(config)
			}
			if worked != "" {
				w, err := strconv.ParseBool(worked)
				if err != nil {
					return usagef("--worked %q: use true or false", worked)
				}
				f.Worked = &w
			}
			if card != "" {
				b, err := os.ReadFile(card)
				if err != nil {
					return err
				}
				f.Card = &forum.MethodCard{}
				if err := json.Unmarshal(b, f.Card); err != nil {
					return fmt.Errorf("%s: %w", card, err)
				}
			}
			cl, err := client()
			if err != nil {
				return err
			}
			var out forum.Finding
			if _, err := cl.Do(cmd.Context(), "POST", "/v1/findings", f, &out, nil); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, out.ID)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&file, "file", "", "a finding as JSON")
	fl.StringVar(&f.Type, "type", "", "result, hypothesis, insight or error")
	fl.StringVar(&f.Title, "title", "", "title")
	fl.StringVar(&f.Body, "body", "", "markdown body")
	fl.StringVar(&bodyFile, "body-file", "", "markdown body from a file")
	fl.StringVar(&f.Family, "family", "", "method family: "+strings.Join(forum.Families, ", "))
	fl.StringVar(&metrics, "metrics", "", "metrics as a JSON object (a claimed \"pgr\" must match the submission's)")
	fl.StringVar(&config, "config", "", "config as a JSON object")
	fl.StringVar(&worked, "worked", "", "true or false")
	fl.StringVar(&f.Submission, "submission", "", "the submission a result cites")
	fl.StringVar(&f.Snapshot, "snapshot", "", "the snapshot of the code")
	fl.StringVar(&card, "card", "", "method card JSON file: {summary, pseudocode, components: [{name, ablation}], inputs}")
	return c
}

func newForumListCmd(g *globals) *cobra.Command {
	var since int64
	var limit int
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--since CURSOR] [--limit N]",
		Short: "The campaign's findings after a cursor, oldest first; prints the next cursor",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := client()
			if err != nil {
				return err
			}
			var page forum.Page
			if _, err := cl.Do(cmd.Context(), "GET", fmt.Sprintf("/v1/findings?since=%d&limit=%d", since, limit), nil, &page, nil); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, page)
			}
			printFindings(g, page.Findings)
			fmt.Fprintf(g.stdout, "next cursor: %d\n", page.Next)
			return nil
		},
	}
	c.Flags().Int64Var(&since, "since", 0, "cursor (the seq of the last finding seen)")
	c.Flags().IntVar(&limit, "limit", 100, "page size")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printFindings(g *globals, fs []forum.Finding) {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tID\tTYPE\tAUTHOR\tFAMILY\tSCORE\tTITLE")
	for _, f := range fs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", f.Seq, f.ID, f.Type, f.Author, f.Family, f.Score, f.Title)
	}
	tw.Flush()
}

func newForumShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "A finding with its comments (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := client()
			if err != nil {
				return err
			}
			var out any
			if _, err := cl.Do(cmd.Context(), "GET", "/v1/findings/"+url.PathEscape(args[0]), nil, &out, nil); err != nil {
				return err
			}
			return writeJSON(g.stdout, out)
		},
	}
}

func newForumCommentCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "comment ID TEXT",
		Short: "Comment on a finding",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := client()
			if err != nil {
				return err
			}
			var out forum.Comment
			if _, err := cl.Do(cmd.Context(), "POST", "/v1/findings/"+url.PathEscape(args[0])+"/comments", map[string]string{"body": args[1]}, &out, nil); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, out.ID)
			return nil
		},
	}
}

func newForumVoteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "vote ID up|down",
		Short: "Vote on a finding (once)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := map[string]int{"up": 1, "down": -1}[args[1]]
			if v == 0 {
				return usagef("vote %q: use up or down", args[1])
			}
			cl, err := client()
			if err != nil {
				return err
			}
			if _, err := cl.Do(cmd.Context(), "POST", "/v1/findings/"+url.PathEscape(args[0])+"/votes", map[string]int{"value": v}, nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "voted", args[1])
			return nil
		},
	}
}

func newForumSearchCmd(g *globals) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "search QUERY...",
		Short: "Full-text search of the campaign's findings",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := client()
			if err != nil {
				return err
			}
			var fs []forum.Finding
			q := url.QueryEscape(strings.Join(args, " "))
			if _, err := cl.Do(cmd.Context(), "GET", fmt.Sprintf("/v1/findings/search?q=%s&limit=%d", q, limit), nil, &fs, nil); err != nil {
				return err
			}
			printFindings(g, fs)
			return nil
		},
	}
	c.Flags().IntVar(&limit, "limit", 20, "most results")
	return c
}

func newForumSyncCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "sync DIR",
		Short: "Write every new finding as DIR/SEQ-ID.md (front matter + markdown), incrementally by cursor",
		Long: `Sync pages through the campaign's findings after the cursor kept in
DIR/.cursor and writes each as a markdown file with front matter, so the
forum can be read with grep, cat and less. Run it again to fetch only what
is new.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			cl, err := client()
			if err != nil {
				return err
			}
			written, since, err := syncForum(cmd.Context(), cl, dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "synced %d new finding(s) into %s (cursor %d)\n", written, dir, since)
			return nil
		},
	}
}

// syncForum writes the findings after DIR/.cursor into dir and moves the
// cursor; it returns how many it wrote and the new cursor.
func syncForum(ctx context.Context, cl *labclient.Client, dir string) (int, int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	cursorFile := filepath.Join(dir, ".cursor")
	var since int64
	if b, err := os.ReadFile(cursorFile); err == nil {
		since, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	written := 0
	for {
		var page forum.Page
		if _, err := cl.Do(ctx, "GET", fmt.Sprintf("/v1/findings?since=%d&limit=500", since), nil, &page, nil); err != nil {
			return written, since, err
		}
		for _, f := range page.Findings {
			if err := writeFindingFile(dir, f); err != nil {
				return written, since, err
			}
			written++
		}
		if page.Next == since {
			return written, since, nil
		}
		since = page.Next
		if err := os.WriteFile(cursorFile, []byte(strconv.FormatInt(since, 10)+"\n"), 0o644); err != nil {
			return written, since, err
		}
	}
}

// writeFindingFile writes one finding as markdown with front matter.
func writeFindingFile(dir string, f forum.Finding) error {
	var b strings.Builder
	q := func(s string) string { v, _ := json.Marshal(s); return string(v) }
	fmt.Fprintf(&b, "---\nid: %s\nseq: %d\ntype: %s\ntitle: %s\nauthor: %s\nfamily: %s\nat: %s\n", f.ID, f.Seq, f.Type, q(f.Title), f.Author, q(f.Family), f.At.Format("2006-01-02T15:04:05Z"))
	if f.Worked != nil {
		fmt.Fprintf(&b, "worked: %v\n", *f.Worked)
	}
	if f.Submission != "" {
		fmt.Fprintf(&b, "submission: %s\n", f.Submission)
	}
	if f.Snapshot != "" {
		fmt.Fprintf(&b, "snapshot: %s\n", f.Snapshot)
	}
	if len(f.Metrics) > 0 {
		fmt.Fprintf(&b, "metrics: %s\n", f.Metrics)
	}
	if len(f.Config) > 0 {
		fmt.Fprintf(&b, "config: %s\n", f.Config)
	}
	fmt.Fprintf(&b, "---\n\n# %s\n\n%s\n", f.Title, f.Body)
	if c := f.Card; c != nil {
		fmt.Fprintf(&b, "\n## Method card\n\n%s\n\n```\n%s\n```\n\nInputs: %s\n\n", c.Summary, c.Pseudocode, strings.Join(c.Inputs, ", "))
		for _, comp := range c.Components {
			fmt.Fprintf(&b, "- **%s**: %s\n", comp.Name, comp.Ablation)
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("%08d-%s.md", f.Seq, f.ID))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func newLeaderboardCmd(g *globals) *cobra.Command {
	var campaign string
	var asJSON bool
	c := &cobra.Command{
		Use:   "leaderboard [--campaign ID]",
		Short: "The campaign's leaderboard: best result per researcher and per method family",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := client()
			if err != nil {
				return err
			}
			var board struct {
				Campaign, Testbed string
				Weak, Ceiling     *struct{ Mean float64 }
				Researchers       []map[string]any
				Families          []map[string]any
				Submissions       []map[string]any
			}
			path := "/v1/leaderboard"
			if campaign != "" {
				path += "?campaign=" + url.QueryEscape(campaign)
			}
			var raw json.RawMessage
			if _, err := cl.Do(cmd.Context(), "GET", path, nil, &raw, nil); err != nil {
				return err
			}
			if asJSON {
				_, err := g.stdout.Write(append(raw, '\n'))
				return err
			}
			if err := json.Unmarshal(raw, &board); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "campaign %s · testbed %s", board.Campaign, board.Testbed)
			if board.Weak != nil && board.Ceiling != nil {
				fmt.Fprintf(g.stdout, " · weak %.3f · ceiling %.3f (PGR 0 and 1)", board.Weak.Mean, board.Ceiling.Mean)
			}
			fmt.Fprintln(g.stdout)
			for _, sec := range []struct {
				name string
				rows []map[string]any
			}{{"by researcher (result findings)", board.Researchers}, {"by method family (result findings)", board.Families}, {"best single submissions", board.Submissions}} {
				fmt.Fprintf(g.stdout, "\n%s:\n", sec.name)
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RESEARCHER\tFAMILY\tFEEDBACK PGR\tID\tOOD\tVERIFICATION\tFINDING\tSUBMISSION")
				for _, r := range sec.rows {
					fmt.Fprintf(tw, "%v\t%v\t%s\t%s\t%s\t%v\t%v\t%v\n", r["researcher"], orDash(r["family"]), pgrCell(r["feedback_pgr"]), pgrCell(r["feedback_pgr_id"]), pgrCell(r["feedback_pgr_ood"]), orDash(r["verification"]), orDash(r["finding"]), r["submission"])
				}
				tw.Flush()
			}
			return nil
		},
	}
	c.Flags().StringVar(&campaign, "campaign", "", "campaign (admins)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func orDash(v any) any {
	if v == nil || v == "" {
		return "-"
	}
	return v
}

func pgrCell(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return "-"
	}
	if n, _ := m["n"].(float64); n >= 2 {
		return fmt.Sprintf("%.3f ± %.3f", m["mean"], m["se"])
	}
	return fmt.Sprintf("%.3f", m["mean"])
}
