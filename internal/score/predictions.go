package score

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/testbed"
)

// MaxPredictionBytes bounds a predictions file.
const MaxPredictionBytes = 256 << 20

// Predictions are one seed's predicted class index per test row id.
type Predictions struct {
	Seed   string
	Labels map[string]int
}

// ReadPredictionsFile reads one seed's predictions from path. See
// ParsePredictions for the formats. The seed is the file's base name without
// extension.
func ReadPredictionsFile(path string, tb *testbed.Testbed) (Predictions, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Predictions{}, jsonl.Errorf(path, 0, "", "check the path", "cannot read the predictions file: %v", errorsCause(err))
	}
	if st.IsDir() {
		return Predictions{}, jsonl.Errorf(path, 0, "", "give the path of a predictions file", "is a directory")
	}
	if st.Size() > MaxPredictionBytes {
		return Predictions{}, jsonl.Errorf(path, 0, "", "a predictions file holds one small line per test row; check you gave the right file",
			"file is %s, over the %s limit", jsonl.HumanBytes(st.Size()), jsonl.HumanBytes(MaxPredictionBytes))
	}
	f, err := os.Open(path)
	if err != nil {
		return Predictions{}, jsonl.Errorf(path, 0, "", "check the file's permissions", "cannot open: %v", errorsCause(err))
	}
	defer f.Close()
	seed := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return ParsePredictions(path, seed, f, tb)
}

// errorsCause drops the path from a file-system error (the caller names the
// file itself).
func errorsCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ParsePredictions reads one seed's predictions in either format:
//
//   - JSONL, one {"id": ..., "label": class index} per line, any order;
//   - a JSON array of class indexes, one per public test row, in the order of
//     the public view's test.jsonl (as the study's scorer took them).
//
// A prediction is the class index (testbed.Manifest.PredictionEncoding).
// Every error names the input, the line or position and the fix; none
// quotes the input.
func ParsePredictions(name, seed string, r io.Reader, tb *testbed.Testbed) (Predictions, error) {
	return parsePredictions(name, seed, r, tb, tb.Test)
}

// ParsePublicPredictions is ParsePredictions for what a researcher
// submits: only the public test rows' ids are known, so a sealed row's id
// gets the same error as an id that does not exist (an error must not tell
// a researcher which rows are sealed).
func ParsePublicPredictions(name, seed string, r io.Reader, tb *testbed.Testbed) (Predictions, error) {
	return parsePredictions(name, seed, r, tb, tb.PublicTest())
}

func parsePredictions(name, seed string, r io.Reader, tb *testbed.Testbed, rows []testbed.Row) (Predictions, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPredictionBytes+1))
	if err != nil {
		return Predictions{}, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxPredictionBytes {
		return Predictions{}, jsonl.Errorf(name, 0, "", "check you gave the right file", "input is over the %s limit", jsonl.HumanBytes(MaxPredictionBytes))
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return Predictions{}, jsonl.Errorf(name, 0, "", "write one {\"id\", \"label\"} object per line, or a JSON array of class indexes", "no predictions")
	}
	p := Predictions{Seed: seed, Labels: map[string]int{}}
	if trimmed[0] == '[' {
		return p, parseArray(name, data, tb, &p)
	}
	return p, parseJSONL(name, data, tb, rows, &p)
}

func parseArray(name string, data []byte, tb *testbed.Testbed, p *Predictions) error {
	m := &tb.Manifest
	test := tb.PublicTest()
	// Fast path: a plain array of small non-negative integers, scanned by
	// hand (encoding/json costs ten times more on large submissions).
	if vals, ok := scanIntArray(data); ok && len(vals) == len(test) {
		valid := true
		for _, v := range vals {
			if v >= len(m.Classes) {
				valid = false
				break
			}
		}
		if valid {
			for i, v := range vals {
				p.Labels[test[i].ID] = v
			}
			return nil
		}
	}
	// Slow path, with a precise error for whatever is wrong.
	if !utf8.Valid(data) {
		return jsonl.Errorf(name, 0, "", "re-encode the file as UTF-8", "input is not valid UTF-8")
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(data, &arr); err != nil {
		msg := "invalid JSON array"
		var se *json.SyntaxError
		switch {
		case strings.Contains(err.Error(), "unexpected end"):
			msg = "truncated JSON array (the input ends inside it)"
		case errors.As(err, &se):
			msg = fmt.Sprintf("invalid JSON array at byte %d: %s", se.Offset, se.Error())
		}
		return jsonl.Errorf(name, 0, "", "write a JSON array of class indexes", "%s", msg)
	}
	if len(arr) != len(test) {
		return jsonl.Errorf(name, 0, "", fmt.Sprintf("give one class index per row of the public test.jsonl (%d rows), in its order, or use JSONL with ids", len(test)),
			"array has %d predictions", len(arr))
	}
	for i, raw := range arr {
		c, err := testbed.ClassOf(m, raw)
		if err != nil {
			return jsonl.Errorf(name, 0, fmt.Sprintf("[%d]", i), m.PredictionEncoding(), "%v", err)
		}
		p.Labels[test[i].ID] = c
	}
	return nil
}

// scanIntArray parses "[d, d, ...]" of non-negative decimal integers below
// 1,000,000; anything else reports false.
func scanIntArray(b []byte) ([]int, bool) {
	i := 0
	skip := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
			i++
		}
	}
	skip()
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	i++
	out := make([]int, 0, len(b)/2)
	skip()
	if i < len(b) && b[i] == ']' {
		i++
		skip()
		return out, i == len(b)
	}
	for {
		skip()
		start, v := i, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 6 {
			v = v*10 + int(b[i]-'0')
			i++
		}
		if i == start || (i-start > 1 && b[start] == '0') || (i < len(b) && b[i] >= '0' && b[i] <= '9') {
			return nil, false
		}
		out = append(out, v)
		skip()
		if i >= len(b) {
			return nil, false
		}
		if b[i] == ']' {
			i++
			skip()
			return out, i == len(b)
		}
		if b[i] != ',' {
			return nil, false
		}
		i++
	}
}

func parseJSONL(name string, data []byte, tb *testbed.Testbed, rows []testbed.Row, p *Predictions) error {
	m := &tb.Manifest
	lines, err := jsonl.Read(name, bytes.NewReader(data), jsonl.Limits{FileBytes: MaxPredictionBytes})
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(rows))
	for _, r := range rows {
		known[r.ID] = true
	}
	first := map[string]int{}
	for _, ln := range lines {
		for k := range ln.Fields {
			if k != "id" && k != "label" {
				return jsonl.Errorf(name, ln.Num, k, `write only "id" and "label" on each line`, "unknown field")
			}
		}
		raw, ok := ln.Fields["id"]
		if !ok {
			return jsonl.Errorf(name, ln.Num, "id", "give every line the id of a test row", "missing")
		}
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			var n json.Number
			if json.Unmarshal(raw, &n) != nil {
				return jsonl.Errorf(name, ln.Num, "id", "use the ids from the public test.jsonl", "is not a string or a number")
			}
			id = n.String()
		}
		if !known[id] {
			return jsonl.Errorf(name, ln.Num, "id", "use the ids from the public test.jsonl", "no test row has this id")
		}
		if prev, dup := first[id]; dup {
			return jsonl.Errorf(name, ln.Num, "id", "give each test row one prediction", "duplicate id (first on line %d)", prev)
		}
		first[id] = ln.Num
		c, err := testbed.ClassOf(m, ln.Fields["label"])
		if err != nil {
			return jsonl.Errorf(name, ln.Num, "label", m.PredictionEncoding(), "%v", err)
		}
		p.Labels[id] = c
	}
	return nil
}
