package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aar-lab/aar/internal/forum"
)

type shareParams struct {
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Family     string            `json:"family"`
	Body       string            `json:"body"`
	Metrics    json.RawMessage   `json:"metrics"`
	Config     json.RawMessage   `json:"config"`
	Worked     *bool             `json:"worked"`
	Submission string            `json:"submission"`
	Card       *forum.MethodCard `json:"card"`
}

func shareFindingTool() Tool {
	return &typed[shareParams]{
		name: "share_finding",
		desc: "Post a finding to the campaign's forum: a hypothesis, an insight, an error (what failed and why), or a result. A result cites a submission with ≥ 5 seeds (default: your last submission), snapshots your /workspace automatically, and needs a method card (summary, pseudocode, components each with the ablation that shows it matters, inputs used). Family is one of: " + strings.Join(forum.Families, ", ") + ".",
		schema: `{"type": "object", "properties": {
  "type": {"type": "string", "enum": ["result", "hypothesis", "insight", "error"]},
  "title": {"type": "string"}, "family": {"type": "string"}, "body": {"type": "string", "description": "markdown"},
  "metrics": {"type": "object"}, "config": {"type": "object", "description": "what someone needs to re-run it"},
  "worked": {"type": "boolean"}, "submission": {"type": "string"},
  "card": {"type": "object", "properties": {"summary": {"type": "string"}, "pseudocode": {"type": "string"},
    "components": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "ablation": {"type": "string"}}, "required": ["name", "ablation"]}},
    "inputs": {"type": "array", "items": {"type": "string", "enum": ["weak labels", "strong representation", "test inputs"]}}}}},
 "required": ["type", "title", "family", "body"], "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p shareParams) (Output, error) {
			f := forum.Finding{Type: p.Type, Title: p.Title, Family: p.Family, Body: p.Body, Metrics: p.Metrics, Config: p.Config,
				Worked: p.Worked, Submission: p.Submission, Card: p.Card}
			if p.Type == "result" {
				if f.Submission == "" {
					sub, seeds, _ := env.last()
					if sub == "" || seeds < 5 {
						return Output{}, Mistake("a result cites a submission with at least 5 seeds: submit 5 seeds first (or name one in submission)")
					}
					f.Submission = sub
				}
				meta, err := pushWorkspace(ctx, env)
				if err != nil {
					return Output{}, err
				}
				f.Snapshot, _ = meta["id"].(string)
			}
			// The same finding posted again (a worker resumed after a crash
			// replays its steps) is the same finding: the key is its content.
			key, err := json.Marshal(f)
			if err != nil {
				return Output{}, err
			}
			sum := sha256.Sum256(append([]byte(env.Researcher+"\x00"), key...))
			raw, err := env.Lab.PostFindingIdem(ctx, f, "finding-"+hex.EncodeToString(sum[:16]))
			if err != nil {
				return Output{}, err
			}
			var got forum.Finding
			if err := json.Unmarshal(raw, &got); err != nil || got.ID == "" {
				return Output{}, fmt.Errorf("lab answer has no finding id")
			}
			return Output{Text: fmt.Sprintf("posted %s %s: %s", got.Type, got.ID, got.Title),
				Data: map[string]any{"finding": got.ID, "type": got.Type, "submission": got.Submission, "snapshot": got.Snapshot}}, nil
		},
	}
}

type searchParams struct {
	Query string `json:"query"`
	Since int64  `json:"since"`
	Limit int    `json:"limit"`
}

func searchFindingsTool() Tool {
	return &typed[searchParams]{
		name: "search_findings",
		desc: "Search the campaign's forum (full text, ranked); with no query, list findings after the cursor `since` (oldest first). Results carry ids, authors, types, families, metrics, configs, submissions and snapshots.",
		schema: `{"type": "object", "properties": {"query": {"type": "string"}, "since": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1, "maximum": 100}},
 "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p searchParams) (Output, error) {
			limit := p.Limit
			if limit <= 0 {
				limit = 20
			}
			var raw json.RawMessage
			var err error
			if strings.TrimSpace(p.Query) == "" {
				raw, err = env.Lab.ListFindings(ctx, p.Since, limit)
			} else {
				raw, err = env.Lab.SearchFindings(ctx, p.Query, limit)
			}
			if err != nil {
				return Output{}, err
			}
			var v any
			_ = json.Unmarshal(raw, &v)
			return Output{Text: jsonText(v)}, nil
		},
	}
}

type noParams struct{}

func leaderboardTool() Tool {
	return &typed[noParams]{
		name:   "get_leaderboard",
		desc:   "The campaign's leaderboard: the fixed weak and ceiling accuracies (PGR 0 and 1) on the feedback split, each researcher's and each method family's best result by released feedback PGR, and each researcher's best submission.",
		schema: `{"type": "object", "properties": {}, "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, _ noParams) (Output, error) {
			raw, err := env.Lab.Leaderboard(ctx)
			if err != nil {
				return Output{}, err
			}
			var v any
			_ = json.Unmarshal(raw, &v)
			return Output{Text: jsonText(v)}, nil
		},
	}
}
