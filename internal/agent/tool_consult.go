package agent

import (
	"context"
	"strings"
)

type consultParams struct {
	Question string `json:"question"`
}

func consultTool() Tool {
	return &typed[consultParams]{
		name:   "consult",
		desc:   "Ask a stronger model (or the same one thinking longer) one self-contained question for hard analysis: paste the figures and code it needs, it sees nothing else. Metered against your budget; use it sparingly.",
		schema: `{"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"], "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p consultParams) (Output, error) {
			if strings.TrimSpace(p.Question) == "" {
				return Output{}, Mistake("question is empty")
			}
			if env.Consult == nil {
				return Output{}, Mistake("consult is not available with this backend")
			}
			ans, err := env.Consult(ctx, p.Question)
			if err != nil {
				return Output{}, err
			}
			return Output{Text: ans}, nil
		},
	}
}
