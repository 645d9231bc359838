package testbed

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"

	"github.com/aar-lab/aar/internal/jsonl"
)

// Kind is the shape of a testbed's rows.
type Kind string

const (
	// KindComparison rows are {prompt, first, second, label: "A"|"B"}: which
	// of two answers is better (the study's chat testbed).
	KindComparison Kind = "comparison"
	// KindBinary rows are {question, choice, label: true|false}: is this
	// answer correct (the study's math and code testbeds).
	KindBinary Kind = "binary"
	// KindClassification rows are {text, label} with label a class name or a
	// class index (aar's built-in testbeds).
	KindClassification Kind = "classification"
)

// Kinds lists the row kinds in a stable order.
var Kinds = []Kind{KindComparison, KindBinary, KindClassification}

// publicFields are the only row fields a public view carries, besides id.
// Everything else (label, subset, difficulty and any field a source adds) is
// private: an unknown field may well encode the answer.
var publicFields = map[Kind][]string{
	KindComparison:     {"prompt", "first", "second"},
	KindBinary:         {"question", "choice"},
	KindClassification: {"text"},
}

// fixedClasses are the class names of the kinds whose classes are not chosen
// by the testbed. Their order is the prediction encoding.
var fixedClasses = map[Kind][]string{
	KindComparison: {"A", "B"},
	KindBinary:     {"false", "true"},
}

// Split names. Test rows are in exactly one of feedback, holdout or sealed;
// pool (train_unlabel) rows are public or sealed.
const (
	SplitFeedback = "feedback"
	SplitHoldout  = "holdout"
	SplitSealed   = "sealed"
	SplitPublic   = "public" // a pool row that is not sealed
)

// TestSplits lists the test splits in reporting order.
var TestSplits = []string{SplitFeedback, SplitHoldout, SplitSealed}

// Groups of test rows, by subset.
const (
	GroupOverall = "overall" // every row, pooled (as the study scored)
	GroupID      = "id"
	GroupOOD     = "ood"
)

// Groups lists the groups in reporting order.
var Groups = []string{GroupOverall, GroupID, GroupOOD}

// Manifest is testbed.json. The private store's manifest carries the split
// seed and every fixed baseline; the public view's carries only what a
// researcher may see (see PublicManifest).
type Manifest struct {
	Name       string   `json:"name"`
	Kind       Kind     `json:"kind"`
	Classes    []string `json:"classes"`
	IDSubsets  []string `json:"id_subsets,omitempty"`
	OODSubsets []string `json:"ood_subsets,omitempty"`
	License    string   `json:"license,omitempty"`
	Source     string   `json:"source,omitempty"`
	Notes      string   `json:"notes,omitempty"`

	// Representation and Training describe, for built-in testbeds, how rows
	// become features (package features) and how the weak model and the
	// strong student are trained (package w2s). Both are public.
	Representation json.RawMessage `json:"representation,omitempty"`
	Training       json.RawMessage `json:"training,omitempty"`

	// Baselines are the fixed weak and ceiling accuracies per cell.
	Baselines []CellBaseline `json:"baselines,omitempty"`

	// Private bookkeeping, written at import.
	Split       *SplitConfig `json:"split,omitempty"`
	Counts      *Counts      `json:"counts,omitempty"`
	WeakSeeds   []string     `json:"weak_seeds,omitempty"`
	ImportNotes []string     `json:"import_notes,omitempty"`
	ImportedAt  string       `json:"imported_at,omitempty"`
}

// SplitConfig records how the splits were drawn, so they can be audited.
type SplitConfig struct {
	Seed            uint64  `json:"seed"`
	SealedFraction  float64 `json:"sealed_fraction"`
	HoldoutFraction float64 `json:"holdout_fraction"`
	StratifiedBy    string  `json:"stratified_by"`
	DerivedIDsFrom  string  `json:"derived_ids,omitempty"`
}

// Counts are row counts per file and split.
type Counts struct {
	TrainLabel   int `json:"train_label"`
	Pool         int `json:"train_unlabel"`
	PoolSealed   int `json:"train_unlabel_sealed"`
	Test         int `json:"test"`
	TestFeedback int `json:"test_feedback"`
	TestHoldout  int `json:"test_holdout"`
	TestSealed   int `json:"test_sealed"`
}

// Figure is a baseline accuracy: a mean over seeds with its standard error.
type Figure struct {
	Mean  float64 `json:"mean"`
	SE    float64 `json:"se"`
	Seeds int     `json:"seeds"`
	Basis string  `json:"basis"`
}

// Basis says where a baseline figure came from.
const (
	// BasisPerRow: computed from per-row predictions of every seed on exactly
	// this cell's rows.
	BasisPerRow = "per-row"
	// BasisWholeSet: a mean over the whole test set (or a whole subset), as
	// the study's cache stores it; the cell's own rows may differ from it.
	BasisWholeSet = "whole-test-set"
	// BasisManifest: copied from the source testbed.json.
	BasisManifest = "manifest"
)

// CellBaseline holds the fixed weak and ceiling accuracies of one cell
// (split × group). A nil figure could not be derived; Note says why.
type CellBaseline struct {
	Split   string  `json:"split"`
	Group   string  `json:"group"`
	Rows    int     `json:"rows"`
	Weak    *Figure `json:"weak,omitempty"`
	Ceiling *Figure `json:"ceiling,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// Baseline returns the cell baseline for split and group, or nil.
func (m *Manifest) Baseline(split, group string) *CellBaseline {
	for i := range m.Baselines {
		if m.Baselines[i].Split == split && m.Baselines[i].Group == group {
			return &m.Baselines[i]
		}
	}
	return nil
}

// ClassIndex returns the index of a class name, or -1.
func (m *Manifest) ClassIndex(name string) int {
	return slices.Index(m.Classes, name)
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ValidateName checks a testbed name: lower-case letters, digits, '.', '_'
// and '-', at most 64 characters, starting with a letter or digit.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("testbed name %q is not valid: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// validate checks the fields a source manifest must get right. file names
// the manifest in errors.
func (m *Manifest) validate(file string) error {
	bad := func(field, fix, format string, args ...any) error {
		return jsonl.Errorf(file, 0, field, fix, format, args...)
	}
	if m.Name != "" {
		if err := ValidateName(m.Name); err != nil {
			return bad("name", "rename the testbed", "%v", err)
		}
	}
	if !slices.Contains(Kinds, m.Kind) {
		return bad("kind", `use "comparison", "binary" or "classification"`, "unknown row kind %q", m.Kind)
	}
	if fc, ok := fixedClasses[m.Kind]; ok {
		if len(m.Classes) == 0 {
			m.Classes = slices.Clone(fc)
		} else if !slices.Equal(m.Classes, fc) {
			return bad("classes", fmt.Sprintf("omit classes or set them to %q", fc),
				"%s rows have the fixed classes %q", m.Kind, fc)
		}
	}
	if len(m.Classes) < 2 {
		return bad("classes", "list at least two class names, in prediction-index order", "a %s testbed needs at least two classes", m.Kind)
	}
	seen := map[string]bool{}
	for _, c := range m.Classes {
		if c == "" || seen[c] {
			return bad("classes", "make every class name non-empty and unique", "class name %q is empty or repeated", c)
		}
		seen[c] = true
	}
	for _, s := range m.IDSubsets {
		if slices.Contains(m.OODSubsets, s) {
			return bad("ood_subsets", "list each subset once, as ID or as OOD", "subset %q is listed as both ID and OOD", s)
		}
	}
	return nil
}
