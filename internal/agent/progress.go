package agent

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/labclient"
)

// SubmissionPoint is one submission a researcher made, read back from its
// transcript: when, how many seeds, and the overall feedback PGR the lab
// released for it (Released false when it released none).
type SubmissionPoint struct {
	Pos        int       `json:"pos"`
	At         time.Time `json:"at"`
	Submission string    `json:"submission"`
	Seeds      int       `json:"seeds"`
	PGR        float64   `json:"pgr"`
	SE         float64   `json:"se"`
	Released   bool      `json:"released"`
	Note       string    `json:"note,omitempty"`
}

// Submissions extracts a researcher's submissions from its transcript
// events (the results of submit_predictions calls, in order).
func Submissions(events []labclient.TranscriptEntry) []SubmissionPoint {
	notes := map[string]string{}
	var out []SubmissionPoint
	for _, e := range events {
		var d struct {
			ID         string          `json:"id"`
			Name       string          `json:"name"`
			Input      string          `json:"input"`
			IsError    bool            `json:"is_error"`
			Text       string          `json:"text"`
			Submission string          `json:"submission"`
			Seeds      int             `json:"seeds"`
			Raw        json.RawMessage `json:"-"`
		}
		if json.Unmarshal(e.Data, &d) != nil || d.Name != "submit_predictions" {
			continue
		}
		switch e.Type {
		case "tool_call":
			var in struct {
				Note string `json:"note"`
			}
			_ = json.Unmarshal([]byte(d.Input), &in)
			notes[d.ID] = in.Note
		case "tool_result":
			if d.IsError || d.Submission == "" {
				continue
			}
			p := SubmissionPoint{Pos: e.Pos, At: e.At, Submission: d.Submission, Seeds: d.Seeds, Note: strings.TrimSpace(notes[d.ID])}
			p.PGR, p.SE, _, p.Released = releasedPGR(d.Text)
			out = append(out, p)
		}
	}
	return out
}
