// Package features owns the frozen representations of the built-in
// testbeds: how a row becomes a feature vector for the weak model and for
// the strong student. A representation is a pure function of a row's public
// fields and of files in the testbed's features/ directory (vocabularies,
// vectors, idf tables, centroids), described by a Spec in testbed.json. It
// never reads a label, a subset or any private field, so the lab and a
// researcher (who has only the public view) compute the same features.
package features

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// Representation is the "representation" member of testbed.json.
type Representation struct {
	// Weak and Strong describe the weak model's and the strong student's
	// input features.
	Weak   Spec `json:"weak"`
	Strong Spec `json:"strong"`
	// Pair, for comparison rows, says how the two sides combine: "diff"
	// means f(first) − f(second). The prompt is not featurized.
	Pair string `json:"pair,omitempty"`
	// WeakLogitBias is added to the weak model's class logits when it labels
	// the pool and the test set (e.g. [0.5, 0] gives a first-position bias
	// to a comparison judge).
	WeakLogitBias []float64 `json:"weak_logit_bias,omitempty"`
}

// Spec is one featurizer. Kind selects the implementation; the other
// members are its parameters, each documented with the kind that reads it.
// Files are names inside the testbed's features/ directory.
type Spec struct {
	Kind string `json:"kind"`
	// Field is the row field to read (default: "text"; for comparison rows
	// the pair's sides are read instead).
	Field string `json:"field,omitempty"`

	// bag, embed, tfidf: how text becomes tokens ("words", "space", "go").
	Tokenizer string `json:"tokenizer,omitempty"`
	// bag: one token per line; the feature is 1 when the token occurs.
	// embed: one token per line, the rows of Vectors.
	Vocab string `json:"vocab,omitempty"`
	// embed: len(vocab) × Dim little-endian float32, row-major.
	Vectors string `json:"vectors,omitempty"`
	Dim     int    `json:"dim,omitempty"`
	// embed: pooled statistics, concatenated in order: "mean", "max".
	Pool []string `json:"pool,omitempty"`
	// tfidf: word n-grams 1..NGrams hashed (FNV-1a 32) into Buckets, weighted
	// by the Buckets float32 values in IDF, the row L2-normalized.
	NGrams  int    `json:"ngrams,omitempty"`
	Buckets int    `json:"buckets,omitempty"`
	IDF     string `json:"idf,omitempty"`

	// concat: the parts' features side by side.
	Parts []Spec `json:"parts,omitempty"`

	// Image kinds (see their implementations): Width × Height grey pixels
	// encoded in Field as base64, and their parameters.
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	Grid      int    `json:"grid,omitempty"`
	Patch     int    `json:"patch,omitempty"`
	Centroids string `json:"centroids,omitempty"`
	Whiten    string `json:"whiten,omitempty"`
	K         int    `json:"k,omitempty"`
}

// Featurizer turns one text (or encoded image) into features.
type Featurizer interface {
	// Dim is the number of feature columns.
	Dim() int
	// Append appends the non-zero features of value to v, at column offset
	// off and above, in increasing column order.
	Append(v *Vec, off int, value string) error
}

// Opener builds a featurizer from its spec and the features/ directory.
type Opener func(spec Spec, dir string) (Featurizer, error)

var (
	mu         sync.RWMutex
	kinds      = map[string]Opener{}    // guarded by mu
	tokenizers = map[string]Tokenizer{} // guarded by mu
)

// Tokenizer splits a text into tokens.
type Tokenizer func(text string) []string

// RegisterKind makes a featurizer kind available to Open. It panics on a
// duplicate name (a programming error).
func RegisterKind(name string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[name]; dup {
		panic("features: kind registered twice: " + name)
	}
	kinds[name] = open
}

// RegisterTokenizer makes a tokenizer available by name.
func RegisterTokenizer(name string, t Tokenizer) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := tokenizers[name]; dup {
		panic("features: tokenizer registered twice: " + name)
	}
	tokenizers[name] = t
}

// TokenizerByName returns a registered tokenizer.
func TokenizerByName(name string) (Tokenizer, error) {
	mu.RLock()
	defer mu.RUnlock()
	t, ok := tokenizers[name]
	if !ok {
		return nil, fmt.Errorf("unknown tokenizer %q (known: %v)", name, keys(tokenizers))
	}
	return t, nil
}

// Open builds the featurizer a spec describes, reading its files from dir.
func Open(spec Spec, dir string) (Featurizer, error) {
	mu.RLock()
	open, ok := kinds[spec.Kind]
	known := keys(kinds)
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("representation: unknown featurizer kind %q (known: %v)", spec.Kind, known)
	}
	f, err := open(spec, dir)
	if err != nil {
		return nil, fmt.Errorf("representation %s: %w", spec.Kind, err)
	}
	return f, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseRepresentation decodes testbed.json's "representation" member.
func ParseRepresentation(raw json.RawMessage) (*Representation, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("the testbed has no representation: it is not a built-in testbed, or its testbed.json lacks \"representation\"")
	}
	var r Representation
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("testbed.json representation: %w", err)
	}
	return &r, nil
}

// Opened is a representation with its featurizers open.
type Opened struct {
	Repr         *Representation
	Weak, Strong Featurizer
}

// OpenRepresentation opens both featurizers of r, reading files from dir
// (the testbed's features/ directory).
func OpenRepresentation(r *Representation, dir string) (*Opened, error) {
	w, err := Open(r.Weak, dir)
	if err != nil {
		return nil, fmt.Errorf("weak %w", err)
	}
	s, err := Open(r.Strong, dir)
	if err != nil {
		return nil, fmt.Errorf("strong %w", err)
	}
	return &Opened{Repr: r, Weak: w, Strong: s}, nil
}

// BuildWeak featurizes rows for the weak model.
func (o *Opened) BuildWeak(rows []Row) (*Matrix, error) {
	return Build(o.Weak, o.Repr.Weak, o.Repr.Pair, rows)
}

// BuildStrong featurizes rows for the strong student.
func (o *Opened) BuildStrong(rows []Row) (*Matrix, error) {
	return Build(o.Strong, o.Repr.Strong, o.Repr.Pair, rows)
}
