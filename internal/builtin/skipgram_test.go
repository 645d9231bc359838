package builtin

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// twoTopics is a corpus whose sentences each draw tokens from one of two
// disjoint groups (a0…a7 or b0…b7), so tokens of a group co-occur and
// tokens of different groups never do.
func twoTopics(sentences int) [][]string {
	rng := rand.New(rand.NewPCG(7, 7))
	var corpus [][]string
	for range sentences {
		group := "a"
		if rng.IntN(2) == 1 {
			group = "b"
		}
		var s []string
		for range 12 {
			s = append(s, fmt.Sprintf("%s%d", group, rng.IntN(8)))
		}
		corpus = append(corpus, s)
	}
	return corpus
}

func sgCosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

var tinySkipGram = SkipGramOptions{Dim: 16, Window: 3, Negatives: 4, MinCount: 1, Epochs: 3, Subsample: -1, Seed: 42}

func TestSkipGramSeparatesTopics(t *testing.T) {
	sg, err := TrainSkipGram(context.Background(), twoTopics(600), tinySkipGram)
	if err != nil {
		t.Fatal(err)
	}
	if len(sg.Vocab) != 16 || len(sg.Vectors) != 16*sg.Dim || sg.Dim != 16 {
		t.Fatalf("vocab %d, vectors %d, dim %d; want 16 tokens of 16-d vectors", len(sg.Vocab), len(sg.Vectors), sg.Dim)
	}
	var same, cross float64
	var nSame, nCross int
	for i := range 8 {
		for j := range 8 {
			for _, g := range []string{"a", "b"} {
				if i != j {
					same += sgCosine(sg.Vector(fmt.Sprintf("%s%d", g, i)), sg.Vector(fmt.Sprintf("%s%d", g, j)))
					nSame++
				}
			}
			cross += sgCosine(sg.Vector(fmt.Sprintf("a%d", i)), sg.Vector(fmt.Sprintf("b%d", j)))
			nCross++
		}
	}
	same, cross = same/float64(nSame), cross/float64(nCross)
	t.Logf("mean cosine: same topic %.3f, across topics %.3f", same, cross)
	if same < cross+0.3 {
		t.Errorf("co-occurring tokens are not closer: same-topic cosine %.3f, cross-topic %.3f", same, cross)
	}
}

func TestSkipGramDeterministic(t *testing.T) {
	corpus := twoTopics(200)
	opt := tinySkipGram
	opt.Subsample = 1e-2 // exercise subsampling's draws too
	a, err := TrainSkipGram(context.Background(), corpus, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := TrainSkipGram(context.Background(), corpus, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Vocab, b.Vocab) || !slices.Equal(a.Vectors, b.Vectors) {
		t.Error("the same seed gave different vectors")
	}
	opt.Seed++
	c, err := TrainSkipGram(context.Background(), corpus, opt)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.Vectors, c.Vectors) {
		t.Error("another seed gave the same vectors")
	}
}

func TestSkipGramVocabulary(t *testing.T) {
	corpus := [][]string{{"x", "y", "x", "z"}, {"y", "x", "w", "w"}, {"rare", "x"}}
	opt := tinySkipGram
	opt.MinCount = 2
	sg, err := TrainSkipGram(context.Background(), corpus, opt)
	if err != nil {
		t.Fatal(err)
	}
	// By count (x 4, then w and y 2 each, ties by token); z and rare dropped.
	if want := []string{"x", "w", "y"}; !slices.Equal(sg.Vocab, want) {
		t.Errorf("vocab %q, want %q", sg.Vocab, want)
	}
	if want := []int{4, 2, 2}; !slices.Equal(sg.Counts, want) {
		t.Errorf("counts %v, want %v", sg.Counts, want)
	}
	opt.MaxVocab = 1
	if sg, err = TrainSkipGram(context.Background(), corpus, opt); err != nil || !slices.Equal(sg.Vocab, []string{"x"}) {
		t.Errorf("MaxVocab 1: vocab %v, err %v", sg.Vocab, err)
	}
	if sg.Vector("nope") != nil {
		t.Error("Vector of an unknown token is not nil")
	}
	opt.MinCount = 10
	if _, err := TrainSkipGram(context.Background(), corpus, opt); err == nil {
		t.Error("no error when no token reaches the minimum count")
	}
}

func TestSkipGramCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := TrainSkipGram(ctx, twoTopics(10), tinySkipGram); err == nil {
		t.Error("a cancelled context did not stop training")
	}
}

func BenchmarkSkipGram(b *testing.B) {
	corpus := twoTopics(1000)
	opt := tinySkipGram
	opt.Dim, opt.Epochs = 100, 1
	for b.Loop() {
		if _, err := TrainSkipGram(context.Background(), corpus, opt); err != nil {
			b.Fatal(err)
		}
	}
}
