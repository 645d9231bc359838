package agent

import "context"

func budgetTool() Tool {
	return &typed[noParams]{
		name:   "budget",
		desc:   "What you have spent and have left: dollars, tokens, wall-clock time, tool calls, model calls and sandbox CPU time.",
		schema: `{"type": "object", "properties": {}, "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, _ noParams) (Output, error) {
			st := env.Meter.Status()
			return Output{Text: jsonText(st)}, nil
		},
	}
}
