package labclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// PredictionsJSON turns a predictions file into the JSON array a
// submission carries: an array is kept, JSONL lines become an array of
// their objects.
func PredictionsJSON(b []byte) (json.RawMessage, error) {
	t := bytes.TrimSpace(b)
	if bytes.HasPrefix(t, []byte("[")) {
		return t, nil
	}
	var parts [][]byte
	for _, line := range bytes.Split(t, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			parts = append(parts, line)
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("no predictions")
	}
	return append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']'), nil
}

// FeedbackPGR reads the overall PGR (mean and SE over seeds) a submission's
// released feedback carries; ok is false when it released none.
func FeedbackPGR(feedback json.RawMessage) (mean, se float64, ok bool) {
	var f struct {
		Cells []struct {
			Group string `json:"group"`
			PGR   *struct {
				Mean float64 `json:"mean"`
				SE   float64 `json:"se"`
			} `json:"pgr"`
		} `json:"cells"`
	}
	if json.Unmarshal(feedback, &f) != nil {
		return 0, 0, false
	}
	for _, c := range f.Cells {
		if c.Group == "overall" && c.PGR != nil && !math.IsNaN(c.PGR.Mean) {
			return c.PGR.Mean, c.PGR.SE, true
		}
	}
	return 0, 0, false
}
