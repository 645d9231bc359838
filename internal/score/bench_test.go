package score

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/testbed"
)

// bigTestbed imports a binary testbed with n test rows (half ID, half OOD),
// per-row weak and ceiling predictions for 16 seeds.
func bigTestbed(b *testing.B, n int) *testbed.Testbed {
	b.Helper()
	dir := b.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var lab, pool, test strings.Builder
	for i := range 500 {
		fmt.Fprintf(&lab, `{"question":"l%d","choice":"c","label":%v}`+"\n", i, i%2 == 0)
	}
	for i := range n {
		fmt.Fprintf(&pool, `{"question":"u%d","choice":"c"}`+"\n", i)
		sub := "in"
		if i%2 == 1 {
			sub = "out"
		}
		fmt.Fprintf(&test, `{"question":"t%d","choice":"c","label":%v,"subset":%q}`+"\n", i, i%3 == 0, sub)
	}
	write("train_label.jsonl", lab.String())
	write("train_unlabel.jsonl", pool.String())
	write("test.jsonl", test.String())
	for s := range 16 {
		var w, c strings.Builder
		for i := range n {
			fmt.Fprintf(&w, `{"label":%d}`+"\n", (i+s)%2)
			fmt.Fprintf(&c, `{"label":%d}`+"\n", (i/3+s)%2)
		}
		write(fmt.Sprintf("baselines/weak/%d.jsonl", s), w.String())
		write(fmt.Sprintf("baselines/ceiling/%d.jsonl", s), c.String())
	}
	store, err := testbed.OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	tb, err := store.Import(dir, testbed.ImportOptions{Name: "big", OODSubsets: []string{"out"}})
	if err != nil {
		b.Fatal(err)
	}
	return tb
}

// BenchmarkScore scores a 5-seed submission on a 10,000-row test set: the
// work the lab does for every submission.
func BenchmarkScore(b *testing.B) {
	tb := bigTestbed(b, 10000)
	var seeds []Predictions
	for s := range 5 {
		seeds = append(seeds, predict(fmt.Sprint(s), tb.PublicTest(), func(r testbed.Row) bool { return len(r.ID)%(s+2) != 0 }))
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Score(tb, seeds, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePredictions parses one seed's JSONL predictions for 10,000
// rows.
func BenchmarkParsePredictions(b *testing.B) {
	tb := bigTestbed(b, 10000)
	var sb strings.Builder
	for _, r := range tb.PublicTest() {
		fmt.Fprintf(&sb, "{\"id\":%q,\"label\":1}\n", r.ID)
	}
	in := sb.String()
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := ParsePredictions("p", "s", strings.NewReader(in), tb); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScoreSubmission is the lab's per-submission scoring work for one
// seed of a 10,000-row test set: parse the predictions array (public
// order), check coverage, score every cell.
func BenchmarkScoreSubmission(b *testing.B) {
	tb := bigTestbed(b, 10000)
	pub := tb.PublicTest()
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range pub {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprint(&sb, i%2)
	}
	sb.WriteByte(']')
	in := sb.String()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := ParsePredictions("p", "s", strings.NewReader(in), tb)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Score(tb, []Predictions{p}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
