package testbed

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aar-lab/aar/internal/stats"
)

// GroupOf returns the group (GroupID or GroupOOD) of a subset.
func (m *Manifest) GroupOf(subset string) string {
	if slices.Contains(m.OODSubsets, subset) {
		return GroupOOD
	}
	return GroupID
}

// InCell reports whether a test row with the given split and subset belongs
// to the cell (split, group).
func (m *Manifest) InCell(rowSplit, subset, split, group string) bool {
	return rowSplit == split && (group == GroupOverall || m.GroupOf(subset) == group)
}

// CellRows returns the test rows of one cell, in file order (shared: do not
// modify).
func (tb *Testbed) CellRows(split, group string) []Row {
	tb.computeViews()
	return tb.views.cells[split+"/"+group]
}

type baselineInputs struct {
	weakPreds, ceilPreds []SeedPredictions
	agg                  *aggregate
	fromManifest         []CellBaseline
}

// computeBaselines fills every cell's fixed weak and ceiling figures, from
// per-row predictions where there are some, else from whole-set figures,
// else from the source manifest; what none of them gives stays nil with a
// note saying why.
func (tb *Testbed) computeBaselines(in baselineInputs) []CellBaseline {
	m := &tb.Manifest
	var out []CellBaseline
	for _, split := range TestSplits {
		for _, group := range Groups {
			rows := tb.CellRows(split, group)
			cb := CellBaseline{Split: split, Group: group, Rows: len(rows)}
			if len(rows) == 0 {
				cb.Note = "no test rows in this cell"
				out = append(out, cb)
				continue
			}
			var notes []string
			var weakNote, ceilNote string
			cb.Weak, weakNote = figureFor(m, rows, group, in.weakPreds, in.agg.overall(true), in.agg.subsets(true))
			cb.Ceiling, ceilNote = figureFor(m, rows, group, in.ceilPreds, in.agg.overall(false), in.agg.subsets(false))
			if src := findCell(in.fromManifest, split, group); src != nil {
				if cb.Weak == nil && src.Weak != nil {
					f := *src.Weak
					f.Basis = BasisManifest
					cb.Weak, weakNote = &f, ""
				}
				if cb.Ceiling == nil && src.Ceiling != nil {
					f := *src.Ceiling
					f.Basis = BasisManifest
					cb.Ceiling, ceilNote = &f, ""
				}
			}
			if weakNote != "" {
				notes = append(notes, "weak: "+weakNote)
			}
			if ceilNote != "" {
				notes = append(notes, "ceiling: "+ceilNote)
			}
			cb.Note = strings.Join(notes, "; ")
			out = append(out, cb)
		}
	}
	return out
}

func findCell(cells []CellBaseline, split, group string) *CellBaseline {
	for i := range cells {
		if cells[i].Split == split && cells[i].Group == group {
			return &cells[i]
		}
	}
	return nil
}

// figureFor computes one model's figure on a cell's rows.
func figureFor(m *Manifest, rows []Row, group string, preds []SeedPredictions, overall []float64, subsets []map[string][2]int) (*Figure, string) {
	if len(preds) > 0 {
		accs := make([]float64, len(preds))
		for i, sp := range preds {
			correct := 0
			for _, r := range rows {
				if sp.Labels[r.ID] == r.Label {
					correct++
				}
			}
			accs[i] = float64(correct) / float64(len(rows))
		}
		return figure(accs, BasisPerRow), ""
	}
	if group == GroupOverall && len(overall) > 0 {
		return figure(overall, BasisWholeSet), ""
	}
	if group != GroupOverall && len(subsets) > 0 && !slices.ContainsFunc(subsets, func(m map[string][2]int) bool { return m == nil }) {
		accs := make([]float64, 0, len(subsets))
		for _, per := range subsets {
			correct, total := 0, 0
			for name, ct := range per {
				if m.GroupOf(name) == group {
					correct += ct[0]
					total += ct[1]
				}
			}
			if total == 0 {
				return nil, fmt.Sprintf("the per-subset figures hold no %s subset", strings.ToUpper(group))
			}
			accs = append(accs, float64(correct)/float64(total))
		}
		return figure(accs, BasisWholeSet), ""
	}
	if len(overall) > 0 {
		return nil, "not derivable: the source has whole-test-set accuracy only (no per-row test predictions, no per-subset figures)"
	}
	return nil, "not derivable: no per-row baseline predictions (baselines/<model>/<seed>.jsonl) and no cache"
}

func figure(accs []float64, basis string) *Figure {
	s := stats.Summarize(accs)
	return &Figure{Mean: s.Mean, SE: s.SE, Seeds: s.N, Basis: basis}
}

func (a *aggregate) overall(weak bool) []float64 {
	if a == nil {
		return nil
	}
	if weak {
		return a.weakOverall
	}
	return a.ceilOverall
}

func (a *aggregate) subsets(weak bool) []map[string][2]int {
	if a == nil {
		return nil
	}
	if weak {
		return a.weakSubsets
	}
	return a.ceilSubsets
}
