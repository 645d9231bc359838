package testbed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aar-lab/aar/internal/jsonl"
)

// NoLabel marks a row without a label (allowed only in train_unlabel.jsonl).
const NoLabel = -1

// The three row files of a testbed.
const (
	FileTrainLabel = "train_label.jsonl"
	FilePool       = "train_unlabel.jsonl"
	FileTest       = "test.jsonl"
)

// Row is one row of a testbed file. Fields holds the object as read (with
// "id" set, derived if the file had none); Label is the class index.
type Row struct {
	Line   int // 1-based line in the file it was read from
	ID     string
	Subset string
	Label  int
	Fields map[string]json.RawMessage
	// DerivedID is set when the file had no id and ID was derived.
	DerivedID bool
}

// DetectKind guesses the row kind from the fields of a row: prompt+first+second
// is a comparison, question+choice is binary, text is classification.
func DetectKind(fields map[string]json.RawMessage) (Kind, bool) {
	has := func(names ...string) bool {
		for _, n := range names {
			if _, ok := fields[n]; !ok {
				return false
			}
		}
		return true
	}
	switch {
	case has("prompt", "first", "second"):
		return KindComparison, true
	case has("question", "choice"):
		return KindBinary, true
	case has("text"):
		return KindClassification, true
	}
	return "", false
}

// idPrefix is prepended to derived ids so a derived id names its file.
var idPrefix = map[string]string{FileTrainLabel: "lab-", FilePool: "pool-", FileTest: "test-"}

// parseRows turns the lines of one file into rows of manifest m's kind.
// needLabel says whether every row must carry a label. Rows without an id get
// one derived from their public content (never from label, subset or any
// other private field, so an id cannot be used to test a guessed label).
func parseRows(m *Manifest, file, name string, lines []jsonl.Line, needLabel bool) ([]Row, error) {
	rows := make([]Row, 0, len(lines))
	derived := map[string]int{}
	for _, ln := range lines {
		r := Row{Line: ln.Num, Fields: ln.Fields, Label: NoLabel}
		for _, f := range publicFields[m.Kind] {
			raw, ok := ln.Fields[f]
			if !ok {
				return nil, jsonl.Errorf(name, ln.Num, f, fmt.Sprintf("give every %s row the fields %s", m.Kind, strings.Join(publicFields[m.Kind], ", ")), "missing")
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, jsonl.Errorf(name, ln.Num, f, "make it a JSON string", "is not a string")
			}
		}
		if raw, ok := ln.Fields["subset"]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &r.Subset); err != nil {
				return nil, jsonl.Errorf(name, ln.Num, "subset", "make it a JSON string naming the subset", "is not a string")
			}
		}
		if raw, ok := ln.Fields["label"]; ok && string(raw) != "null" {
			lab, err := parseLabel(m, raw)
			if err != nil {
				return nil, jsonl.Errorf(name, ln.Num, "label", labelFix(m), "%v", err)
			}
			r.Label = lab
		} else if needLabel {
			return nil, jsonl.Errorf(name, ln.Num, "label", labelFix(m), "missing: every row of %s needs a label", file)
		}
		if raw, ok := ln.Fields["id"]; ok {
			id, err := parseID(raw)
			if err != nil {
				return nil, jsonl.Errorf(name, ln.Num, "id", "make every id a non-empty string or an integer, or leave ids out to have them derived", "%v", err)
			}
			r.ID = id
		} else {
			base := idPrefix[file] + contentHash(m.Kind, ln.Fields)
			derived[base]++
			r.ID, r.DerivedID = base, true
			if n := derived[base]; n > 1 {
				r.ID = base + "-" + strconv.Itoa(n)
			}
			f := make(map[string]json.RawMessage, len(ln.Fields)+1)
			for k, v := range ln.Fields {
				f[k] = v
			}
			f["id"], _ = json.Marshal(r.ID)
			r.Fields = f
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func parseID(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if strings.TrimSpace(s) == "" || len(s) > 256 {
			return "", fmt.Errorf("id must be 1-256 characters and not blank")
		}
		return s, nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err == nil {
		if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return n.String(), nil
		}
	}
	return "", fmt.Errorf("id must be a string or an integer")
}

// parseLabel decodes a label in the kind's native encoding into a class index.
func parseLabel(m *Manifest, raw json.RawMessage) (int, error) {
	switch m.Kind {
	case KindComparison:
		var s string
		if json.Unmarshal(raw, &s) == nil && (s == "A" || s == "B") {
			return m.ClassIndex(s), nil
		}
		return 0, fmt.Errorf("comparison labels are the strings \"A\" or \"B\"")
	case KindBinary:
		var b bool
		if json.Unmarshal(raw, &b) == nil {
			if b {
				return 1, nil
			}
			return 0, nil
		}
		return 0, fmt.Errorf("binary labels are JSON true or false")
	default:
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if i := m.ClassIndex(s); i >= 0 {
				return i, nil
			}
			return 0, fmt.Errorf("label is not one of the %d class names in testbed.json", len(m.Classes))
		}
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&n) == nil {
			if i, err := strconv.Atoi(n.String()); err == nil && i >= 0 && i < len(m.Classes) {
				return i, nil
			}
		}
		return 0, fmt.Errorf("label must be a class name or a class index 0..%d", len(m.Classes)-1)
	}
}

func labelFix(m *Manifest) string {
	switch m.Kind {
	case KindComparison:
		return `use "A" or "B"`
	case KindBinary:
		return "use true or false"
	default:
		return fmt.Sprintf("use a class name from testbed.json or an index 0..%d", len(m.Classes)-1)
	}
}

// contentHash hashes a row's public fields only.
func contentHash(k Kind, fields map[string]json.RawMessage) string {
	h := sha256.New()
	for _, f := range publicFields[k] {
		var s string
		_ = json.Unmarshal(fields[f], &s)
		fmt.Fprintf(h, "%s=%d:%s\n", f, len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// publicRow returns the row as a researcher may see it: id and the kind's
// public fields, nothing else.
func publicRow(k Kind, r Row) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(publicFields[k])+1)
	out["id"], _ = json.Marshal(r.ID)
	for _, f := range publicFields[k] {
		out[f] = r.Fields[f]
	}
	return out
}
