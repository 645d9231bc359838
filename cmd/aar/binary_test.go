package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aar-lab/aar/internal/jsonl"
)

// TestBinaryHoldsNoTestbedData builds the aar binary and checks that no row
// of any committed testbed (text with its label) is in it: testbed data
// lives in the lab's data directory, never in a binary a sandbox can read.
// If the data were embedded every row would be found, so a sample of rows
// per file decides it.
func TestBinaryHoldsNoTestbedData(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dirs, _ := filepath.Glob("../../testbeds/*/testbed.json")
	if len(dirs) == 0 {
		t.Skip("no committed testbeds")
	}
	bin := buildAar(t)
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, m := range dirs {
		dir := filepath.Dir(m)
		for _, f := range []string{"train_label.jsonl", "train_unlabel.jsonl", "test.jsonl"} {
			lines, err := jsonl.ReadFile(filepath.Join(dir, f), jsonl.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			step := max(1, len(lines)/60)
			for i := 0; i < len(lines); i += step {
				for _, field := range []string{"text", "first", "second", "question", "choice"} {
					var s string
					if json.Unmarshal(lines[i].Fields[field], &s) != nil || len(s) < 24 {
						continue
					}
					checked++
					if bytes.Contains(exe, []byte(s)) {
						t.Fatalf("the aar binary holds %s line %d of %s", f, lines[i].Num, dir)
					}
					// Also as it appears escaped in the JSONL file.
					raw := lines[i].Fields[field]
					if len(raw) > 2 && bytes.Contains(exe, raw[1:len(raw)-1]) {
						t.Fatalf("the aar binary holds %s line %d of %s (escaped)", f, lines[i].Num, dir)
					}
				}
			}
		}
	}
	if checked < 100 {
		t.Fatalf("checked only %d rows", checked)
	}
	t.Logf("checked %d rows of %d testbeds against a %d-byte binary", checked, len(dirs), len(exe))
}
