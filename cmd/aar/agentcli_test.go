package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeOpenAI is an upstream OpenAI-compatible provider: it answers chat
// completions (JSON or a stream, with usage) only to the real key.
func fakeOpenAI(t *testing.T, key string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error": {"message": "bad key", "type": "invalid_request_error"}}`)
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
			http.NotFound(w, r)
			return
		}
		calls.Add(1)
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id": "c1", "object": "chat.completion", "created": 1, "model": %q, "choices": [{"index": 0, "message": {"role": "assistant", "content": "logconf"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1200, "completion_tokens": 3, "total_tokens": 1203}}`, req.Model)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, part := range []string{"it ", "sharpens ", "the teacher"} {
			fmt.Fprintf(w, "data: {\"id\": \"c2\", \"object\": \"chat.completion.chunk\", \"created\": 1, \"model\": %q, \"choices\": [{\"index\": 0, \"delta\": {\"content\": %q}}]}\n\n", req.Model, part)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "data: {\"id\": \"c2\", \"object\": \"chat.completion.chunk\", \"created\": 1, \"model\": %q, \"choices\": [{\"index\": 0, \"delta\": {}, \"finish_reason\": \"stop\"}]}\n\n", req.Model)
		fmt.Fprintf(w, "data: {\"id\": \"c2\", \"object\": \"chat.completion.chunk\", \"created\": 1, \"model\": %q, \"choices\": [], \"usage\": {\"prompt_tokens\": 40, \"completion_tokens\": 5, \"total_tokens\": 45}}\n\n", req.Model)
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// TestAgentCLICampaign runs a campaign whose researchers are an external
// agent program (a scripted agent speaking MCP through `aar mcp` and the
// OpenAI wire format through the lab's metering proxy) in real sandboxes,
// end to end, and checks that the real model key reached no sandbox file,
// environment or transcript.
func TestAgentCLICampaign(t *testing.T) {
	needSandbox(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	const realKey = "sk-real-key-that-must-stay-in-the-lab-7f3a9c"
	upstream, calls := fakeOpenAI(t, realKey)
	data := runData(t)
	bin := buildAar(t)
	agentDir, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "agents", "scripted"))
	prices := filepath.Join(t.TempDir(), "prices.json")
	os.WriteFile(prices, []byte(`{"gpt-test": {"input": 2.5, "output": 10}}`), 0o644)
	cmd := exec.Command(bin, "run", "--data", data, "--testbed", "toy", "--researchers", "2", "--name", "ext",
		"--backend", "agent-cli", "--agent-command", "python3 agent.py", "--agent-files", agentDir,
		"--no-baselines", "--verify-top", "0", "--budget-usd", "2", "--json")
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY="+realKey, "OPENAI_BASE_URL="+upstream.URL+"/v1", "ANTHROPIC_API_KEY=", "AAR_PRICES="+prices)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aar run: %v\n%s", err, stderr.String())
	}
	if calls.Load() != 4 {
		t.Errorf("the upstream got %d calls, want 4 (2 researchers × 2)\n%s", calls.Load(), stderr.String())
	}
	evs := campaignEvents(t, bin, data, "ext")
	subs, results, proxied, envDumps := map[string]int{}, map[string]int{}, map[string]int{}, 0
	var cost float64
	for _, e := range evs {
		if strings.Contains(string(e.Body), realKey) {
			t.Errorf("ledger event %d (%s) holds the real key", e.Seq, e.Kind)
		}
		switch e.Kind {
		case "submission.accepted":
			subs[e.Actor]++
		case "finding.posted":
			if strings.Contains(string(e.Body), `"type":"result"`) {
				results[e.Actor]++
			}
		case "transcript":
			var te struct {
				Type    string  `json:"type"`
				CostUSD float64 `json:"cost_usd"`
			}
			json.Unmarshal(e.Body, &te)
			if strings.HasPrefix(te.Type, "model_") {
				proxied[e.Actor]++
			}
			cost += te.CostUSD
		}
		if os.Getenv("AAR_DEBUG_AGENT") != "" && (e.Kind == "finding.posted" || strings.Contains(string(e.Body), "agent_exit")) {
			t.Logf("%s %s", e.Kind, e.Body)
		}
		if strings.Contains(string(e.Body), "OPENAI_BASE_URL") && strings.Contains(string(e.Body), "env: ") {
			envDumps++
		}
	}
	if len(proxied) != 2 {
		t.Errorf("model calls were metered for %d researchers (%v), want 2", len(proxied), proxied)
	}
	for r := range proxied {
		if subs[r] == 0 || results[r] == 0 || proxied[r] == 0 {
			t.Errorf("%s: %d submissions, %d results, %d proxied model events; want each ≥ 1\n%s", r, subs[r], results[r], proxied[r], stderr.String())
		}
	}
	if envDumps < 2 {
		t.Errorf("the agents' environments were not recorded (%d dumps): the leak check saw nothing", envDumps)
	}
	if cost <= 0 {
		t.Errorf("the proxy metered no cost")
	}
	// No file in the data directory (sandboxes, workspaces, views,
	// snapshots, logs) holds the key.
	filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(realKey)) {
			t.Errorf("%s holds the real key", p)
		}
		return nil
	})
	if strings.Contains(stdout.String()+stderr.String(), realKey) {
		t.Error("aar run printed the real key")
	}
}
