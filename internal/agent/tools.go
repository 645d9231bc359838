package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/llm"
)

// Tool is one thing the model can do. Run returns the text the model gets
// back; an error made with Mistake (or a *labclient.Error with a 4xx
// status) is the model's to fix and goes back as an error result, any other
// error means the researcher's environment is broken and stops it.
type Tool interface {
	Def() llm.Tool
	Run(ctx context.Context, env *Env, input json.RawMessage) (Output, error)
}

// Output is a tool's answer: Text for the model and Data, structured and
// small, for the transcript (ids of submissions, findings, snapshots).
type Output struct {
	Text string
	Data map[string]any
}

// MistakeError is a tool error the model should fix.
type MistakeError struct{ Msg string }

func (e *MistakeError) Error() string { return e.Msg }

// Mistake returns an error result for the model.
func Mistake(format string, args ...any) error {
	return &MistakeError{Msg: fmt.Sprintf(format, args...)}
}

// isMistake reports whether err is the model's to fix: a Mistake, or the
// lab refusing a request (4xx).
func isMistake(err error) bool {
	var m *MistakeError
	if errors.As(err, &m) {
		return true
	}
	var le *labclient.Error
	return errors.As(err, &le) && le.Status >= 400 && le.Status < 500 && le.Status != 401
}

// typed is a tool with a typed parameter struct P, decoded strictly from
// the model's input (unknown fields are a mistake the model sees).
type typed[P any] struct {
	name, desc string
	schema     string
	run        func(ctx context.Context, env *Env, p P) (Output, error)
}

func (t *typed[P]) Def() llm.Tool {
	return llm.Tool{Name: t.name, Description: t.desc, Schema: json.RawMessage(t.schema)}
}

func (t *typed[P]) Run(ctx context.Context, env *Env, input json.RawMessage) (Output, error) {
	var p P
	if len(bytes.TrimSpace(input)) == 0 {
		input = json.RawMessage(`{}`)
	}
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Output{}, Mistake("invalid input for %s: %v; the input schema is %s", t.name, err, compactSchema(t.schema))
	}
	return t.run(ctx, env, p)
}

func compactSchema(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return s
	}
	return b.String()
}

// Toolbox is the tools a researcher has, by name.
type Toolbox struct {
	byName map[string]Tool
	order  []string
}

// NewToolbox returns the standard tools; consult is included only when
// withConsult.
func NewToolbox(withConsult bool) *Toolbox { return newToolbox(withConsult, SharingSync) }

// Sharing conditions (the study compared ways of sharing findings).
const (
	SharingSync   = "sync"   // forum copy at /shared, search, leaderboard, digests
	SharingSearch = "search" // no /shared copy: findings only through search_findings
	SharingNone   = "none"   // researchers post but cannot read each other
)

func newToolbox(withConsult bool, sharing string) *Toolbox {
	tb := &Toolbox{byName: map[string]Tool{}}
	for _, t := range []Tool{
		bashTool(), readFileTool(), writeFileTool(), editFileTool(), listFilesTool(),
		submitTool(), shareFindingTool(), searchFindingsTool(), leaderboardTool(),
		pushSnapshotTool(), pullSnapshotTool(), notebookTool(), budgetTool(),
	} {
		if sharing == SharingNone && (t.Def().Name == "search_findings" || t.Def().Name == "get_leaderboard") {
			continue
		}
		tb.add(t)
	}
	if withConsult {
		tb.add(consultTool())
	}
	return tb
}

func (tb *Toolbox) add(t Tool) {
	name := t.Def().Name
	tb.byName[name] = t
	tb.order = append(tb.order, name)
}

// Defs are the tool definitions, in a stable order (the cached prefix).
func (tb *Toolbox) Defs() []llm.Tool {
	out := make([]llm.Tool, 0, len(tb.order))
	for _, n := range tb.order {
		out = append(out, tb.byName[n].Def())
	}
	return out
}

// Names lists the tools.
func (tb *Toolbox) Names() []string { return append([]string(nil), tb.order...) }

// Get returns a tool by name.
func (tb *Toolbox) Get(name string) (Tool, bool) {
	t, ok := tb.byName[name]
	return t, ok
}

func (tb *Toolbox) unknown(name string) error {
	names := append([]string(nil), tb.order...)
	sort.Strings(names)
	return Mistake("there is no tool %q; the tools are: %s", name, strings.Join(names, ", "))
}

// capText keeps the head and tail of s within max bytes, saying how much
// was cut.
func capText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	head := max * 2 / 3
	tail := max - head
	for head > 0 && !utf8Start(s[head]) {
		head--
	}
	t := len(s) - tail
	for t < len(s) && !utf8Start(s[t]) {
		t++
	}
	return s[:head] + fmt.Sprintf("\n[… %d bytes cut …]\n", t-head) + s[t:]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func jsonText(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
