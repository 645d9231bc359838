package builtin

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/testbed"
)

// idx builds an IDX file of unsigned bytes.
func idx(dims []int, data []byte) []byte {
	b := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, data...)
}

func TestParseIDX(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	dims, got, err := parseIDX(idx([]int{2, 3, 2}, data))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dims, []int{2, 3, 2}) || !slices.Equal(got, data) {
		t.Fatalf("dims %v data %v", dims, got)
	}
	if _, labels, err := parseIDX(idx([]int{3}, []byte{9, 0, 4})); err != nil || !slices.Equal(labels, []byte{9, 0, 4}) {
		t.Fatalf("labels %v, %v", labels, err)
	}
	bad := map[string][]byte{
		"empty":          nil,
		"short header":   {0, 0, 8},
		"bad magic":      append([]byte{1}, idx([]int{1}, []byte{0})[1:]...),
		"float elements": {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0},
		"no dimensions":  {0, 0, 8, 0},
		"truncated dims": {0, 0, 8, 2, 0, 0, 0, 1},
		"zero dimension": idx([]int{0}, nil),
		"short data":     idx([]int{2, 2}, []byte{1, 2, 3}),
		"long data":      idx([]int{2, 2}, []byte{1, 2, 3, 4, 5}),
	}
	for name, b := range bad {
		if _, _, err := parseIDX(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestShiftImage(t *testing.T) {
	pix := []byte{
		1, 2, 3,
		4, 5, 6,
		7, 8, 9,
	}
	for _, c := range []struct {
		dx, dy int
		want   []byte
	}{
		{1, 0, []byte{0, 1, 2, 0, 4, 5, 0, 7, 8}},
		{0, -1, []byte{4, 5, 6, 7, 8, 9, 0, 0, 0}},
		{-2, 2, []byte{0, 0, 0, 0, 0, 0, 3, 0, 0}},
		{0, 0, pix},
	} {
		if got := shiftImage(pix, 3, 3, c.dx, c.dy); !slices.Equal(got, c.want) {
			t.Errorf("shift (%d, %d): %v, want %v", c.dx, c.dy, got, c.want)
		}
	}
	seen := map[[2]int]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 400; i++ {
		dx, dy := randomShift(rng)
		if (dx == 0 && dy == 0) || (dx != 0 && abs(dx) != fashionShift) || (dy != 0 && abs(dy) != fashionShift) {
			t.Fatalf("shift (%d, %d)", dx, dy)
		}
		seen[[2]int{dx, dy}] = true
	}
	if len(seen) != 8 {
		t.Errorf("%d distinct shifts drawn, want all 8", len(seen))
	}
}

func abs(x int) int { return max(x, -x) }

// readFashionRows reads one row file of the committed testbed, refusing
// any field but text, label and subset.
func readFashionRows(t *testing.T, path string) []fashionRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []fashionRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		var r fashionRow
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s line %d: %v", path, len(rows)+1, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestCommittedFashion(t *testing.T) {
	dir := filepath.Join("..", "..", "testbeds", "fashion")
	if testing.Short() {
		t.Skip("reads 35 MB of committed rows")
	}
	src, err := testbed.ReadSource(dir)
	if err != nil {
		t.Fatalf("the committed testbed does not read as a testbed: %v", err)
	}
	if !slices.Equal(src.Manifest.Classes, fashionClasses) {
		t.Fatalf("classes %v, want %v", src.Manifest.Classes, fashionClasses)
	}

	seen := map[string]string{}
	check := func(file string, perClass int, subsets map[string]int) []fashionRow {
		rows := readFashionRows(t, filepath.Join(dir, file))
		count := map[string]int{}
		for i, r := range rows {
			if _, ok := subsets[r.Subset]; !ok {
				t.Fatalf("%s line %d: subset %q", file, i+1, r.Subset)
			}
			subsets[r.Subset]--
			count[r.Label]++
			if prev, dup := seen[r.Text]; dup {
				t.Fatalf("%s line %d: the same image as in %s", file, i+1, prev)
			}
			seen[r.Text] = file
		}
		for name, left := range subsets {
			if left != 0 {
				t.Errorf("%s: subset %s off by %d rows", file, name, -left)
			}
		}
		for _, c := range fashionClasses {
			if count[c] != perClass {
				t.Errorf("%s: class %s has %d rows, want %d", file, c, count[c], perClass)
			}
		}
		return rows
	}
	weak := check("train_label.jsonl", fashionWeakPerClass, map[string]int{"fashion": 1000})
	check("train_unlabel.jsonl", fashionPoolPerClass, map[string]int{"fashion": 20000})
	test := check("test.jsonl", 1000+fashionOODPerClass, map[string]int{"fashion": 10000, "fashion_shifted": 2000})
	if len(src.Labeled) != len(weak) || len(src.Test) != len(test) {
		t.Fatalf("testbed reader saw %d / %d rows, want %d / %d", len(src.Labeled), len(src.Test), len(weak), len(test))
	}

	rep, err := features.ParseRepresentation(src.Manifest.Representation)
	if err != nil {
		t.Fatal(err)
	}
	var rows []features.Row
	for _, r := range append(weak[:3], test[len(test)-3:]...) {
		rows = append(rows, features.Row{"text": r.Text})
	}
	for name, spec := range map[string]features.Spec{"weak": rep.Weak, "strong": rep.Strong} {
		f, err := features.Open(spec, filepath.Join(dir, "features"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m, err := features.Build(f, spec, rep.Pair, rows)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := map[string]int{"weak": 16, "strong": 4 * fashionK}[name]
		if m.Cols != want || m.Rows() != len(rows) {
			t.Fatalf("%s: %d×%d features, want %d×%d", name, m.Rows(), m.Cols, len(rows), want)
		}
		for i := 0; i < m.Rows(); i++ {
			if idx, _ := m.Row(i); len(idx) == 0 {
				t.Errorf("%s: row %d has no features", name, i)
			}
		}
	}
}

func FuzzParseIDX(f *testing.F) {
	f.Add(idx([]int{2, 2}, []byte{1, 2, 3, 4}))
	f.Add(idx([]int{3}, []byte{0, 1, 2}))
	f.Add([]byte{0, 0, 8, 3, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		dims, data, err := parseIDX(b)
		if err != nil {
			return
		}
		n := 1
		for _, d := range dims {
			n *= d
		}
		if n != len(data) {
			t.Fatalf("dims %v with %d data bytes", dims, len(data))
		}
	})
}
