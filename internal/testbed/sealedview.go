package testbed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
)

// SealedSeed is one weak-label seed of a sealed view: the weak artifact seed
// whose soft labels it uses (Source), under a name the researcher has never
// seen (Name).
type SealedSeed struct {
	Name   string
	Source string
}

// SealedViewOptions configure WriteSealedView.
type SealedViewOptions struct {
	// Key re-keys every row id (HMAC-SHA256), so an id a method saw in the
	// public view never appears in a sealed view.
	Key   []byte
	Seeds []SealedSeed
	// Permute shuffles the weak labels across the pool (a teacher
	// ablation: the labels keep their marginal but lose their rows).
	Permute     bool
	PermuteSeed uint64
}

// SealedView is a written sealed view: its test rows' view ids mapped to
// the testbed's ids (for scoring on the sealed split).
type SealedView struct {
	Dir    string
	TestID map[string]string // view id → testbed id
	Pool   int
	Test   int
}

// sealedKey is a row's id in a sealed view made with key.
func sealedKey(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	return "s-" + hex.EncodeToString(m.Sum(nil)[:10])
}

// WriteSealedView writes a view of the sealed partition in the public
// view's layout to out (which must not exist): test.jsonl holds only the
// sealed test rows, train_unlabel.jsonl the sealed pool rows topped up
// with public pool rows to the public pool's size (so a method trains on
// as much data as it did in the public view), weak/NAME.jsonl the lab's weak
// labels of that pool for each seed, under fresh names, and features/ the
// testbed's representation files. Every id is re-keyed and the order is
// the keyed hash's, so nothing a method learned about public ids or order
// carries over. No label, subset or figure of the sealed split is written.
func (tb *Testbed) WriteSealedView(out string, o SealedViewOptions) (*SealedView, error) {
	if len(o.Key) == 0 {
		return nil, fmt.Errorf("sealed view: a key is required")
	}
	if len(o.Seeds) == 0 {
		return nil, fmt.Errorf("sealed view: no seeds")
	}
	soft := map[string]SoftLabels{}
	for _, s := range tb.Soft {
		soft[s.Seed] = s
	}
	for _, s := range o.Seeds {
		if _, ok := soft[s.Source]; !ok {
			return nil, fmt.Errorf("sealed view: the testbed has no weak labels of seed %q", s.Source)
		}
		if err := validSeed(s.Name); err != nil {
			return nil, fmt.Errorf("sealed view: seed name %q: %w", s.Name, err)
		}
	}
	var test, sealedPool, publicPool []Row
	for _, r := range tb.Test {
		if tb.Splits[r.ID] == SplitSealed {
			test = append(test, r)
		}
	}
	for _, r := range tb.Pool {
		if tb.Splits[r.ID] == SplitSealed {
			sealedPool = append(sealedPool, r)
		} else {
			publicPool = append(publicPool, r)
		}
	}
	if len(test) == 0 {
		return nil, fmt.Errorf("sealed view: testbed %s has no sealed test rows (installed with a sealed fraction of 0?): reinstall it with one", tb.Manifest.Name)
	}
	rekey := func(id string) string { return sealedKey(o.Key, id) }
	// Top the sealed pool up with public rows, drawn by the key.
	want := len(publicPool)
	pool := append([]Row(nil), sealedPool...)
	if extra := want - len(pool); extra > 0 {
		sort.Slice(publicPool, func(i, j int) bool { return rekey(publicPool[i].ID) < rekey(publicPool[j].ID) })
		pool = append(pool, publicPool[:min(extra, len(publicPool))]...)
	}
	order := func(rows []Row) []Row {
		out := make([]Row, len(rows))
		for i, r := range rows {
			r.ID = rekey(r.ID)
			out[i] = r
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out
	}
	if _, err := os.Stat(out); err == nil {
		return nil, fmt.Errorf("sealed view: %s exists", out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("sealed view: %w", err)
	}
	sv := &SealedView{Dir: out, TestID: make(map[string]string, len(test)), Pool: len(pool), Test: len(test)}
	for _, r := range test {
		sv.TestID[rekey(r.ID)] = r.ID
	}
	vTest, vPool := order(test), order(pool)
	pm := tb.PublicManifest()
	pm.Rows = PublicCounts{Pool: len(vPool), Test: len(vTest)}
	pm.Baselines = nil
	pm.WeakSeeds = nil
	for _, s := range o.Seeds {
		pm.WeakSeeds = append(pm.WeakSeeds, s.Name)
	}
	pm.Notes = "A sealed view made by the lab to re-run a method: rows it has never seen, under fresh ids and seeds. " + pm.Notes
	if err := writeJSON(filepath.Join(out, manifestFile), pm); err != nil {
		return nil, err
	}
	if err := tb.writeViewRows(out, vPool, vTest); err != nil {
		return nil, err
	}
	// The pool's original ids, in view order, to look up soft labels.
	orig := make([]string, len(vPool))
	back := map[string]string{}
	for _, r := range pool {
		back[rekey(r.ID)] = r.ID
	}
	for i, r := range vPool {
		orig[i] = back[r.ID]
	}
	for i, s := range o.Seeds {
		src := soft[s.Source]
		probs := make(map[string][]float64, len(vPool))
		from := orig
		if o.Permute {
			from = append([]string(nil), orig...)
			rng := rand.New(rand.NewPCG(o.PermuteSeed, uint64(i)+0x7065726d))
			rng.Shuffle(len(from), func(a, b int) { from[a], from[b] = from[b], from[a] })
		}
		for j, r := range vPool {
			probs[r.ID] = src.Probs[from[j]]
		}
		if err := writeSoftLabels(filepath.Join(out, dirWeak, s.Name+".jsonl"), vPool, SoftLabels{Seed: s.Name, Probs: probs}); err != nil {
			return nil, err
		}
	}
	if err := copyTree(filepath.Join(tb.dir, dirFeatures), filepath.Join(out, dirFeatures)); err != nil {
		return nil, err
	}
	if err := readableTree(out); err != nil {
		return nil, fmt.Errorf("sealed view: %w", err)
	}
	return sv, nil
}
