package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/aar-lab/aar/internal/labclient"
)

type submitParams struct {
	Files []string `json:"files"`
	Note  string   `json:"note"`
}

func submitTool() Tool {
	return &typed[submitParams]{
		name: "submit_predictions",
		desc: "Submit test predictions to the lab's scorer: one file per seed (JSONL {\"id\", \"label\"} lines as `aar w2s train` writes, or a JSON array in the public test order; a file's base name is its seed, e.g. preds/42.jsonl). Your /workspace is snapshotted with it. The answer is what the campaign's feedback policy releases (feedback-split accuracy and PGR, mean ± SE over seeds). Submissions are limited per hour; a result finding needs a submission with at least 5 seeds.",
		schema: `{"type": "object", "properties": {
  "files": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 16, "description": "predictions files in /workspace, one per seed"},
  "note": {"type": "string", "description": "what this submission is"}},
 "required": ["files"], "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p submitParams) (Output, error) {
			if len(p.Files) == 0 {
				return Output{}, Mistake("files is empty: give one predictions file per seed")
			}
			sub := labclient.Submission{Seeds: map[string]json.RawMessage{}, Note: p.Note}
			h := sha256.New()
			files := append([]string(nil), p.Files...)
			sort.Strings(files)
			for _, f := range files {
				wp, err := workspacePath(f)
				if err != nil {
					return Output{}, err
				}
				b, err := env.Sandbox.ReadFile(wp)
				if err != nil {
					return Output{}, Mistake("cannot read %s: %v", f, err)
				}
				seed := strings.TrimSuffix(path.Base(wp), path.Ext(wp))
				if _, dup := sub.Seeds[seed]; dup {
					return Output{}, Mistake("two files are seed %q: name each file after its seed", seed)
				}
				raw, err := labclient.PredictionsJSON(b)
				if err != nil {
					return Output{}, Mistake("%s: %v", f, err)
				}
				sub.Seeds[seed] = raw
				h.Write([]byte(seed + "\x00"))
				h.Write(b)
			}
			meta, err := pushWorkspace(ctx, env)
			if err != nil {
				return Output{}, err
			}
			sub.Snapshot, _ = meta["id"].(string)
			if pos := env.position(); pos > 0 {
				sub.Note = strings.TrimSpace(fmt.Sprintf("%s [transcript %d]", sub.Note, pos))
			}
			raw, err := env.Lab.Submit(ctx, sub, hex.EncodeToString(h.Sum(nil))[:32])
			if err != nil {
				return Output{}, err
			}
			var resp struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &resp); err != nil || resp.ID == "" {
				return Output{}, fmt.Errorf("lab answer has no submission id")
			}
			env.setSubmission(resp.ID, len(sub.Seeds))
			var v any
			_ = json.Unmarshal(raw, &v)
			return Output{Text: jsonText(v), Data: map[string]any{"submission": resp.ID, "snapshot": sub.Snapshot, "seeds": len(sub.Seeds)}}, nil
		},
	}
}
