package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/snapshot"
)

func newSnapshotCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "snapshot",
		Short: "Push, pull, trace and diff workspace snapshots (reads AAR_LAB and AAR_TOKEN)",
	}
	var parent string
	push := &cobra.Command{
		Use:   "push [DIR] [--parent ID]",
		Short: "Upload a workspace (default .) as a snapshot; prints its id",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			cl, err := labclient.FromEnv()
			if err != nil {
				return usageError{err}
			}
			tree, archive, err := snapshot.Pack(dir, snapshot.DefaultLimits())
			if err != nil {
				return err
			}
			path := "/v1/snapshots"
			if parent != "" {
				path += "?parent=" + url.QueryEscape(parent)
			}
			body, _, err := cl.DoRaw(cmd.Context(), "POST", path, "application/gzip", bytes.NewReader(archive))
			if err != nil {
				return err
			}
			defer body.Close()
			var m struct {
				ID string `json:"id"`
			}
			if err := json.NewDecoder(body).Decode(&m); err != nil {
				return fmt.Errorf("lab answer: %w", err)
			}
			fmt.Fprintf(g.stderr, "pushed %d files (%d bytes), tree %s\n", len(tree.Files), tree.Bytes, tree.Hash[:12])
			fmt.Fprintln(g.stdout, m.ID)
			return nil
		},
	}
	push.Flags().StringVar(&parent, "parent", "", "the snapshot this one builds on")

	pull := &cobra.Command{
		Use:   "pull ID [DIR]",
		Short: "Download a snapshot into DIR (default: the id; it must not exist or be empty)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if len(args) == 2 {
				dir = args[1]
			}
			cl, err := labclient.FromEnv()
			if err != nil {
				return usageError{err}
			}
			body, _, err := cl.DoRaw(cmd.Context(), "GET", "/v1/snapshots/"+url.PathEscape(args[0])+"/archive", "", nil)
			if err != nil {
				return err
			}
			defer body.Close()
			tree, err := snapshot.ReadArchive(body, snapshot.DefaultLimits())
			if err != nil {
				return err
			}
			if err := snapshot.Unpack(tree, dir); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "pulled %s: %d files into %s\n", args[0], len(tree.Files), dir)
			return nil
		},
	}

	logCmd := &cobra.Command{
		Use:   "log ID",
		Short: "A snapshot's lineage, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := labclient.FromEnv()
			if err != nil {
				return usageError{err}
			}
			var metas []struct {
				ID, Tree, Parent, Author string
				Files                    int
				Bytes                    int64
				At                       time.Time
			}
			if _, err := cl.Do(cmd.Context(), "GET", "/v1/snapshots/"+url.PathEscape(args[0])+"/log", nil, &metas, nil); err != nil {
				return err
			}
			for _, m := range metas {
				fmt.Fprintf(g.stdout, "%s  %s  %-12s %5d files %9d bytes  tree %s\n", m.ID, m.At.Format(time.RFC3339), m.Author, m.Files, m.Bytes, m.Tree[:12])
			}
			return nil
		},
	}

	diff := &cobra.Command{
		Use:   "diff A B",
		Short: "Unified diff of two snapshots' text files",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := labclient.FromEnv()
			if err != nil {
				return usageError{err}
			}
			body, _, err := cl.DoRaw(cmd.Context(), "GET", "/v1/snapshots/diff?a="+url.QueryEscape(args[0])+"&b="+url.QueryEscape(args[1]), "", nil)
			if err != nil {
				return err
			}
			defer body.Close()
			_, err = io.Copy(g.stdout, body)
			return err
		},
	}
	c.AddCommand(push, pull, logCmd, diff)
	return c
}
