package score

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/aar-lab/aar/internal/stats"
	"github.com/aar-lab/aar/internal/testbed"
)

// Feedback policies: named data a campaign chooses.
const (
	// PolicyDefault releases the feedback split's accuracy and PGR (overall,
	// ID, OOD), each accuracy dithered and rounded (see Step) so that one
	// changed row is invisible; never counts, distributions or per-row data.
	PolicyDefault = "default"
	// PolicyLadder releases a new score only when it beats the researcher's
	// best by more than the noise (Blum & Hardt's Ladder); otherwise the
	// best so far is repeated.
	PolicyLadder = "ladder"
	// PolicyAnchor returns exactly what the public study's scorer returned
	// (exact accuracy, counts, prediction and label distributions over the
	// public test rows). It can be mined; it exists to reproduce and study
	// that, never as a default.
	PolicyAnchor = "anchor"
)

// Policies lists the policy names.
var Policies = []string{PolicyDefault, PolicyLadder, PolicyAnchor}

// Feedback is everything a researcher is told about one submission.
type Feedback struct {
	Policy string         `json:"policy"`
	Cells  []FeedbackCell `json:"cells,omitempty"`
	// Released (ladder) says whether this submission set a new best.
	Released bool          `json:"released,omitempty"`
	Anchor   *AnchorResult `json:"anchor,omitempty"`
	Note     string        `json:"note,omitempty"`
}

// FeedbackCell is one released figure of the feedback split.
type FeedbackCell struct {
	Group    string         `json:"group"`
	Rows     int            `json:"rows"`
	Step     float64        `json:"step"`
	Accuracy *stats.Summary `json:"accuracy"`
	PGR      *stats.Summary `json:"pgr"`
}

// AnchorResult mirrors the study's scorer response.
type AnchorResult struct {
	TransferAcc       float64        `json:"transfer_acc"`
	PGR               *float64       `json:"pgr"`
	Correct           int            `json:"correct"`
	Total             int            `json:"total"`
	PredDistribution  map[string]int `json:"pred_distribution"`
	LabelDistribution map[string]int `json:"label_distribution"`
	FixedWeakAcc      float64        `json:"fixed_weak_acc"`
	FixedStrongAcc    float64        `json:"fixed_strong_acc"`
}

// Step is the rounding step of a slice of n rows: 5/n rounded up to 1, 2 or
// 5 times a power of ten, so one changed row moves the accuracy by at most a
// fifth of a step.
func Step(n int) float64 {
	if n <= 0 {
		return 1
	}
	raw := 5 / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw-1e-15 {
			return math.Min(1, m*p)
		}
	}
	return 1
}

// Ditherer turns an exact accuracy into a released one: the accuracy plus
// an offset in [−step/2, step/2) derived by HMAC from a secret and the whole
// prediction vector, rounded to the step. The same predictions always get
// the same answer (repeating a query teaches nothing), and two prediction
// sets that differ in one row get independent offsets, so the 1/n difference
// between them is buried in a step-sized dither.
type Ditherer struct {
	Secret []byte
}

// offset returns the dither in [−0.5, 0.5) for a prediction set and a cell.
func (d Ditherer) offset(p Predictions, rows []testbed.Row, cell string) float64 {
	mac := hmac.New(sha256.New, d.Secret)
	mac.Write([]byte(cell))
	var buf [8]byte
	for _, r := range rows {
		mac.Write([]byte(r.ID))
		binary.LittleEndian.PutUint64(buf[:], uint64(p.Labels[r.ID]))
		mac.Write(buf[:])
	}
	sum := mac.Sum(nil)
	u := float64(binary.LittleEndian.Uint64(sum[:8])>>11) / float64(1<<53)
	return u - 0.5
}

// release rounds acc (of predictions p on rows) to step with the dither.
func (d Ditherer) release(acc float64, p Predictions, rows []testbed.Row, cell string, step float64) float64 {
	v := acc + step*d.offset(p, rows, cell)
	v = math.Round(v/step) * step
	return math.Max(0, math.Min(1, v))
}

// FeedbackFor computes what the default policy releases for a submission:
// for each group of the feedback split, each seed's accuracy dithered and
// rounded, their mean ± SE, and PGR from the rounded mean. It never releases
// a holdout or sealed figure.
func FeedbackFor(tb *testbed.Testbed, seeds []Predictions, d Ditherer) (*Feedback, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("feedback: no predictions")
	}
	fb := &Feedback{Policy: PolicyDefault}
	for _, group := range testbed.Groups {
		rows := tb.CellRows(testbed.SplitFeedback, group)
		if len(rows) == 0 {
			continue
		}
		step := Step(len(rows))
		accs := make([]float64, len(seeds))
		for i, p := range seeds {
			accs[i] = d.release(Accuracy(rows, p), p, rows, testbed.SplitFeedback+"/"+group, step)
		}
		acc := stats.Summarize(accs)
		acc.Mean = roundTo(acc.Mean, step/float64(len(seeds)))
		acc.SE = roundTo(acc.SE, step)
		c := FeedbackCell{Group: group, Rows: len(rows), Step: step, Accuracy: &acc}
		if cb := tb.Manifest.Baseline(testbed.SplitFeedback, group); cb != nil && cb.Weak != nil && cb.Ceiling != nil && cb.Ceiling.Mean-cb.Weak.Mean >= MinGap {
			gap := cb.Ceiling.Mean - cb.Weak.Mean
			pgr := stats.Summary{Mean: (acc.Mean - cb.Weak.Mean) / gap, SE: acc.SE / gap, N: acc.N}
			c.PGR = &pgr
		}
		fb.Cells = append(fb.Cells, c)
	}
	return fb, nil
}

func roundTo(v, step float64) float64 {
	if step <= 0 {
		return v
	}
	return math.Round(v/step) * step
}

// Ladder keeps a researcher's best released accuracy (feedback, overall)
// for the ladder policy.
type Ladder struct {
	Best float64 // best released accuracy so far (0 before the first)
	Set  bool
}

// LadderFeedback applies the Ladder mechanism on top of the default policy's
// figures: a submission whose overall feedback accuracy beats the best so far
// by more than the noise scale 1/√n is released (rounded to that scale) and
// becomes the best; any other gets the best so far repeated.
func LadderFeedback(tb *testbed.Testbed, seeds []Predictions, d Ditherer, state *Ladder) (*Feedback, error) {
	fb, err := FeedbackFor(tb, seeds, d)
	if err != nil {
		return nil, err
	}
	var overall *FeedbackCell
	for i := range fb.Cells {
		if fb.Cells[i].Group == testbed.GroupOverall {
			overall = &fb.Cells[i]
		}
	}
	if overall == nil {
		return nil, fmt.Errorf("ladder: the feedback split has no rows")
	}
	eta := 1 / math.Sqrt(float64(overall.Rows))
	out := &Feedback{Policy: PolicyLadder}
	if !state.Set || overall.Accuracy.Mean > state.Best+eta {
		state.Best, state.Set = roundTo(overall.Accuracy.Mean, eta), true
		out.Released = true
	}
	acc := stats.Summary{Mean: state.Best, N: overall.Accuracy.N}
	c := FeedbackCell{Group: testbed.GroupOverall, Rows: overall.Rows, Step: eta, Accuracy: &acc}
	if cb := tb.Manifest.Baseline(testbed.SplitFeedback, testbed.GroupOverall); cb != nil && cb.Weak != nil && cb.Ceiling != nil && cb.Ceiling.Mean-cb.Weak.Mean >= MinGap {
		pgr := stats.Summary{Mean: (acc.Mean - cb.Weak.Mean) / (cb.Ceiling.Mean - cb.Weak.Mean), N: acc.N}
		c.PGR = &pgr
	}
	out.Cells = []FeedbackCell{c}
	if !out.Released {
		out.Note = "no new best beyond the noise: the best score so far is repeated"
	}
	return out, nil
}

// AnchorFeedback returns what the study's scorer returned for the first
// seed, over every public test row (feedback and holdout pooled): exact
// accuracy, counts and distributions. Mineable by design.
func AnchorFeedback(tb *testbed.Testbed, seeds []Predictions) (*Feedback, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("feedback: no predictions")
	}
	p := seeds[0]
	rows := slices.Clone(tb.PublicTest())
	sort.Slice(rows, func(i, j int) bool { return rows[i].Line < rows[j].Line })
	res := &AnchorResult{Total: len(rows), PredDistribution: map[string]int{}, LabelDistribution: map[string]int{}}
	for _, r := range rows {
		l := p.Labels[r.ID]
		if l == r.Label {
			res.Correct++
		}
		res.PredDistribution[strconv.Itoa(l)]++
		res.LabelDistribution[strconv.Itoa(r.Label)]++
	}
	res.TransferAcc = float64(res.Correct) / float64(res.Total)
	var weak, ceil []float64
	for _, s := range []string{testbed.SplitFeedback, testbed.SplitHoldout} {
		if cb := tb.Manifest.Baseline(s, testbed.GroupOverall); cb != nil && cb.Weak != nil && cb.Ceiling != nil {
			weak, ceil = append(weak, cb.Weak.Mean), append(ceil, cb.Ceiling.Mean)
		}
	}
	if len(weak) > 0 {
		res.FixedWeakAcc, res.FixedStrongAcc = stats.Summarize(weak).Mean, stats.Summarize(ceil).Mean
		if res.FixedStrongAcc > res.FixedWeakAcc {
			pgr := (res.TransferAcc - res.FixedWeakAcc) / (res.FixedStrongAcc - res.FixedWeakAcc)
			res.PGR = &pgr
		}
	}
	return &Feedback{Policy: PolicyAnchor, Anchor: res}, nil
}
