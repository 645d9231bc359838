// Package score owns turning predictions into figures: accuracy and PGR per
// cell (feedback, holdout, sealed × overall, ID, OOD) against the testbed's
// fixed baselines, mean ± SE across seeds, and paired bootstrap intervals for
// comparing two methods on the same rows.
//
// PGR = (accuracy − weak) / (ceiling − weak), never clipped; it is null, with
// the reason, when a baseline is missing or ceiling − weak is under MinGap.
// This package reads labels. Its errors name inputs, lines and counts, never
// a label; which of its figures a caller may show a researcher (feedback
// only) is the caller's rule to keep.
package score

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aar-lab/aar/internal/stats"
	"github.com/aar-lab/aar/internal/testbed"
)

// MinGap is the smallest ceiling − weak accuracy gap (5 points) at which PGR
// means anything; below it PGR is reported as null.
const MinGap = 0.05

// Cell is the score of one split × group.
type Cell struct {
	Split    string          `json:"split"`
	Group    string          `json:"group"`
	Rows     int             `json:"rows"`
	Accuracy *stats.Summary  `json:"accuracy"`
	PerSeed  []float64       `json:"accuracy_per_seed,omitempty"`
	Weak     *testbed.Figure `json:"weak"`
	Ceiling  *testbed.Figure `json:"ceiling"`
	PGR      *stats.Summary  `json:"pgr"`
	PGRSeeds []float64       `json:"pgr_per_seed,omitempty"`
	Note     string          `json:"note,omitempty"`
}

// Report is the score of one submission (one or more seeds).
type Report struct {
	Testbed string   `json:"testbed"`
	Seeds   []string `json:"seeds"`
	Cells   []Cell   `json:"cells"`
}

// Cell returns the report's cell for split and group, or nil.
func (r *Report) Cell(split, group string) *Cell {
	for i := range r.Cells {
		if r.Cells[i].Split == split && r.Cells[i].Group == group {
			return &r.Cells[i]
		}
	}
	return nil
}

// CoverageError says which rows a submission lacks. Rows come in two units a
// submission covers whole or not at all: the public test rows (feedback and
// holdout together, so an error never tells the two apart) and the sealed
// rows.
type CoverageError struct {
	Seed    string
	Unit    string // "public" or "sealed"
	Missing int
	Of      int
	First   []string // a few missing ids
}

func (e *CoverageError) Error() string {
	return fmt.Sprintf("predictions %s cover %d of the %d %s test rows (missing e.g. %s): predict every row of the %s test.jsonl",
		e.Seed, e.Of-e.Missing, e.Of, e.Unit, strings.Join(e.First, ", "), e.Unit)
}

// Score scores predictions (one per seed) on the splits requested; an empty
// list means every split the predictions cover. All seeds must predict the
// same rows.
func Score(tb *testbed.Testbed, seeds []Predictions, splits []string) (*Report, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("score: no predictions given")
	}
	for _, s := range splits {
		if !slices.Contains(testbed.TestSplits, s) {
			return nil, fmt.Errorf("score: unknown split %q: use feedback, holdout, sealed or all", s)
		}
	}
	seen := map[string]bool{}
	for _, p := range seeds {
		if seen[p.Seed] {
			return nil, fmt.Errorf("score: seed %q is given twice: give each seed's predictions once", p.Seed)
		}
		seen[p.Seed] = true
	}
	covered, err := coverage(tb, seeds)
	if err != nil {
		return nil, err
	}
	if len(splits) == 0 {
		splits = covered
	}
	for _, s := range splits {
		if !slices.Contains(covered, s) {
			return nil, fmt.Errorf("score: the predictions do not cover the %s split: predict its rows, or choose --split from %s", s, strings.Join(covered, ", "))
		}
	}
	rep := &Report{Testbed: tb.Manifest.Name}
	for _, p := range seeds {
		rep.Seeds = append(rep.Seeds, p.Seed)
	}
	for _, split := range testbed.TestSplits {
		if !slices.Contains(splits, split) {
			continue
		}
		for _, group := range testbed.Groups {
			rep.Cells = append(rep.Cells, scoreCell(tb, seeds, split, group))
		}
	}
	return rep, nil
}

// coverage returns the splits every seed covers whole, or a CoverageError.
func coverage(tb *testbed.Testbed, seeds []Predictions) ([]string, error) {
	var covered []string
	for _, unit := range []string{"public", "sealed"} {
		ids := tb.TestIDsByUnit(unit)
		if len(ids) == 0 {
			continue
		}
		var whole bool
		for i, p := range seeds {
			var missing []string
			for _, id := range ids {
				if _, ok := p.Labels[id]; !ok {
					missing = append(missing, id)
				}
			}
			has := len(missing) < len(ids)
			if i == 0 {
				whole = has
			}
			if has != whole || (has && len(missing) > 0) {
				sort.Strings(missing)
				return nil, &CoverageError{Seed: p.Seed, Unit: unit, Missing: len(missing), Of: len(ids), First: missing[:min(3, len(missing))]}
			}
		}
		if whole {
			if unit == "public" {
				covered = append(covered, testbed.SplitFeedback, testbed.SplitHoldout)
			} else {
				covered = append(covered, testbed.SplitSealed)
			}
		}
	}
	if len(covered) == 0 {
		return nil, fmt.Errorf("score: the predictions cover no test split: predict every row of the public test.jsonl")
	}
	return covered, nil
}

func scoreCell(tb *testbed.Testbed, seeds []Predictions, split, group string) Cell {
	rows := tb.CellRows(split, group)
	c := Cell{Split: split, Group: group, Rows: len(rows)}
	if cb := tb.Manifest.Baseline(split, group); cb != nil {
		c.Weak, c.Ceiling, c.Note = cb.Weak, cb.Ceiling, cb.Note
	}
	if len(rows) == 0 {
		c.Note = "no test rows in this cell"
		return c
	}
	for _, p := range seeds {
		c.PerSeed = append(c.PerSeed, Accuracy(rows, p))
	}
	acc := stats.Summarize(c.PerSeed)
	c.Accuracy = &acc
	switch {
	case c.Weak == nil || c.Ceiling == nil:
		c.Note = joinNote(c.Note, "PGR is null: the cell has no fixed weak or ceiling baseline")
	case c.Ceiling.Mean-c.Weak.Mean < MinGap:
		c.Note = joinNote(c.Note, fmt.Sprintf("PGR is null: ceiling − weak is %.2f points, under the %.0f-point minimum", 100*(c.Ceiling.Mean-c.Weak.Mean), 100*MinGap))
	default:
		gap := c.Ceiling.Mean - c.Weak.Mean
		for _, a := range c.PerSeed {
			c.PGRSeeds = append(c.PGRSeeds, (a-c.Weak.Mean)/gap)
		}
		pgr := stats.Summarize(c.PGRSeeds)
		c.PGR = &pgr
		if c.Weak.Basis != testbed.BasisPerRow || c.Ceiling.Basis != testbed.BasisPerRow {
			c.Note = joinNote(c.Note, "baselines are whole-test-set means, not this cell's own rows")
		}
	}
	return c
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Accuracy is the share of rows that p predicts correctly.
func Accuracy(rows []testbed.Row, p Predictions) float64 {
	if len(rows) == 0 {
		return 0
	}
	correct := 0
	for _, r := range rows {
		if l, ok := p.Labels[r.ID]; ok && l == r.Label {
			correct++
		}
	}
	return float64(correct) / float64(len(rows))
}

// Comparison is a paired bootstrap comparison of two methods on one cell.
type Comparison struct {
	Split    string          `json:"split"`
	Group    string          `json:"group"`
	Rows     int             `json:"rows"`
	Accuracy stats.Interval  `json:"accuracy_diff"`
	PGR      *stats.Interval `json:"pgr_diff"`
}

// Compare estimates accuracy(a) − accuracy(b) on one cell with a paired
// bootstrap over rows (and the PGR difference, which is the accuracy
// difference over the cell's ceiling − weak gap). a and b are one or more
// seeds each; a row's value is its correctness averaged over the seeds, so
// rows are resampled with all seeds together. Every prediction set must
// cover every row of the cell.
func Compare(tb *testbed.Testbed, a, b []Predictions, split, group string, resamples int, seed uint64) (*Comparison, error) {
	rows := tb.CellRows(split, group)
	if len(rows) == 0 {
		return nil, fmt.Errorf("compare: the %s/%s cell has no rows", split, group)
	}
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("compare: no predictions")
	}
	mean := func(ps []Predictions) ([]float64, error) {
		x := make([]float64, len(rows))
		for _, p := range ps {
			for i, r := range rows {
				l, ok := p.Labels[r.ID]
				if !ok {
					return nil, fmt.Errorf("compare: predictions %s must cover every %s row", p.Seed, split)
				}
				if l == r.Label {
					x[i] += 1 / float64(len(ps))
				}
			}
		}
		return x, nil
	}
	xa, err := mean(a)
	if err != nil {
		return nil, err
	}
	xb, err := mean(b)
	if err != nil {
		return nil, err
	}
	cmp := &Comparison{Split: split, Group: group, Rows: len(rows),
		Accuracy: stats.PairedBootstrap(xa, xb, resamples, 0.95, seed)}
	if cb := tb.Manifest.Baseline(split, group); cb != nil && cb.Weak != nil && cb.Ceiling != nil && cb.Ceiling.Mean-cb.Weak.Mean >= MinGap {
		gap := cb.Ceiling.Mean - cb.Weak.Mean
		iv := cmp.Accuracy
		iv.Estimate, iv.Lo, iv.Hi = iv.Estimate/gap, iv.Lo/gap, iv.Hi/gap
		cmp.PGR = &iv
	}
	return cmp, nil
}
