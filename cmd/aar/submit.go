package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/labclient"
)

func newSubmitCmd(g *globals) *cobra.Command {
	var snapshot, note string
	c := &cobra.Command{
		Use:   "submit PREDICTIONS... [--snapshot ID] [--note TEXT]",
		Short: "Submit predictions (one file per seed) to the lab; prints what the campaign's policy releases",
		Long: `Submit sends one submission whose seeds are the given files (JSONL
{"id","label"} lines or a JSON array in the public test order; a file's
base name is its seed). It reads AAR_LAB (http://host:port or
unix:///path) and AAR_TOKEN. An Idempotency-Key derived from the files makes
a retry of the same submission safe.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := labclient.FromEnv()
			if err != nil {
				return usageError{err}
			}
			sub := labclient.Submission{Seeds: map[string]json.RawMessage{}, Snapshot: snapshot, Note: note}
			h := sha256.New()
			for _, path := range args {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				seed := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
				raw, err := labclient.PredictionsJSON(b)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				sub.Seeds[seed] = raw
				h.Write([]byte(seed))
				h.Write(b)
			}
			out, err := cl.Submit(cmd.Context(), sub, hex.EncodeToString(h.Sum(nil))[:32])
			if err != nil {
				return err
			}
			var v any
			_ = json.Unmarshal(out, &v)
			return writeJSON(g.stdout, v)
		},
	}
	c.Flags().StringVar(&snapshot, "snapshot", "", "the snapshot of the code behind these predictions")
	c.Flags().StringVar(&note, "note", "", "a note")
	return c
}
