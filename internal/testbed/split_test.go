package testbed

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"
)

func binaryRow(id, question, choice, subset string, label int) Row {
	f := map[string]json.RawMessage{}
	f["id"], _ = json.Marshal(id)
	f["question"], _ = json.Marshal(question)
	f["choice"], _ = json.Marshal(choice)
	return Row{ID: id, Subset: subset, Label: label, Fields: f}
}

// The candidate answers of one binary question are one unit: they always
// share a split, so no split holds the other candidates (and so the most
// common answer) of another split's question.
func TestBinaryCandidatesShareASplit(t *testing.T) {
	var test, pool []Row
	for q := range 200 {
		for c := range 2 + q%4 {
			test = append(test, binaryRow(fmt.Sprintf("t%d-%d", q, c), fmt.Sprintf("What is %d + 1?", q), fmt.Sprint(q+c), "s", c%2))
			pool = append(pool, binaryRow(fmt.Sprintf("p%d-%d", q, c), fmt.Sprintf("What is %d + 2?", q), fmt.Sprint(q+c), "s", NoLabel))
		}
	}
	splits := assignSplits(KindBinary, test, pool, 5, DefaultSealedFraction, DefaultHoldoutFraction)
	count := map[string]int{}
	for _, rows := range [][]Row{test, pool} {
		byQ := map[string]string{}
		for _, r := range rows {
			var q string
			_ = json.Unmarshal(r.Fields["question"], &q)
			s := splits[r.ID]
			if prev, ok := byQ[q]; ok && prev != s {
				t.Fatalf("question %q has candidates in %s and %s", q, prev, s)
			}
			if _, ok := byQ[q]; !ok {
				count[s]++
			}
			byQ[q] = s
		}
	}
	// 200 test questions: 40 sealed, 80 holdout, 80 feedback; 200 pool
	// questions: 40 sealed.
	if count[SplitSealed] != 80 || count[SplitHoldout] != 80 || count[SplitFeedback] != 80 || count[SplitPublic] != 160 {
		t.Errorf("questions per split %v", count)
	}
}

// A binary testbed with one candidate per question draws the splits it drew
// before candidates were grouped: each row is its own unit, stratified by
// subset and label, as a classification row is.
func TestBinarySingleCandidatesKeepTheirDraw(t *testing.T) {
	var test, pool []Row
	for i := range 300 {
		test = append(test, binaryRow(fmt.Sprintf("t%d", i), fmt.Sprintf("q%d", i), "c", []string{"a", "b"}[i%2], i%3%2))
		pool = append(pool, binaryRow(fmt.Sprintf("p%d", i), fmt.Sprintf("u%d", i), "c", "a", NoLabel))
	}
	for seed := range uint64(5) {
		got := assignSplits(KindBinary, test, pool, seed, DefaultSealedFraction, DefaultHoldoutFraction)
		want := assignSplits(KindClassification, test, pool, seed, DefaultSealedFraction, DefaultHoldoutFraction)
		if !maps.Equal(got, want) {
			t.Fatalf("seed %d: one-candidate binary rows are split differently from single rows", seed)
		}
	}
}
