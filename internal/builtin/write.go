package builtin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/w2s"
)

// manifest is a built testbed's testbed.json: the native format's fields
// plus the representation and training settings of package features and w2s.
type manifest struct {
	Name           string                  `json:"name"`
	Kind           string                  `json:"kind"`
	Classes        []string                `json:"classes"`
	IDSubsets      []string                `json:"id_subsets"`
	OODSubsets     []string                `json:"ood_subsets,omitempty"`
	License        string                  `json:"license"`
	Source         string                  `json:"source"`
	Notes          string                  `json:"notes"`
	Representation features.Representation `json:"representation"`
	Training       w2s.Training            `json:"training"`
}

// writeManifest writes out/testbed.json, indented, HTML characters kept.
func writeManifest(out string, m manifest) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("write testbed.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "testbed.json"), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write testbed.json: %w", err)
	}
	return nil
}

// writeJSONLines writes one JSON object per line (HTML characters kept).
func writeJSONLines[T any](path string, rows []T) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i, r := range rows {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write %s: row %d: %w", path, i+1, err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write rows: %w", err)
	}
	return nil
}

// writeNotice writes out/NOTICE.
func writeNotice(out, text string) error {
	if err := os.WriteFile(filepath.Join(out, "NOTICE"), []byte(text), 0o644); err != nil {
		return fmt.Errorf("write NOTICE: %w", err)
	}
	return nil
}
