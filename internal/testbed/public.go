package testbed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// PublicFormat versions the public view's layout.
const PublicFormat = "aar-public/1"

// PublicManifest is the testbed.json of a public view: what a researcher may
// know about the testbed. It has no subset names, no holdout or sealed
// figures and no split seed.
type PublicManifest struct {
	Format     string       `json:"format"`
	Name       string       `json:"name"`
	Kind       Kind         `json:"kind"`
	Classes    []string     `json:"classes"`
	Prediction string       `json:"prediction"`
	License    string       `json:"license,omitempty"`
	Source     string       `json:"source,omitempty"`
	Notes      string       `json:"notes,omitempty"`
	Rows       PublicCounts `json:"rows"`
	WeakSeeds  []string     `json:"weak_seeds,omitempty"`
	Features   bool         `json:"features"`

	Representation json.RawMessage  `json:"representation,omitempty"`
	Training       json.RawMessage  `json:"training,omitempty"`
	Baselines      []PublicBaseline `json:"baselines"`
}

// PublicCounts are the row counts of the public files.
type PublicCounts struct {
	Pool int `json:"train_unlabel"`
	Test int `json:"test"`
}

// PublicBaseline is a fixed baseline of the feedback split, the one split
// whose scores researchers see.
type PublicBaseline struct {
	Group   string  `json:"group"`
	Rows    int     `json:"rows"`
	Weak    *Figure `json:"weak,omitempty"`
	Ceiling *Figure `json:"ceiling,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// PredictionEncoding is the one sentence that states how predictions are
// written, for manifests, help texts and errors.
func (m *Manifest) PredictionEncoding() string {
	var b bytes.Buffer
	b.WriteString("a prediction is the class index: ")
	for i, c := range m.Classes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", c, i)
	}
	return b.String()
}

// PublicTest returns the test rows a researcher sees (feedback and holdout,
// never sealed) in public order: sorted by a keyed hash of the id, so the
// order reveals nothing of the source file's order. The slice is shared:
// do not modify it.
func (tb *Testbed) PublicTest() []Row {
	tb.computeViews()
	return tb.views.publicTest
}

// TestIDsByUnit returns the test row ids a submission covers whole or not
// at all: "public" (feedback and holdout) and "sealed" (shared: do not
// modify).
func (tb *Testbed) TestIDsByUnit(unit string) []string {
	tb.computeViews()
	return tb.views.units[unit]
}

// PublicPool returns the unsealed pool rows in public order (shared: do not
// modify).
func (tb *Testbed) PublicPool() []Row {
	tb.computeViews()
	return tb.views.publicPool
}

func (tb *Testbed) computeViews() {
	tb.views.once.Do(func() {
		tb.views.publicTest = tb.publicOrder(tb.Test)
		tb.views.publicPool = tb.publicOrder(tb.Pool)
		tb.views.cells = map[string][]Row{}
		tb.views.units = map[string][]string{}
		for _, r := range tb.Test {
			u := "public"
			if tb.Splits[r.ID] == SplitSealed {
				u = SplitSealed
			}
			tb.views.units[u] = append(tb.views.units[u], r.ID)
		}
		for _, r := range tb.Test {
			split := tb.Splits[r.ID]
			for _, g := range []string{GroupOverall, tb.Manifest.GroupOf(r.Subset)} {
				k := split + "/" + g
				tb.views.cells[k] = append(tb.views.cells[k], r)
			}
		}
	})
}

func (tb *Testbed) publicOrder(rows []Row) []Row {
	var out []Row
	for _, r := range rows {
		if tb.Splits[r.ID] != SplitSealed {
			out = append(out, r)
		}
	}
	seed := tb.Manifest.Split.Seed
	keys := make(map[string][]byte, len(out))
	for _, r := range out {
		keys[r.ID] = orderKey(seed, r.ID)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(keys[out[i].ID], keys[out[j].ID]) < 0 })
	return out
}

// PublicManifest returns the public view's manifest.
func (tb *Testbed) PublicManifest() PublicManifest {
	m := &tb.Manifest
	pm := PublicManifest{
		Format: PublicFormat, Name: m.Name, Kind: m.Kind, Classes: m.Classes,
		Prediction: m.PredictionEncoding(), License: m.License, Source: m.Source, Notes: m.Notes,
		Rows:      PublicCounts{Pool: len(tb.PublicPool()), Test: len(tb.PublicTest())},
		WeakSeeds: m.WeakSeeds, Representation: m.Representation, Training: m.Training,
	}
	if _, err := os.Stat(filepath.Join(tb.dir, dirFeatures)); err == nil {
		pm.Features = true
	}
	for _, cb := range m.Baselines {
		if cb.Split == SplitFeedback {
			pm.Baselines = append(pm.Baselines, PublicBaseline{Group: cb.Group, Rows: cb.Rows, Weak: cb.Weak, Ceiling: cb.Ceiling, Note: cb.Note})
		}
	}
	return pm
}

// WritePublic writes the public view of tb to out: testbed.json (public),
// train_unlabel.jsonl and test.jsonl (id and the kind's public fields only,
// no sealed row), weak/<seed>.jsonl (soft labels on the public pool) and
// features/. out must not exist or be empty, unless force is set, in which
// case it is replaced. The view is built beside out and renamed into place.
func (tb *Testbed) WritePublic(out string, force bool) (err error) {
	if st, err := os.Stat(out); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("public view: %s exists and is not a directory: choose another output path", out)
		}
		ents, err := os.ReadDir(out)
		if err != nil {
			return fmt.Errorf("public view: %w", err)
		}
		if len(ents) > 0 && !force {
			return fmt.Errorf("public view: %s is not empty: choose an empty or new directory, or pass --force to replace it", out)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("public view: %w", err)
	}
	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("public view: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".aar-public-")
	if err != nil {
		return fmt.Errorf("public view: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := writeJSON(filepath.Join(tmp, manifestFile), tb.PublicManifest()); err != nil {
		return err
	}
	pool, test := tb.PublicPool(), tb.PublicTest()
	if err := tb.writeViewRows(tmp, pool, test); err != nil {
		return err
	}
	for _, sl := range tb.Soft {
		if err := writeSoftLabels(filepath.Join(tmp, dirWeak, sl.Seed+".jsonl"), pool, sl); err != nil {
			return err
		}
	}
	if err := copyTree(filepath.Join(tb.dir, dirFeatures), filepath.Join(tmp, dirFeatures)); err != nil {
		return err
	}
	if err := readableTree(tmp); err != nil {
		return fmt.Errorf("public view: %w", err)
	}
	if force {
		if err := os.RemoveAll(out); err != nil {
			return fmt.Errorf("public view: replace %s: %w", out, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("public view: %w", err)
	}
	return nil
}

// writeViewRows writes a view's train_unlabel.jsonl and test.jsonl: each
// row's id and its kind's public fields, nothing else.
func (tb *Testbed) writeViewRows(dir string, pool, test []Row) error {
	for _, f := range []struct {
		name string
		rows []Row
	}{{FilePool, pool}, {FileTest, test}} {
		objs := make([]any, len(f.rows))
		for i, r := range f.rows {
			objs[i] = publicRow(tb.Manifest.Kind, r)
		}
		if err := writeJSONL(filepath.Join(dir, f.name), objs); err != nil {
			return err
		}
	}
	return nil
}

// readableTree makes a view readable by anyone (a sandbox's user):
// directories 0755, files 0644.
func readableTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
}
