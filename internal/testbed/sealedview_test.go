package testbed

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

func readIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func readProbs(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct {
			ID    string    `json:"id"`
			Probs []float64 `json:"probs"`
		}
		if err := json.Unmarshal([]byte(ln), &r); err != nil {
			t.Fatal(err)
		}
		out[r.ID] = r.Probs
	}
	return out
}

func TestSealedView(t *testing.T) {
	_, tb := importFixture(t, fixtureCache, 3)
	if len(tb.Soft) < 2 {
		t.Fatalf("the fixture has %d weak seeds", len(tb.Soft))
	}
	src := tb.Soft[1].Seed
	dir := filepath.Join(t.TempDir(), "sealed")
	sv, err := tb.WriteSealedView(dir, SealedViewOptions{Key: []byte("k1"), Seeds: []SealedSeed{{Name: "777001", Source: src}}})
	if err != nil {
		t.Fatal(err)
	}
	// Test rows: exactly the sealed ones, under new ids.
	var sealed []string
	for _, r := range tb.Test {
		if tb.Splits[r.ID] == SplitSealed {
			sealed = append(sealed, r.ID)
		}
	}
	ids := readIDs(t, filepath.Join(dir, FileTest))
	if len(ids) != len(sealed) || sv.Test != len(sealed) {
		t.Fatalf("%d test rows, want the %d sealed ones", len(ids), len(sealed))
	}
	var back []string
	for _, id := range ids {
		back = append(back, sv.TestID[id])
	}
	sort.Strings(back)
	sort.Strings(sealed)
	if !slices.Equal(back, sealed) {
		t.Fatalf("the view's test ids map to %v, want %v", back, sealed)
	}
	pool := readIDs(t, filepath.Join(dir, FilePool))
	if len(pool) != len(tb.PublicPool()) {
		t.Errorf("pool of %d rows, want the public pool's %d", len(pool), len(tb.PublicPool()))
	}
	// Nothing private and no testbed id anywhere: every id is re-keyed.
	forbidden := []string{`"label"`, `"subset"`, SplitHoldout, SplitSealed + `"`, `"split"`}
	for _, r := range slices.Concat(tb.Test, tb.Pool) {
		forbidden = append(forbidden, `"`+r.ID+`"`)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, f := range forbidden {
			if strings.Contains(string(b), f) {
				t.Errorf("%s holds %s", p, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The weak labels are the source seed's, row for row.
	probs := readProbs(t, filepath.Join(dir, "weak", "777001.jsonl"))
	var m PublicManifest
	b, _ := os.ReadFile(filepath.Join(dir, "testbed.json"))
	if err := json.Unmarshal(b, &m); err != nil || !slices.Equal(m.WeakSeeds, []string{"777001"}) || m.Rows.Test != len(sealed) || len(m.Baselines) != 0 {
		t.Fatalf("manifest: %+v (%v)", m, err)
	}
	origOf := map[string]string{}
	for _, r := range tb.Pool {
		origOf[sealedKey([]byte("k1"), r.ID)] = r.ID
	}
	for id, p := range probs {
		if !slices.Equal(p, tb.Soft[1].Probs[origOf[id]]) {
			t.Fatalf("row %s: probs %v, want the source seed's %v", id, p, tb.Soft[1].Probs[origOf[id]])
		}
	}

	// Permuted: the same labels, moved between rows.
	pdir := filepath.Join(t.TempDir(), "perm")
	if _, err := tb.WriteSealedView(pdir, SealedViewOptions{Key: []byte("k1"), Seeds: []SealedSeed{{Name: "777001", Source: src}}, Permute: true, PermuteSeed: 5}); err != nil {
		t.Fatal(err)
	}
	perm := readProbs(t, filepath.Join(pdir, "weak", "777001.jsonl"))
	moved := 0
	var a, c []string
	for id, p := range perm {
		if !slices.Equal(p, probs[id]) {
			moved++
		}
		a = append(a, jsonOf(p))
		c = append(c, jsonOf(probs[id]))
	}
	sort.Strings(a)
	sort.Strings(c)
	if !slices.Equal(a, c) || moved < len(perm)/4 {
		t.Errorf("permuted labels: %d of %d rows moved, same multiset %v", moved, len(perm), slices.Equal(a, c))
	}

	// Bad input changes nothing.
	for _, o := range []SealedViewOptions{{Seeds: []SealedSeed{{Name: "1", Source: src}}}, {Key: []byte("k")}, {Key: []byte("k"), Seeds: []SealedSeed{{Name: "1", Source: "nope"}}}} {
		out := filepath.Join(t.TempDir(), "bad")
		if _, err := tb.WriteSealedView(out, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%+v: wrote %s", o, out)
		}
	}
	if _, err := tb.WriteSealedView(dir, SealedViewOptions{Key: []byte("k"), Seeds: []SealedSeed{{Name: "1", Source: src}}}); err == nil {
		t.Error("an existing directory was overwritten")
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
