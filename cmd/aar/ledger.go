package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/store"
)

func newLedgerCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "ledger",
		Short: "Inspect and verify the lab's hash-chained ledger",
	}
	c.PersistentFlags().String("db", "", "ledger database: a SQLite path or postgres://… (default DATA/lab.db)")
	c.AddCommand(newLedgerVerifyCmd(g), newLedgerCheckpointCmd(g))
	return c
}

// openLedger opens an existing ledger named by --db, else DATA/lab.db.
func openLedger(ctx context.Context, g *globals, cmd *cobra.Command) (store.Ledger, error) {
	db, _ := cmd.Flags().GetString("db")
	dir, err := g.dataDir()
	if err != nil {
		return nil, err
	}
	if !isPostgres(db) {
		path := db
		if path == "" {
			path = filepath.Join(dir, "lab.db")
		}
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no ledger at %s: start the lab first, or pass --db", path)
		}
	}
	return openLabLedger(ctx, dir, db)
}

func ledgerKeyPath(g *globals) (string, error) {
	dir, err := g.dataDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ledger.key"), nil
}

func newLedgerVerifyCmd(g *globals) *cobra.Command {
	var (
		checkpoint string
		asJSON     bool
	)
	c := &cobra.Command{
		Use:   "verify [--checkpoint FILE]",
		Short: "Recompute every hash and check every signed checkpoint; report the first altered or missing entry",
		Long: `Verify walks the whole ledger, recomputing each entry's hash from its contents
and the previous hash, and checks the signed checkpoints stored with it.
--checkpoint FILE adds one kept outside the lab (aar ledger checkpoint),
which also catches a ledger rewritten or truncated since. Exit code 0 when
the ledger verifies, 1 when it does not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			l, err := openLedger(ctx, g, cmd)
			if err != nil {
				return err
			}
			defer l.Close()
			var extra *store.Checkpoint
			if checkpoint != "" {
				if extra, err = store.ReadCheckpointFile(checkpoint); err != nil {
					return usageError{err}
				}
			}
			r, err := store.Verify(ctx, l, extra, nil)
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, r); err != nil {
					return err
				}
			} else if r.OK {
				fmt.Fprintf(g.stdout, "ledger verifies: %d entries, head %s, %d checkpoint(s) matched\n", r.Entries, r.Head, r.Checkpoints)
			}
			if !r.OK {
				return fmt.Errorf("ledger does not verify: %s (first bad entry: %d)", r.Problem, r.FirstBad)
			}
			return nil
		},
	}
	c.Flags().StringVar(&checkpoint, "checkpoint", "", "a checkpoint file kept outside the lab")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newLedgerCheckpointCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "checkpoint [--out FILE]",
		Short: "Sign the ledger's head with the lab's key and write the checkpoint (keep it outside the lab)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			l, err := openLedger(ctx, g, cmd)
			if err != nil {
				return err
			}
			defer l.Close()
			head, err := l.Head(ctx)
			if err != nil {
				return err
			}
			keyPath, err := ledgerKeyPath(g)
			if err != nil {
				return err
			}
			signer, err := store.LoadOrCreateKey(keyPath)
			if err != nil {
				return err
			}
			cp := signer.Checkpoint(head, time.Now())
			if err := l.AddCheckpoint(ctx, cp); err != nil {
				return err
			}
			b, _ := json.MarshalIndent(cp, "", "  ")
			if out == "" || out == "-" {
				_, err = g.stdout.Write(append(b, '\n'))
				return err
			}
			if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "signed entry %d; checkpoint written to %s\n", head.Seq, out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "file to write (default stdout)")
	return c
}
