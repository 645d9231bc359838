package agent

import (
	"context"
	"fmt"
	"strings"
)

type notebookParams struct {
	Action string `json:"action"`
	Text   string `json:"text"`
}

func notebookTool() Tool {
	return &typed[notebookParams]{
		name: "notebook",
		desc: "Your notebook, kept by the lab: your memory across sessions (a fresh session starts from it). action \"append\" adds text (what you tried, what you learned, what to try next); \"read\" returns it all.",
		schema: `{"type": "object", "properties": {"action": {"type": "string", "enum": ["append", "read"]}, "text": {"type": "string"}},
 "required": ["action"], "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p notebookParams) (Output, error) {
			switch p.Action {
			case "append":
				if strings.TrimSpace(p.Text) == "" {
					return Output{}, Mistake("text is empty: say what to write down")
				}
				if err := env.Lab.AppendNotebook(ctx, p.Text); err != nil {
					return Output{}, err
				}
				return Output{Text: fmt.Sprintf("appended %d bytes to your notebook", len(p.Text))}, nil
			case "read":
				text, err := readNotebook(ctx, env)
				if err != nil {
					return Output{}, err
				}
				if text == "" {
					text = "(your notebook is empty)"
				}
				return Output{Text: text}, nil
			default:
				return Output{}, Mistake("action %q: use \"append\" or \"read\"", p.Action)
			}
		},
	}
}

// readNotebook returns the notebook's entries as one text.
func readNotebook(ctx context.Context, env *Env) (string, error) {
	entries, err := env.Lab.Notebook(ctx)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "## %s\n%s\n\n", e.At.UTC().Format("2006-01-02 15:04:05Z"), strings.TrimSpace(e.Text))
	}
	return b.String(), nil
}
