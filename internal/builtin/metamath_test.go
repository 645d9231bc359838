package builtin

import (
	"bufio"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/testbed"
	"github.com/aar-lab/aar/internal/w2s"
)

// tinyMM is a small database in set.mm's shape: a header, two parts, a
// chapter header (not a part), comments inside statements, scoping blocks,
// hypotheses and proofs.
const tinyMM = `$( tiny.mm - a test database $)
$c ( ) -> wff |- $.
$v ph ps $.
wph $f wff ph $.
wps $f wff ps $.

$(
###############################################################################
            CLASSICAL FIRST-ORDER LOGIC WITH EQUALITY
###############################################################################

  Some prose.
$)
wi $a wff ( ph -> ps ) $.
${
  min $e |- ph $.
  maj $e |- ( ph -> ps ) $.
  ax-mp $a |- ps $.
$}
$(
#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#
          A chapter, not a part
#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#*#
$)
${
  a1i.1 $e |- ph $.
  a1i $p |- ( ps -> ph ) $= $( a comment in a proof $) wph wps wph wi a1i.1 ax-mp $.
$}
id $p |- ( ph $( inside the assertion $) -> ph ) $= ( wi ) ABC $.

$(
###############################################################################
                ZF (ZERMELO-FRAENKEL) SET THEORY
###############################################################################
$)
$[ other.mm $]
dup $p |- ( ph -> ph ) $= ? $.
st $p |- ( ps -> ps ) $= ? $.
`

func TestMMParse(t *testing.T) {
	stmts, err := mmParse([]byte(tinyMM))
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ label, kind, math, part string }
	var all []got
	for _, s := range stmts {
		all = append(all, got{s.Label, s.Kind, strings.Join(s.Math, " "), s.Part})
	}
	logic, zf := "CLASSICAL FIRST-ORDER LOGIC WITH EQUALITY", "ZF (ZERMELO-FRAENKEL) SET THEORY"
	want := []got{
		{"wph", "$f", "wff ph", ""},
		{"wps", "$f", "wff ps", ""},
		{"wi", "$a", "wff ( ph -> ps )", logic},
		{"min", "$e", "|- ph", logic},
		{"maj", "$e", "|- ( ph -> ps )", logic},
		{"ax-mp", "$a", "|- ps", logic},
		{"a1i.1", "$e", "|- ph", logic},
		{"a1i", "$p", "|- ( ps -> ph )", logic},
		{"id", "$p", "|- ( ph -> ph )", logic},
		{"dup", "$p", "|- ( ph -> ph )", zf},
		{"st", "$p", "|- ( ps -> ps )", zf},
	}
	if !slices.Equal(all, want) {
		t.Errorf("statements:\n got %q\nwant %q", all, want)
	}

	rows, err := metamathRows("set.mm", stmts)
	if err == nil {
		t.Errorf("no error for set.mm parts missing from the database (rows %v)", rows)
	}
	metamathParts["tiny.mm"] = map[string]string{logic: "logic", zf: "set_theory"}
	defer delete(metamathParts, "tiny.mm")
	if rows, err = metamathRows("tiny.mm", stmts); err != nil {
		t.Fatal(err)
	}
	wantRows := []txRow{
		{"|- ( ps -> ph )", "logic", "tiny.mm"},
		{"|- ( ph -> ph )", "logic", "tiny.mm"},
		{"|- ( ph -> ph )", "set_theory", "tiny.mm"},
		{"|- ( ps -> ps )", "set_theory", "tiny.mm"},
	}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("rows:\n got %q\nwant %q", rows, wantRows)
	}
	// "|- ( ph -> ph )" is in two parts: its label is ambiguous, it goes.
	if got := txDedupe(rows); !slices.Equal(got, []txRow{wantRows[0], wantRows[3]}) {
		t.Errorf("dedupe: %q", got)
	}
}

func TestMMParseErrors(t *testing.T) {
	for name, src := range map[string]string{
		"open comment":   "$( never closed",
		"open statement": "x $p |- ph $= ?",
		"no label":       "$p |- ph $= ? $.",
		"bad keyword":    "x $q ph $.",
	} {
		if _, err := mmParse([]byte(src)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestTxSplit(t *testing.T) {
	classes := []string{"a", "b", "c"}
	var rows []txRow
	for c, n := range []int{50, 400, 300} {
		for i := range n {
			rows = append(rows, txRow{Text: classes[c] + string(rune('0'+i%10)) + strings.Repeat("x", i), Label: classes[c]})
		}
	}
	sizes := []int{30, 400, 200}
	split := func() [][]txRow {
		s, err := txSplit(slices.Clone(rows), classes, sizes, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	got := split()
	seen := map[string]bool{}
	total := make([]int, len(classes))
	for s, rs := range got {
		if len(rs) != sizes[s] {
			t.Errorf("split %d has %d rows, want %d", s, len(rs), sizes[s])
		}
		for _, r := range rs {
			if seen[r.Text] {
				t.Errorf("row %q drawn twice", r.Text)
			}
			seen[r.Text] = true
		}
		for c, n := range txClassCounts(rs, classes) {
			total[c] += n
			// Every class in proportion to its share (50 : 290 : 290), within a row.
			want := float64(sizes[s]) * float64([]int{50, 290, 290}[c]) / 630
			if d := float64(n) - want; d < -1 || d > 1 {
				t.Errorf("split %d class %s: %d rows, want %.1f ± 1", s, classes[c], n, want)
			}
		}
	}
	if want := []int{50, 290, 290}; !slices.Equal(total, want) {
		t.Errorf("rows per class %v, want %v (water-filled)", total, want)
	}
	if again := split(); !slices.EqualFunc(got, again, slices.Equal) {
		t.Error("the same seed drew different splits")
	}
	if _, err := txSplit(rows, classes, []int{700, 100}, rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Error("no error when the splits need more rows than there are")
	}
}

func TestTxWaterFill(t *testing.T) {
	for _, tc := range []struct {
		avail []int
		total int
		want  []int
	}{
		{[]int{10, 10, 10}, 30, []int{10, 10, 10}},
		{[]int{10, 100, 100}, 100, []int{10, 45, 45}},
		{[]int{100, 100}, 7, []int{4, 3}},
		{[]int{1, 2, 100}, 50, []int{1, 2, 47}},
	} {
		got, err := txWaterFill(tc.avail, tc.total)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("txWaterFill(%v, %d) = %v, %v; want %v", tc.avail, tc.total, got, err, tc.want)
		}
	}
}

func TestTxTopTokens(t *testing.T) {
	rows := []txRow{{Text: "a a a b"}, {Text: "b c"}, {Text: "c d"}}
	// Rows holding each token: a 1, b 2, c 2, d 1 (ties by token).
	if got := txTopTokens(rows, strings.Fields, 3); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Errorf("top tokens %q", got)
	}
}

// builtTestbed is what checkBuiltTestbed read of a committed testbed.
type builtTestbed struct {
	classes             []string
	weak, pool, id, ood int
	perClass            map[string][]int // file → rows per class
}

// checkBuiltTestbed reads a committed classification testbed and checks
// what every built-in text testbed promises: aar reads it (strict manifest,
// rows, derived ids), rows hold text, label and subset only, no text occurs
// twice in or across files, OOD rows are test rows only, the representation
// opens and featurizes rows, and the training settings validate.
func checkBuiltTestbed(t *testing.T, dir string) builtTestbed {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "testbed.json")); err != nil {
		t.Fatalf("no committed testbed (build it with aar testbed build): %v", err)
	}
	src, err := testbed.ReadSource(dir)
	if err != nil {
		t.Fatalf("aar cannot read %s: %v", dir, err)
	}
	m := src.Manifest
	if m.Kind != testbed.KindClassification || len(m.IDSubsets) != 1 || len(m.OODSubsets) != 1 ||
		m.License == "" || m.Source == "" || m.Notes == "" {
		t.Errorf("manifest: kind %q, id %v, ood %v, license/source/notes set: %v", m.Kind, m.IDSubsets, m.OODSubsets,
			m.License != "" && m.Source != "" && m.Notes != "")
	}
	if _, err := os.Stat(filepath.Join(dir, "NOTICE")); err != nil {
		t.Errorf("no NOTICE: %v", err)
	}
	rep, err := features.ParseRepresentation(m.Representation)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2s.ParseTraining(m.Training); err != nil {
		t.Error(err)
	}

	out := builtTestbed{classes: m.Classes, perClass: map[string][]int{}}
	texts := map[string]string{}
	var sample []features.Row
	for _, file := range []string{testbed.FileTrainLabel, testbed.FilePool, testbed.FileTest} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<16), 1<<24)
		counts := make([]int, len(m.Classes))
		for line := 1; sc.Scan(); line++ {
			var r map[string]string
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s:%d: %v", file, line, err)
			}
			if len(r) != 3 || r["text"] == "" || r["label"] == "" || r["subset"] == "" {
				t.Fatalf("%s:%d: fields %v, want exactly text, label, subset", file, line, slices.Sorted(maps.Keys(r)))
			}
			if prev, dup := texts[r["text"]]; dup {
				t.Errorf("%s:%d: the text of a row in %s again", file, line, prev)
			}
			texts[r["text"]] = file
			c := slices.Index(m.Classes, r["label"])
			if c < 0 {
				t.Fatalf("%s:%d: label %q is not a class", file, line, r["label"])
			}
			counts[c]++
			switch r["subset"] {
			case m.IDSubsets[0]:
				switch file {
				case testbed.FileTrainLabel:
					out.weak++
				case testbed.FilePool:
					out.pool++
				default:
					out.id++
				}
			case m.OODSubsets[0]:
				if file != testbed.FileTest {
					t.Errorf("%s:%d: an OOD row outside test.jsonl", file, line)
				}
				out.ood++
			default:
				t.Errorf("%s:%d: subset %q is neither ID nor OOD", file, line, r["subset"])
			}
			if line%50 == 1 {
				sample = append(sample, features.Row{"text": r["text"]})
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		out.perClass[file] = counts
	}
	for name, spec := range map[string]features.Spec{"weak": rep.Weak, "strong": rep.Strong} {
		fz, err := features.Open(spec, filepath.Join(dir, "features"))
		if err != nil {
			t.Fatalf("%s representation: %v", name, err)
		}
		mat, err := features.Build(fz, spec, rep.Pair, sample)
		if err != nil {
			t.Fatalf("%s representation: %v", name, err)
		}
		empty := 0
		for i := range mat.Rows() {
			if idx, _ := mat.Row(i); len(idx) == 0 {
				empty++
			}
		}
		if empty > mat.Rows()/100 {
			t.Errorf("%s representation: %d of %d sampled rows have no features", name, empty, mat.Rows())
		}
	}
	var size int64
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := d.Info(); err == nil {
				size += st.Size()
			}
		}
		return nil
	})
	if size > 15<<20 {
		t.Errorf("%s holds %d bytes, more than 15 MiB", dir, size)
	}
	return out
}

func TestCommittedMetamath(t *testing.T) {
	tb := checkBuiltTestbed(t, filepath.Join("..", "..", "testbeds", "metamath"))
	if !slices.Equal(tb.classes, metamathClasses) {
		t.Errorf("classes %v", tb.classes)
	}
	if tb.weak != metamathWeak || tb.pool != metamathPool || tb.id != metamathTestID || tb.ood < 1000 {
		t.Errorf("rows: weak %d, pool %d, test ID %d, test OOD %d", tb.weak, tb.pool, tb.id, tb.ood)
	}
	// Every class has at least 10% of each ID file.
	for file, counts := range tb.perClass {
		for c, n := range counts {
			if total := txSum(counts); n*10 < total {
				t.Errorf("%s: class %s has %d of %d rows", file, tb.classes[c], n, total)
			}
		}
	}
}

func txSum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
