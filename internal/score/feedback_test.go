package score

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/testbed"
)

func TestStep(t *testing.T) {
	for n, want := range map[int]float64{1: 1, 16: 0.5, 500: 0.01, 960: 0.01, 1000: 0.005, 4000: 0.002, 100000: 0.00005} {
		if got := Step(n); math.Abs(got-want) > 1e-12 {
			t.Errorf("Step(%d) = %v, want %v", n, got, want)
		}
		if n >= 5 && 1/float64(n) > Step(n)/5+1e-12 {
			t.Errorf("Step(%d): one row moves accuracy by more than a fifth of a step", n)
		}
	}
}

func TestDefaultFeedback(t *testing.T) {
	tb := attackTestbed(t)
	var all Predictions = Predictions{Seed: "s", Labels: map[string]int{}}
	for _, r := range tb.PublicTest() {
		all.Labels[r.ID] = r.Label // perfect on every public row
	}
	d := Ditherer{Secret: []byte("k")}
	fb, err := FeedbackFor(tb, []Predictions{all}, d)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(fb)
	for _, forbidden := range []string{"holdout", "sealed", "correct", "distribution", "total"} {
		if strings.Contains(string(b), forbidden) {
			t.Errorf("default feedback holds %q: %s", forbidden, b)
		}
	}
	if len(fb.Cells) != 2 || fb.Cells[0].Group != testbed.GroupOverall {
		t.Fatalf("cells %+v", fb.Cells)
	}
	c := fb.Cells[0]
	if c.Step != 0.01 || c.Accuracy.Mean < 0.99 || c.Accuracy.Mean > 1 {
		t.Errorf("overall cell %+v", c)
	}
	if m := c.Accuracy.Mean / c.Step; math.Abs(m-math.Round(m)) > 1e-9 {
		t.Errorf("accuracy %v is not on the %v grid", c.Accuracy.Mean, c.Step)
	}
	cb := tb.Manifest.Baseline(testbed.SplitFeedback, testbed.GroupOverall)
	if want := (c.Accuracy.Mean - cb.Weak.Mean) / (cb.Ceiling.Mean - cb.Weak.Mean); math.Abs(c.PGR.Mean-want) > 1e-12 {
		t.Errorf("PGR %v is not derived from the released accuracy (%v)", c.PGR.Mean, want)
	}
	// The same predictions always get the same answer.
	again, _ := FeedbackFor(tb, []Predictions{all}, d)
	if again.Cells[0].Accuracy.Mean != c.Accuracy.Mean {
		t.Error("a repeated query got another answer")
	}
}

func TestLadder(t *testing.T) {
	tb := attackTestbed(t)
	d := Ditherer{Secret: []byte("k")}
	preds := func(correct float64) Predictions {
		p := Predictions{Seed: "s", Labels: map[string]int{}}
		for i, r := range tb.PublicTest() {
			p.Labels[r.ID] = r.Label
			if float64(i%100) >= 100*correct {
				p.Labels[r.ID] = 1 - r.Label
			}
		}
		return p
	}
	var st Ladder
	first, _ := LadderFeedback(tb, []Predictions{preds(0.6)}, d, &st)
	if !first.Released {
		t.Fatal("the first submission was not released")
	}
	same, _ := LadderFeedback(tb, []Predictions{preds(0.61)}, d, &st)
	if same.Released || same.Cells[0].Accuracy.Mean != first.Cells[0].Accuracy.Mean || same.Note == "" {
		t.Errorf("a change within the noise was released: %+v", same)
	}
	better, _ := LadderFeedback(tb, []Predictions{preds(0.8)}, d, &st)
	if !better.Released || better.Cells[0].Accuracy.Mean <= first.Cells[0].Accuracy.Mean {
		t.Errorf("a clear improvement was not released: %+v", better)
	}
}

func TestAnchorFeedback(t *testing.T) {
	tb := attackTestbed(t)
	p := Predictions{Seed: "s", Labels: map[string]int{}}
	for _, r := range tb.PublicTest() {
		p.Labels[r.ID] = 0
	}
	fb, err := AnchorFeedback(tb, []Predictions{p})
	if err != nil {
		t.Fatal(err)
	}
	a := fb.Anchor
	if a.Total != len(tb.PublicTest()) || a.PredDistribution["0"] != a.Total || a.LabelDistribution["0"]+a.LabelDistribution["1"] != a.Total ||
		a.Correct != a.LabelDistribution["0"] || a.PGR == nil {
		t.Errorf("anchor result %+v", a)
	}
}

func TestProbeFlags(t *testing.T) {
	tb := attackTestbed(t)
	rows := tb.PublicTest()
	mk := func(f func(i int, r testbed.Row) int) Predictions {
		p := Predictions{Seed: "s", Labels: map[string]int{}}
		for i, r := range rows {
			p.Labels[r.ID] = f(i, r)
		}
		return p
	}
	kinds := func(fs []Flag) string {
		var k []string
		for _, f := range fs {
			k = append(k, f.Kind)
		}
		return strings.Join(k, ",")
	}
	var d Detector
	constant := mk(func(int, testbed.Row) int { return 1 })
	if got := kinds(d.Check(tb, "c", "r", "a", constant)); !strings.Contains(got, FlagConstant) {
		t.Errorf("constant predictions: %s", got)
	}
	// An honest-looking submission, then a resubmission changing 5 rows.
	honest := mk(func(i int, r testbed.Row) int { return (i * 7 / 3) % 2 })
	if got := d.Check(tb, "c", "r", "b", honest); len(got) != 0 {
		t.Errorf("honest submission flagged: %+v", got)
	}
	tweak := mk(func(i int, r testbed.Row) int {
		v := (i * 7 / 3) % 2
		if i < 5 {
			v = 1 - v
		}
		return v
	})
	fl := d.Check(tb, "c", "r", "c", tweak)
	if len(fl) != 1 || fl[0].Kind != FlagNearDuplicate || fl[0].Of != "b" || !strings.Contains(fl[0].Reason, "5 of 1920") {
		t.Errorf("near-duplicate: %+v", fl)
	}
	tweak2 := mk(func(i int, r testbed.Row) int {
		v := (i * 7 / 3) % 2
		if i < 6 {
			v = 1 - v
		}
		return v
	})
	if got := kinds(d.Check(tb, "c", "r", "d", tweak2)); got != FlagNearDuplicate+","+FlagWalk {
		t.Errorf("walk: %s", got)
	}
	// 50 differing rows is no probe; another campaign shares nothing.
	far := mk(func(i int, r testbed.Row) int {
		v := (i * 7 / 3) % 2
		if i < 50 {
			v = 1 - v
		}
		return v
	})
	if got := d.Check(tb, "c", "r", "e", far); len(got) != 0 {
		t.Errorf("50-row change flagged: %+v", got)
	}
	if got := d.Check(tb, "other", "r", "f", tweak); len(got) != 0 {
		t.Errorf("another campaign's submission matched: %+v", got)
	}
	// The window forgets: after Window newer submissions, no match.
	small := Detector{Window: 3}
	small.Check(tb, "c", "r", "old", honest)
	for i := range 3 {
		small.Check(tb, "c", "r2", fmt.Sprint("n", i), mk(func(j int, r testbed.Row) int { return (j*(i+11) + i) % 2 }))
	}
	if got := small.Check(tb, "c", "r", "late", tweak); len(got) != 0 {
		t.Errorf("a submission outside the window was matched: %+v", got)
	}
}

func TestTrivialStrategies(t *testing.T) {
	tb := attackTestbed(t)
	rows := tb.PublicTest()
	counts := map[int]int{}
	for _, r := range rows {
		counts[r.Label]++
	}
	maj := 0
	if counts[1] > counts[0] {
		maj = 1
	}
	preds := make([]int, len(rows))
	for i := range preds {
		preds[i] = maj
	}
	preds[0] = 1 - maj // 99.9% agreement: still the majority strategy
	fl := trivialFlags(tb, rows, preds)
	if len(fl) != 1 || fl[0].Kind != FlagTrivial {
		t.Errorf("majority strategy: %+v", fl)
	}
	// Most common answer among a question's candidates (binary rows).
	var brows []testbed.Row
	var bpreds []int
	for q := range 100 {
		for c, choice := range []string{"42", "42", "17"} {
			f := map[string]json.RawMessage{}
			f["question"], _ = json.Marshal(fmt.Sprintf("q%d", q))
			f["choice"], _ = json.Marshal(choice)
			brows = append(brows, testbed.Row{ID: fmt.Sprintf("%d-%d", q, c), Fields: f, Label: c % 2})
			if choice == "42" {
				bpreds = append(bpreds, 1)
			} else {
				bpreds = append(bpreds, 0)
			}
		}
	}
	if a := commonAnswerAgreement(brows, bpreds); a != 1 {
		t.Errorf("common-answer agreement %v, want 1", a)
	}
}
