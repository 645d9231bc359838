package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/forum/sqlite"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/llm"
	"github.com/aar-lab/aar/internal/sandbox"
	ledger "github.com/aar-lab/aar/internal/store/sqlite"
	"github.com/aar-lab/aar/internal/testbed"
)

const fixture = "../testbed/testdata/study"

// testLab is a real lab (SQLite ledger and forum, the study fixture's chat
// testbed) on an httptest server; it returns a client for researcher
// "alice" and one for the admin.
func testLab(t *testing.T) (alice, admin *labclient.Client) {
	t.Helper()
	dir := t.TempDir()
	tbs, err := testbed.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(7)
	if _, err := tbs.Import(filepath.Join(fixture, "labeled_data", "chat"), testbed.ImportOptions{Name: "chat", Cache: filepath.Join(fixture, "cache_results"), SplitSeed: &seed}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := ledger.Open(ctx, filepath.Join(dir, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := sqlite.Open(ctx, filepath.Join(dir, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	l, adminTok, err := lab.New(ctx, lab.Config{DataDir: dir, Ledger: db, Forum: fs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.Handler())
	t.Cleanup(func() { srv.Close(); fs.Close(); db.Close() })
	if _, err := l.CreateCampaign(ctx, lab.Campaign{ID: "c1", Testbed: "chat", Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	tok, err := l.CreateToken(ctx, "alice", "c1")
	if err != nil {
		t.Fatal(err)
	}
	alice, _ = labclient.New(srv.URL, tok)
	admin, _ = labclient.New(srv.URL, adminTok)
	return alice, admin
}

// memSandbox stands in for a sandbox in the loop's own tests (the tools
// against a real bubblewrap sandbox are tested in cmd/aar): files in
// memory, every shell command "succeeds" using one second of CPU.
type memSandbox struct {
	mu    sync.Mutex
	files map[string][]byte
	cmds  []string
}

func newMem() *memSandbox { return &memSandbox{files: map[string][]byte{}} }

func (m *memSandbox) ID() string { return "mem" }
func (m *memSandbox) Exec(ctx context.Context, req sandbox.ExecRequest) (*sandbox.ExecResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(req.Argv) == 2 && req.Argv[0] == "cat" && req.Argv[1] == "/data/testbed.json" {
		return &sandbox.ExecResult{Stdout: []byte(`{"name": "chat", "kind": "comparison", "classes": ["A", "B"]}`)}, nil
	}
	if len(req.Argv) > 0 {
		return &sandbox.ExecResult{ExitCode: 1}, nil
	}
	m.cmds = append(m.cmds, req.Shell)
	if strings.HasPrefix(req.Shell, "cd /workspace && find") {
		var out []byte
		for p, b := range m.files {
			out = append(out, fmt.Sprintf("644 %d %s\x00", len(b), p)...)
		}
		return &sandbox.ExecResult{Stdout: out}, nil
	}
	return &sandbox.ExecResult{Stdout: []byte("ok\n"), CPU: time.Second, Duration: time.Millisecond}, nil
}
func (m *memSandbox) WriteFile(p string, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[p] = append([]byte(nil), b...)
	return nil
}
func (m *memSandbox) ReadFile(p string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[p]
	if !ok {
		return nil, fmt.Errorf("no such file %s", p)
	}
	return b, nil
}
func (m *memSandbox) Warnings() []string                { return nil }
func (m *memSandbox) Destroy(ctx context.Context) error { return nil }

func script(t *testing.T, lines ...string) *llm.Scripted {
	t.Helper()
	turns, err := llm.ParseScript([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return llm.NewScripted(turns)
}

func bashTurn(cmd string, in, out int) string {
	return fmt.Sprintf(`{"calls": [{"name": "bash", "input": {"command": %q}}], "usage": {"input_tokens": %d, "output_tokens": %d}}`, cmd, in, out)
}

func runWith(t *testing.T, cl *labclient.Client, be llm.Backend, mutate func(*Config)) (*Summary, *Researcher) {
	t.Helper()
	prices := llm.DefaultPrices()
	prices["test-model"] = llm.Price{Input: 3, Output: 15}
	cfg := Config{Researcher: "alice", Testbed: "chat", Direction: "try things", Backend: be, Model: "test-model",
		Prices: prices, Lab: cl, Sandbox: newMem(), MaxTokens: 1000}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sum, r
}

// A dollar budget stops the researcher before a call whose worst case
// could exceed it; when the provider reports more than the estimate, the
// overrun is at most that one call.
func TestDollarBudget(t *testing.T) {
	alice, _ := testLab(t)
	var turns []string
	for i := range 20 {
		turns = append(turns, bashTurn(fmt.Sprintf("echo %d", i), 10_000, 1_000))
	}
	// Each call costs 10k × $3/M + 1k × $15/M = $0.045.
	sum, _ := runWith(t, alice, script(t, turns...), func(c *Config) { c.Budget.USD = 0.10 })
	if !strings.HasPrefix(sum.Reason, "dollar budget") {
		t.Fatalf("reason %q", sum.Reason)
	}
	spent := sum.Status.Spent.USD
	if spent > 0.10 || spent < 0.10-2*0.045 || sum.Status.Spent.ModelCalls != 2 {
		t.Errorf("spent $%.4f in %d calls under a $0.10 budget (want 2 calls, $0.09)", spent, sum.Status.Spent.ModelCalls)
	}

	// The first call is far larger than its estimate: one call over, then stop.
	alice2, _ := testLab(t)
	sum, _ = runWith(t, alice2, script(t, bashTurn("ls", 100_000, 1_000), bashTurn("ls -l", 10, 10)), func(c *Config) { c.Budget.USD = 0.10 })
	if sum.Status.Spent.ModelCalls != 1 || !strings.HasPrefix(sum.Reason, "dollar budget") {
		t.Errorf("after an oversized call: %d calls, reason %q", sum.Status.Spent.ModelCalls, sum.Reason)
	}
	if over := sum.Status.Spent.USD - 0.10; over > 0.315 {
		t.Errorf("overran by $%.3f, more than the one call", over)
	}
}

func TestOtherBudgetsAndStops(t *testing.T) {
	alice, _ := testLab(t)
	t.Run("tokens", func(t *testing.T) {
		sum, _ := runWith(t, alice, script(t, bashTurn("a", 3000, 500), bashTurn("b", 3000, 500), bashTurn("c", 3000, 500)),
			func(c *Config) { c.Budget.Tokens = 8000 })
		if !strings.HasPrefix(sum.Reason, "token budget") || sum.Status.Spent.Usage.Total() > 8000 {
			t.Errorf("reason %q, tokens %d", sum.Reason, sum.Status.Spent.Usage.Total())
		}
	})
	t.Run("tool calls", func(t *testing.T) {
		two := `{"calls": [{"name": "bash", "input": {"command": "x"}}, {"name": "bash", "input": {"command": "y"}}], "usage": {}}`
		sum, _ := runWith(t, alice, script(t, two, two, two), func(c *Config) { c.Budget.ToolCalls = 3 })
		if sum.Status.Spent.ToolCalls != 3 || !strings.Contains(sum.Reason, "tool-call budget") {
			t.Errorf("tool calls %d, reason %q", sum.Status.Spent.ToolCalls, sum.Reason)
		}
	})
	t.Run("cpu", func(t *testing.T) {
		sum, _ := runWith(t, alice, script(t, bashTurn("a", 1, 1), bashTurn("b", 1, 1), bashTurn("c", 1, 1)), func(c *Config) { c.Budget.CPU = 2 * time.Second })
		if sum.Status.Spent.ToolCalls != 2 || !strings.Contains(sum.Reason, "sandbox CPU budget") {
			t.Errorf("tool calls %d, reason %q", sum.Status.Spent.ToolCalls, sum.Reason)
		}
	})
	t.Run("repeated call", func(t *testing.T) {
		sum, _ := runWith(t, alice, script(t, bashTurn("same", 1, 1), bashTurn("same", 1, 1), bashTurn("same", 1, 1), bashTurn("other", 1, 1)), nil)
		if !strings.Contains(sum.Reason, "same bash call came 3 times") || sum.Status.Spent.ToolCalls != 2 {
			t.Errorf("reason %q after %d tool calls", sum.Reason, sum.Status.Spent.ToolCalls)
		}
	})
	t.Run("refusal", func(t *testing.T) {
		sum, _ := runWith(t, alice, script(t, `{"text": "I can't help with that.", "stop": "refusal", "usage": {}}`, bashTurn("a", 1, 1)), nil)
		if !strings.HasPrefix(sum.Reason, "the model refused") {
			t.Errorf("reason %q", sum.Reason)
		}
	})
	t.Run("max tokens and nudges", func(t *testing.T) {
		s := script(t, `{"text": "a long answer that", "stop": "max_tokens", "usage": {}}`, `{"text": "I think I am done.", "usage": {}}`, `{"text": "Really done.", "usage": {}}`)
		sum, _ := runWith(t, alice, s, func(c *Config) { c.Nudges = 1 })
		reqs := s.Requests()
		if sum.Reason != "the researcher finished" || len(reqs) != 3 {
			t.Fatalf("reason %q after %d calls", sum.Reason, len(reqs))
		}
		last := func(i int) string { m := reqs[i].Messages; return m[len(m)-1].TextOf() }
		if !strings.Contains(last(1), "cut off at the 1000-token output limit") || !strings.Contains(last(2), "You still have budget") {
			t.Errorf("follow-ups: %q / %q", last(1), last(2))
		}
	})
}

// When the context fills, a fresh session starts from the notebook and a
// digest of findings posted since.
func TestFreshSession(t *testing.T) {
	alice, _ := testLab(t)
	s := script(t,
		`{"calls": [{"name": "notebook", "input": {"action": "append", "text": "NOTE-7: logconf looked promising"}}, {"name": "share_finding", "input": {"type": "insight", "title": "weak labels are noisy at the boundary", "family": "data filtering", "body": "seen in a histogram"}}], "usage": {"input_tokens": 4500, "output_tokens": 10}}`,
		bashTurn("ls", 100, 10))
	sum, _ := runWith(t, alice, s, func(c *Config) { c.ContextTokens = 5000 })
	reqs := s.Requests()
	if sum.Sessions != 2 || len(reqs) < 2 {
		t.Fatalf("%d sessions, %d calls", sum.Sessions, len(reqs))
	}
	first := reqs[1].Messages
	if len(first) != 1 {
		t.Fatalf("the fresh session starts with %d messages", len(first))
	}
	text := first[0].TextOf()
	for _, want := range []string{"session 2", "NOTE-7: logconf looked promising", "weak labels are noisy at the boundary", "context reached 4500 of 5000"} {
		if !strings.Contains(text, want) {
			t.Errorf("fresh session message lacks %q:\n%s", want, text)
		}
	}
}

// Mistakes come back as error results; a tool failing for real (the lab
// gone) stops the researcher with an error.
func TestMistakesAndRealErrors(t *testing.T) {
	alice, _ := testLab(t)
	s := script(t, `{"calls": [{"name": "write_file", "input": {"path": "../x", "content": "y"}}, {"name": "read_file", "input": {"path": "nope.txt"}}, {"name": "edit_file", "input": {"path": "a", "old": "", "new": "b"}}, {"name": "bash", "input": {"cmd": "ls"}}], "usage": {}}`,
		`{"text": "done", "usage": {}}`)
	sum, _ := runWith(t, alice, s, func(c *Config) { c.Nudges = -1 })
	if sum.Reason != "the researcher finished" {
		t.Fatalf("reason %q", sum.Reason)
	}
	res := s.Requests()[1].Messages
	var errs []string
	for _, p := range res[len(res)-1].Parts {
		if p.Kind == llm.PartToolResult && p.IsError {
			errs = append(errs, p.Text)
		}
	}
	if len(errs) != 4 || !strings.Contains(errs[0], "leaves /workspace") || !strings.Contains(errs[1], "cannot read nope.txt") ||
		!strings.Contains(errs[2], "old is empty") || !strings.Contains(errs[3], `unknown field "cmd"`) {
		t.Errorf("error results: %q", errs)
	}

	dead, _ := labclient.New("http://127.0.0.1:1", "aar_x")
	r, err := New(context.Background(), Config{Researcher: "alice", Backend: script(t, bashTurn("ls", 1, 1)), Model: "scripted", Lab: dead, Sandbox: newMem()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err == nil {
		t.Error("a lab that is down did not stop the researcher with an error")
	}
}

func TestNewRefusesUnpricedDollarBudget(t *testing.T) {
	alice, _ := testLab(t)
	_, err := New(context.Background(), Config{Researcher: "alice", Backend: script(t, bashTurn("ls", 1, 1)), Model: "my-local-model", Lab: alice, Sandbox: newMem(), Budget: Budget{USD: 1}})
	if err == nil || !strings.Contains(err.Error(), `no price for model "my-local-model"`) {
		t.Errorf("err %v", err)
	}
}

// The built-in researcher is deterministic per seed and its direction
// decides which family it tries first.
func TestBuiltinDeterministic(t *testing.T) {
	calls := func(seed uint64, direction string, n int) []string {
		b := NewBuiltin(BuiltinConfig{Seed: seed, Direction: direction})
		var out []string
		var msgs []llm.Message
		for range n {
			resp, err := b.Complete(context.Background(), llm.Request{Messages: msgs})
			if err != nil {
				t.Fatal(err)
			}
			var results []llm.Part
			for _, c := range resp.Message.ToolCalls() {
				out = append(out, c.Name+" "+string(c.Input))
				text := "exit code 0 in 1s\n"
				if strings.Contains(string(c.Input), "ls /data/weak") {
					for s := 42; s < 58; s++ {
						text += fmt.Sprintf("%d.jsonl\n", s)
					}
				}
				if c.Name == "submit_predictions" {
					text = `{"id": "sub_1", "feedback": {"cells": [{"group": "overall", "pgr": {"mean": 0.4, "se": 0}}]}}`
				}
				results = append(results, llm.ToolResult(c.CallID, text, false))
			}
			msgs = append(msgs, resp.Message, llm.Message{Role: llm.RoleUser, Parts: results})
		}
		return out
	}
	a, b := calls(3, "filter out the weak labels you cannot trust", 12), calls(3, "filter out the weak labels you cannot trust", 12)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Error("the same seed gave different calls")
	}
	joined := strings.Join(a, "\n")
	if !strings.Contains(joined, `"family":"data filtering"`) {
		t.Errorf("a filtering direction did not start with data filtering:\n%s", joined)
	}
	c := calls(4, "filter out the weak labels you cannot trust", 12)
	if strings.Join(a, "\n") == strings.Join(c, "\n") {
		t.Error("another seed gave the same calls")
	}
	// Confirmation seeds are the view's first five, never the screening seed.
	if !strings.Contains(joined, "--seed ") || strings.Contains(joined, "--seed 42 ") {
		t.Errorf("screening used a confirmation seed:\n%s", joined)
	}
	// The first family hypothesis follows the direction.
	for _, call := range a {
		if strings.HasPrefix(call, "share_finding") {
			var in map[string]any
			_ = json.Unmarshal([]byte(strings.TrimPrefix(call, "share_finding ")), &in)
			if in["family"] != "data filtering" {
				t.Errorf("first hypothesis is about %v", in["family"])
			}
			break
		}
	}
}

func TestCapText(t *testing.T) {
	s := strings.Repeat("é", 1000) // 2000 bytes
	c := capText(s, 300)
	if len(c) > 400 || !strings.Contains(c, "bytes cut") || !strings.HasPrefix(c, "é") || !strings.HasSuffix(c, "é") {
		t.Errorf("capText: %d bytes %q", len(c), c[:20])
	}
	if capText("short", 300) != "short" {
		t.Error("capText changed a short text")
	}
}
