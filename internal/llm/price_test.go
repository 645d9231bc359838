package llm

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrices(t *testing.T) {
	p := DefaultPrices()
	pr, ok := p.Lookup("claude-opus-5-5-20260601")
	if !ok || pr.Input != 4 || pr.Output != 20 {
		t.Errorf("opus 5.5 snapshot: %+v %v (the longest prefix must win over claude-opus-5)", pr, ok)
	}
	if pr.CacheRead != 0.4 || pr.CacheWrite != 5 {
		t.Errorf("derived cache prices: %+v", pr)
	}
	if _, ok := p.Lookup("llama-3-70b"); ok {
		t.Error("an unknown model has a price")
	}
	u := Usage{InputTokens: 1_000_000, OutputTokens: 100_000, CacheReadTokens: 2_000_000, CacheWriteTokens: 400_000}
	// 4 + 2 + 0.8 + 2 = 8.8 dollars.
	if got := pr.Cost(u); math.Abs(got-8.8) > 1e-9 {
		t.Errorf("cost %.6f, want 8.8", got)
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "prices.json")
	os.WriteFile(good, []byte(`{"llama-3-70b": {"input": 0, "output": 0}, "claude-opus-5-5": {"input": 3, "output": 15, "cache_read": 0.25}}`), 0o644)
	q, err := LoadPrices(good)
	if err != nil {
		t.Fatal(err)
	}
	if pr, ok := q.Lookup("llama-3-70b"); !ok || pr.Cost(u) != 0 {
		t.Errorf("a free local model: %+v %v", pr, ok)
	}
	if pr, _ := q.Lookup("claude-opus-5-5"); pr.Input != 3 || pr.CacheRead != 0.25 || pr.CacheWrite != 3.75 {
		t.Errorf("override: %+v", pr)
	}
	for body, want := range map[string]string{
		`{"m": {"input": -1, "output": 1}}`: "negative",
		`{"m": {"input": "x"}}`:             "want {",
		`{"": {"input": 1}}`:                "empty model name",
	} {
		bad := filepath.Join(dir, "bad.json")
		os.WriteFile(bad, []byte(body), 0o644)
		if _, err := LoadPrices(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", body, err, want)
		}
	}
}

func TestScripted(t *testing.T) {
	turns, err := ParseScript([]byte("# a comment\n{\"text\": \"hi\", \"usage\": {\"input_tokens\": 5}}\n\n{\"calls\": [{\"name\": \"bash\", \"input\": {\"command\": \"ls\"}}]}\n{\"error\": \"overloaded\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := NewScripted(turns)
	r, err := s.Complete(context.Background(), Request{Model: "m"})
	if err != nil || r.Stop != StopEnd || r.Message.TextOf() != "hi" || r.Usage.InputTokens != 5 {
		t.Fatalf("turn 1: %+v %v", r, err)
	}
	r, _ = s.Complete(context.Background(), Request{})
	if c := r.Message.ToolCalls(); r.Stop != StopToolUse || len(c) != 1 || c[0].Name != "bash" || c[0].CallID == "" {
		t.Fatalf("turn 2: %+v", r)
	}
	var ae *APIError
	if _, err := s.Complete(context.Background(), Request{}); !errors.As(err, &ae) || ae.Message != "overloaded" {
		t.Errorf("turn 3: %v", err)
	}
	if _, err := s.Complete(context.Background(), Request{}); !errors.Is(err, ErrScriptDone) {
		t.Errorf("after the script: %v", err)
	}
	if len(s.Requests()) != 4 || s.Remaining() != 0 {
		t.Errorf("requests %d, remaining %d", len(s.Requests()), s.Remaining())
	}
	for body, want := range map[string]string{
		"{\"text\": \"a\"}\n{\"txt\": \"b\"}": "line 2",
		"":                                    "no turns",
		"{\"calls\": [{\"input\": {}}]}":      "no name",
		"{\"usage\": {\"input_tokens\": -3}}": "negative",
		"[{\"text\": \"a\"}, {\"calls\": [{\"name\": \"\"}]}]": "turn 2",
	} {
		if _, err := ParseScript([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
	}
}
