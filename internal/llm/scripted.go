package llm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
)

// Turn is one scripted model turn: the assistant's parts, its stop reason
// (default tool_use when it calls tools, else end_turn) and the usage to
// report. The short forms Text and Calls are expanded into parts.
type Turn struct {
	Parts []Part     `json:"parts,omitempty"`
	Text  string     `json:"text,omitempty"`
	Calls []Call     `json:"calls,omitempty"`
	Stop  StopReason `json:"stop,omitempty"`
	Usage Usage      `json:"usage"`
	// Error, when set, makes this turn fail with an APIError of that
	// message (to script provider failures).
	Error string `json:"error,omitempty"`
}

// Call is a scripted tool call.
type Call struct {
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// Scripted replays turns in order, one per Complete, whatever the request
// holds; it records every request it was given so tests can inspect them.
type Scripted struct {
	mu       sync.Mutex
	turns    []Turn
	next     int
	requests []Request
}

// NewScripted returns a backend replaying turns.
func NewScripted(turns []Turn) *Scripted { return &Scripted{turns: turns} }

// LoadScript reads a script: JSONL, one Turn per line (blank lines and
// lines starting with # are skipped), or a JSON array of turns.
func LoadScript(path string) (*Scripted, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	turns, err := ParseScript(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return NewScripted(turns), nil
}

// ParseScript parses a script's bytes (see LoadScript).
func ParseScript(b []byte) ([]Turn, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		var turns []Turn
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&turns); err != nil {
			return nil, fmt.Errorf("script: %w", err)
		}
		return turns, checkTurns(turns, nil)
	}
	var turns []Turn
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var t Turn
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			return nil, fmt.Errorf("script line %d: %w (each line is a turn: {\"text\": ..., \"calls\": [{\"name\", \"input\"}], \"usage\": {...}})", n, err)
		}
		turns = append(turns, t)
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return turns, checkTurns(turns, lines)
}

func checkTurns(turns []Turn, lines []int) error {
	if len(turns) == 0 {
		return fmt.Errorf("script has no turns")
	}
	for i, t := range turns {
		where := fmt.Sprintf("turn %d", i+1)
		if lines != nil {
			where = fmt.Sprintf("line %d", lines[i])
		}
		for _, c := range t.Calls {
			if c.Name == "" {
				return fmt.Errorf("script %s: a call has no name", where)
			}
		}
		if t.Usage.InputTokens < 0 || t.Usage.OutputTokens < 0 || t.Usage.CacheReadTokens < 0 || t.Usage.CacheWriteTokens < 0 {
			return fmt.Errorf("script %s: negative token count", where)
		}
	}
	return nil
}

// Name implements Backend.
func (s *Scripted) Name() string { return "scripted" }

// Complete implements Backend: the next turn, or ErrScriptDone.
func (s *Scripted) Complete(ctx context.Context, req Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	if s.next >= len(s.turns) {
		return nil, ErrScriptDone
	}
	t := s.turns[s.next]
	s.next++
	if t.Error != "" {
		return nil, &APIError{Backend: "scripted", Message: t.Error}
	}
	msg := Message{Role: RoleAssistant, Parts: append([]Part(nil), t.Parts...)}
	if t.Text != "" {
		msg.Parts = append(msg.Parts, Text(t.Text))
	}
	for i, c := range t.Calls {
		in := c.Input
		if len(in) == 0 {
			in = json.RawMessage(`{}`)
		}
		msg.Parts = append(msg.Parts, Part{Kind: PartToolCall, CallID: fmt.Sprintf("call_%d_%d", s.next, i), Name: c.Name, Input: in})
	}
	stop := t.Stop
	if stop == "" {
		stop = StopEnd
		if len(msg.ToolCalls()) > 0 {
			stop = StopToolUse
		}
	}
	model := req.Model
	if model == "" {
		model = "scripted"
	}
	return &Response{Message: msg, Stop: stop, Usage: t.Usage, Model: model, Attempts: 1}, nil
}

// Requests returns the requests seen so far.
func (s *Scripted) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Remaining is how many turns are left.
func (s *Scripted) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.turns) - s.next
}
