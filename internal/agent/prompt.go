package agent

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/aar-lab/aar/internal/w2s"
)

//go:embed prompt.tmpl
var defaultPrompt string

// DefaultPrompt is the built-in system prompt template (text/template);
// `aar researcher --prompt FILE` replaces it.
func DefaultPrompt() string { return defaultPrompt }

// PublicTestbed is the part of a public testbed.json the prompt uses.
type PublicTestbed struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Classes []string `json:"classes"`
	Notes   string   `json:"notes"`
	Source  string   `json:"source"`
}

// PromptData is what the template sees.
type PromptData struct {
	Researcher  string
	Testbed     PublicTestbed
	HasFeatures bool
	Methods     []string
	Direction   string
	Budget      string
	Tools       []string
	// Workflow adds the suggested workflow; Sharing is the sharing
	// condition (sync, search, none).
	Workflow bool
	Sharing  string
}

// ParsePrompt parses a system prompt template, naming what is wrong.
func ParsePrompt(text string) (*template.Template, error) {
	t, err := template.New("prompt").Funcs(template.FuncMap{"join": strings.Join}).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("prompt template: %w", err)
	}
	return t, nil
}

// LoadPrompt reads a template file ("" is the default).
func LoadPrompt(path string) (*template.Template, error) {
	if path == "" {
		return ParsePrompt(defaultPrompt)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePrompt(string(b))
}

// RenderPrompt executes the template.
func RenderPrompt(t *template.Template, d PromptData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("prompt template: %w", err)
	}
	return b.String(), nil
}

// parseManifest reads the public manifest's fields the prompt needs.
func parseManifest(b []byte) (PublicTestbed, error) {
	var t PublicTestbed
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("public testbed.json: %w", err)
	}
	return t, nil
}

func methodNames() []string {
	out := make([]string, len(w2s.Methods))
	for i, m := range w2s.Methods {
		out[i] = m.Name
	}
	return out
}

// String describes the budget's bounded parts ("" when nothing is
// bounded).
func (b Budget) String() string {
	var parts []string
	if b.USD > 0 {
		parts = append(parts, fmt.Sprintf("$%.2f", b.USD))
	}
	if b.Tokens > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens", b.Tokens))
	}
	if b.Wall > 0 {
		parts = append(parts, b.Wall.Round(time.Second).String()+" of wall-clock time")
	}
	if b.CPU > 0 {
		parts = append(parts, b.CPU.Round(time.Second).String()+" of sandbox CPU")
	}
	if b.ToolCalls > 0 {
		parts = append(parts, fmt.Sprintf("%d tool calls", b.ToolCalls))
	}
	return strings.Join(parts, ", ")
}
