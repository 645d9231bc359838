package labclient

import (
	"bytes"
	"encoding/json"
	"fmt"
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
