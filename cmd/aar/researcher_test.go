package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aar-lab/aar/internal/agent"
	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/llm"
	"github.com/aar-lab/aar/internal/sandbox"
	"github.com/aar-lab/aar/internal/sandbox/bwrap"
	"github.com/aar-lab/aar/internal/testbed"
)

// researcherLab installs the toy testbed, starts a real lab (SQLite ledger
// and forum) on a Unix socket, creates campaign c1 and a token for alice,
// and writes the public view. It returns the data dir, the view, the
// socket, the admin token and alice's token.
func researcherLab(t *testing.T) (data, view, sock, admin, tok string) {
	t.Helper()
	src := t.TempDir()
	writeToyTestbed(t, src)
	data = t.TempDir()
	if code, _, errs := aar(t, data, "testbed", "install", "toy", "--from", src, "--seeds", "6"); code != exitOK {
		t.Fatalf("install: %s", errs)
	}
	l, admin := newLab(t, data)
	sock = filepath.Join(t.TempDir(), "lab.sock")
	serveLab(t, l, sock)
	t.Setenv("AAR_LAB", "unix://"+sock)
	t.Setenv("AAR_TOKEN", admin)
	if code, _, errs := aar(t, data, "lab", "campaign", "create", "--id", "c1", "--testbed", "toy"); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := aar(t, data, "lab", "token", "create", "--researcher", "alice", "--campaign", "c1")
	if code != 0 {
		t.Fatal(errs)
	}
	tok = strings.TrimSpace(out)
	view = filepath.Join(t.TempDir(), "view")
	if code, _, errs := aar(t, data, "testbed", "public", "toy", view); code != 0 {
		t.Fatal(errs)
	}
	return data, view, sock, admin, tok
}

// substituting replays a script, replacing $SNAP in tool inputs with the
// last snapshot id a tool result mentioned (a model would read it there).
type substituting struct {
	*llm.Scripted
	snap string
}

var snapRe = regexp.MustCompile(`snap_[A-Za-z0-9_-]+`)

func (s *substituting) Complete(ctx context.Context, req llm.Request) (*llm.Response, error) {
	if n := len(req.Messages); n > 0 {
		for _, p := range req.Messages[n-1].Parts {
			if m := snapRe.FindAllString(p.Text, -1); len(m) > 0 {
				s.snap = m[len(m)-1]
			}
		}
	}
	resp, err := s.Scripted.Complete(ctx, req)
	if err != nil {
		return nil, err
	}
	for i, p := range resp.Message.Parts {
		if p.Kind == llm.PartToolCall {
			resp.Message.Parts[i].Input = json.RawMessage(strings.ReplaceAll(string(p.Input), "$SNAP", s.snap))
		}
	}
	return resp, nil
}

const fakeKey = "sk-ant-api03-FAKE-test-key-0123456789abcdef"

// TestResearcherScriptedSession drives a full session through every tool
// with the scripted backend, against a real lab and a real sandbox, and
// checks the transcript, the ledger, the budget figures, and that no key,
// token or private testbed row appears in the transcript, the sandbox's
// files or environment, or the worker's log.
func TestResearcherScriptedSession(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and trains students")
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)")
	}
	data, view, sock, admin, tok := researcherLab(t)
	bin := buildAar(t)

	seeds := `["preds/42.jsonl","preds/43.jsonl","preds/44.jsonl","preds/45.jsonl","preds/46.jsonl"]`
	script := `
{"text": "First the data.", "calls": [{"name": "bash", "input": {"command": "ls /data; head -c 200 /data/testbed.json"}}, {"name": "list_files", "input": {"path": "/data", "depth": 1}}], "usage": {"input_tokens": 3000, "output_tokens": 120}}
{"calls": [{"name": "write_file", "input": {"path": "notes.md", "content": "plan: vanilla first\n"}}, {"name": "read_file", "input": {"path": "/workspace/notes.md"}}, {"name": "edit_file", "input": {"path": "notes.md", "old": "vanilla first", "new": "vanilla, then logconf"}}], "usage": {"input_tokens": 400, "output_tokens": 200, "cache_read_tokens": 3000}}
{"calls": [{"name": "bash", "input": {"command": "for s in 42 43 44 45 46; do aar w2s train --view /data --seed $s --method logconf --out preds/$s.jsonl 2>/dev/null || exit 1; done; ls preds", "timeout_seconds": 600}}], "usage": {"input_tokens": 500, "output_tokens": 90, "cache_read_tokens": 3400, "cache_write_tokens": 600}}
{"calls": [{"name": "submit_predictions", "input": {"files": ` + seeds + `, "note": "logconf, 5 seeds"}}], "usage": {"input_tokens": 300, "output_tokens": 60, "cache_read_tokens": 4000}}
{"calls": [{"name": "share_finding", "input": {"type": "result", "title": "logconf beats vanilla on toy", "family": "loss function", "body": "logconf on 5 seeds.", "config": {"method": "logconf"}, "card": {"summary": "auxiliary confidence loss", "pseudocode": "aar w2s train --method logconf", "components": [{"name": "logconf loss", "ablation": "vanilla is lower"}], "inputs": ["weak labels", "strong representation"]}}}, {"name": "share_finding", "input": {"type": "hypothesis", "title": "confidence filtering may help too", "family": "data filtering", "body": "to test next"}}], "usage": {"input_tokens": 350, "output_tokens": 400, "cache_read_tokens": 4300}}
{"calls": [{"name": "search_findings", "input": {"query": "logconf"}}, {"name": "search_findings", "input": {}}, {"name": "get_leaderboard", "input": {}}], "usage": {"input_tokens": 300, "output_tokens": 50, "cache_read_tokens": 4700}}
{"calls": [{"name": "push_snapshot", "input": {"message": "after logconf"}}], "usage": {"input_tokens": 900, "output_tokens": 40, "cache_read_tokens": 5000}}
{"calls": [{"name": "pull_snapshot", "input": {"id": "$SNAP", "dir": "copy"}}, {"name": "bash", "input": {"command": "ls copy/preds | wc -l; cat copy/notes.md"}}], "usage": {"input_tokens": 300, "output_tokens": 40, "cache_read_tokens": 5900}}
{"calls": [{"name": "notebook", "input": {"action": "append", "text": "logconf works on toy; try filtering next"}}, {"name": "notebook", "input": {"action": "read"}}, {"name": "budget", "input": {}}], "usage": {"input_tokens": 300, "output_tokens": 80, "cache_read_tokens": 6200}}
{"calls": [{"name": "consult", "input": {"question": "Why would an auxiliary confidence loss help a linear probe?"}}], "usage": {"input_tokens": 250, "output_tokens": 60, "cache_read_tokens": 6500}}
{"parts": [{"kind": "tool_call", "call_id": "bad_json", "name": "bash", "input": "\"{\\\"command\\\": \\\"ls\"", "input_error": "unexpected end of JSON input"}], "calls": [{"name": "rm_everything", "input": {}}, {"name": "bash", "input": {"command": 5}}, {"name": "read_file", "input": {"path": "/etc/passwd"}}, {"name": "bash", "input": {"command": "echo key=` + fakeKey + `"}}], "usage": {"input_tokens": 300, "output_tokens": 150, "cache_read_tokens": 6800}}
{"text": "Done: logconf is my result.", "usage": {"input_tokens": 600, "output_tokens": 30, "cache_read_tokens": 7100}}
`
	turns, err := llm.ParseScript([]byte(script))
	if err != nil {
		t.Fatal(err)
	}
	consultTurns, _ := llm.ParseScript([]byte(`{"text": "It discounts weak labels the student confidently contradicts.", "usage": {"input_tokens": 300, "output_tokens": 100}}`))
	prices := llm.DefaultPrices()
	prices["scripted-main"] = llm.Price{Input: 3, Output: 15}
	prices["scripted-consult"] = llm.Price{Input: 15, Output: 75}
	var want float64
	for _, tn := range turns {
		p, _ := prices.Lookup("scripted-main")
		want += p.Cost(tn.Usage)
	}
	cp, _ := prices.Lookup("scripted-consult")
	want += cp.Cost(consultTurns[0].Usage)

	b := &bwrap.Backend{Root: filepath.Join(t.TempDir(), "sandboxes")}
	shared := t.TempDir()
	sb, err := b.Create(context.Background(), sandbox.Spec{ID: "alice", Data: view, Shared: shared, LabSocket: sock, AarBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy(context.Background())
	cl, err := labclient.New("unix://"+sock, tok)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	r, err := agent.New(context.Background(), agent.Config{
		Researcher: "alice", Testbed: "toy", Direction: "make the loss trust confident weak labels less blindly",
		Backend: &substituting{Scripted: llm.NewScripted(turns)}, Model: "scripted-main",
		Consult: &agent.ConsultConfig{Backend: llm.NewScripted(consultTurns), Model: "scripted-consult"},
		Prices:  prices, Budget: agent.Budget{USD: 1, ToolCalls: 100}, Lab: cl, Sandbox: sb,
		Secrets: []string{tok, fakeKey}, Log: &logBuf, Nudges: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.System(), "make the loss trust confident weak labels less blindly") || !strings.Contains(r.System(), "Kind: classification") {
		t.Errorf("system prompt lacks the direction or the testbed:\n%s", r.System())
	}
	sum, err := r.Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, logBuf.String())
	}
	if sum.Reason != "the researcher finished" || sum.Sessions != 1 || sum.Steps != len(turns) {
		t.Errorf("summary %+v", sum)
	}
	// 24 tool calls in the script; the unknown tool and the malformed input
	// never run, so 22 are metered.
	if got := sum.Status.Spent.ToolCalls; got != 22 {
		t.Errorf("tool calls metered: %d, want 22", got)
	}
	if got := sum.Status.Spent.ModelCalls; got != len(turns)+1 {
		t.Errorf("model calls: %d, want %d (with the consult)", got, len(turns)+1)
	}
	if d := sum.Status.Spent.USD - want; d > 1e-12 || d < -1e-12 {
		t.Errorf("meter: $%.9f, want $%.9f", sum.Status.Spent.USD, want)
	}
	if sum.Status.Spent.CPUSeconds <= 0 {
		t.Errorf("no sandbox CPU time metered")
	}

	// The lab's spend (from the transcript) agrees with the meter.
	sp, err := cl.Spend(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := sp.CostUSD - want; d > 1e-9 || d < -1e-9 || sp.ModelCalls != int64(len(turns)+1) || sp.ToolCalls != 24 {
		t.Errorf("lab spend %+v, want $%.9f, %d model calls, 24 tool calls", sp, want, len(turns)+1)
	}

	// The transcript, read back by an admin, page by page.
	adm, _ := labclient.New("unix://"+sock, admin)
	var events []labclient.TranscriptEntry
	q := labclient.TranscriptQuery{Campaign: "c1", Researcher: "alice", Limit: 7}
	for {
		page, err := adm.Transcript(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, page.Events...)
		if page.Next == nil {
			break
		}
		q.After = page.Next
	}
	types := map[string]int{}
	var submitSeq int64
	var subID, resultFinding string
	var findingPos int64
	results := map[string]map[string]any{}
	for _, e := range events {
		types[e.Type]++
		var d map[string]any
		_ = json.Unmarshal(e.Data, &d)
		switch e.Type {
		case "tool_call":
			if d["name"] == "submit_predictions" {
				submitSeq = e.Seq
			}
		case "tool_result":
			results[fmt.Sprint(d["name"])+fmt.Sprint(d["is_error"])] = d
			if s, ok := d["submission"].(string); ok && d["name"] == "submit_predictions" {
				subID = s
			}
			if f, ok := d["finding"].(string); ok && d["type"] == "result" {
				resultFinding, findingPos = f, e.Seq
			}
		}
	}
	if types["tool_call"] != 24 || types["tool_result"] != 24 || types["usage"] != len(turns)+1 || types["session"] != 1 || types["stop"] != 1 {
		t.Errorf("transcript event types: %v", types)
	}
	if r := results["submit_predictionstrue"]; r != nil {
		t.Errorf("submit_predictions failed: %v\nworker log:\n%s", r["text"], logBuf.String())
	}
	for _, name := range []string{"bash", "read_file", "write_file", "edit_file", "list_files", "submit_predictions", "share_finding",
		"search_findings", "get_leaderboard", "push_snapshot", "pull_snapshot", "notebook", "budget", "consult"} {
		if results[name+"false"] == nil {
			t.Errorf("no successful %s result in the transcript", name)
		}
	}
	for _, name := range []string{"rm_everything", "bash", "read_file"} {
		if results[name+"true"] == nil {
			t.Errorf("no error result for the mistaken %s call", name)
		}
	}
	if r := results["bashfalse"]; r == nil {
		t.Error("no bash result")
	}
	// The submission and the result link back to their transcript position.
	var sub map[string]any
	if _, err := cl.Do(context.Background(), "GET", "/v1/submissions/"+subID, nil, &sub, nil); err != nil {
		t.Fatalf("submission %q: %v", subID, err)
	}
	if note := fmt.Sprint(sub["note"]); !strings.Contains(note, fmt.Sprintf("[transcript %d]", submitSeq)) {
		t.Errorf("submission note %q does not cite transcript position %d", note, submitSeq)
	}
	fraw, err := cl.GetFinding(context.Background(), resultFinding)
	if err != nil || !strings.Contains(string(fraw), subID) {
		t.Errorf("result finding %s: %v %s", resultFinding, err, fraw)
	}
	if resultFinding == "" || findingPos == 0 {
		t.Errorf("no transcript position records result finding %q", resultFinding)
	}
	nb, _ := cl.Notebook(context.Background())
	if len(nb) != 1 || !strings.Contains(nb[0].Text, "logconf works") {
		t.Errorf("notebook: %+v", nb)
	}

	// aar transcript reads it back, and draws the submissions.
	t.Setenv("AAR_TOKEN", tok)
	png := filepath.Join(t.TempDir(), "progress.png")
	code, _, errs := aar(t, data, "transcript", "--plot", png)
	if code != 0 {
		t.Fatalf("aar transcript --plot: %d %s", code, errs)
	}
	if f, err := os.Open(png); err != nil {
		t.Error(err)
	} else if _, err := pngDecode(f); err != nil {
		t.Errorf("plot: %v", err)
	}
	code, out, _ := aar(t, data, "transcript")
	if code != 0 || strings.Count(out, "\n") != len(events) || !strings.Contains(out, "submit_predictions ok") || !strings.Contains(out, "rm_everything ERROR") {
		t.Errorf("aar transcript: %d lines for %d events:\n%s", strings.Count(out, "\n"), len(events), out)
	}
	t.Setenv("AAR_TOKEN", admin)

	// The ledger's chain verifies with every transcript event in it.
	if code, out, errs := aar(t, data, "ledger", "verify"); code != 0 || !strings.Contains(out, "ledger verifies") {
		t.Errorf("ledger verify: %d %s %s", code, out, errs)
	}

	// Leak scan: transcript, worker log, sandbox files and environment.
	var corpus bytes.Buffer
	for _, e := range events {
		b, _ := json.Marshal(e)
		corpus.Write(b)
	}
	corpus.Write(logBuf.Bytes())
	env, err := sb.Exec(context.Background(), sandbox.ExecRequest{Shell: "env; find /workspace /tmp -type f -exec cat {} + 2>/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	corpus.Write(env.Stdout)
	scanForLeaks(t, data, corpus.String(), map[string]string{"alice's token": tok, "the admin token": admin, "the API key": fakeKey})
	if !strings.Contains(corpus.String(), "key=[redacted]") {
		t.Error("the echoed key was not scrubbed to [redacted] in the transcript")
	}
}

// scanForLeaks fails if text holds a secret, a weak teacher's labelled row
// or a sealed row (id or text) of the toy testbed.
func pngDecode(f *os.File) (any, error) {
	defer f.Close()
	return png.Decode(f)
}

func scanForLeaks(t *testing.T, data, text string, secrets map[string]string) {
	t.Helper()
	for what, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s appears in the transcript, log or sandbox", what)
		}
	}
	store, err := testbed.OpenStore(data)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := store.Load("toy")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range tb.Labeled {
		if s := strings.Trim(string(r.Fields["text"]), `"`); len(s) > 20 && strings.Contains(text, s) {
			t.Errorf("the weak teacher's labelled row %s appears", r.ID)
		}
		checked++
	}
	for _, rows := range [][]testbed.Row{tb.Pool, tb.Test} {
		for _, r := range rows {
			if tb.Splits[r.ID] != testbed.SplitSealed {
				continue
			}
			checked++
			if strings.Contains(text, r.ID) {
				t.Errorf("sealed row id %s appears", r.ID)
			}
			if s := strings.Trim(string(r.Fields["text"]), `"`); len(s) > 20 && strings.Contains(text, s) {
				t.Errorf("sealed row %s's text appears", r.ID)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d private rows checked", checked)
	}
}

// TestResearcherBuiltinCLI runs `aar researcher --backend builtin` (the
// built binary, as a worker process) on the toy testbed: it screens, confirms
// and posts a result with a method card and snapshot, through the same
// tools and quota as a model, and its log holds no secret or private row.
func TestResearcherBuiltinCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and trains students")
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)")
	}
	data, view, sock, admin, tok := researcherLab(t)
	bin := buildAar(t)
	// No --view: the worker downloads the public view from the lab.
	cmd := exec.Command(bin, "researcher", "--data", data, "--lab", "unix://"+sock, "--token", tok, "--testbed", "toy",
		"--direction", "filter out the weak labels you cannot trust", "--backend", "builtin", "--screens", "6", "--time", "5m", "--name", "alice")
	cmd.Env = append(os.Environ(), "AAR_TOKEN=", "AAR_LAB=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aar researcher: %v\n%s", err, stderr.String())
	}
	var sum agent.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Reason != "the researcher finished" {
		t.Fatalf("summary %+v (%v)\n%s", sum, err, stderr.String())
	}
	log := stderr.String()
	got, _ := filepath.Glob(filepath.Join(data, "researcher-views", "toy-*"))
	if len(got) != 1 {
		t.Fatalf("downloaded views: %v", got)
	}
	for _, f := range []string{"testbed.json", "test.jsonl", "train_unlabel.jsonl"} {
		a, err1 := os.ReadFile(filepath.Join(got[0], f))
		b, err2 := os.ReadFile(filepath.Join(view, f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("downloaded %s differs from aar testbed public's (%v %v)", f, err1, err2)
		}
	}
	if _, err := os.Stat(filepath.Join(got[0], "train_label.jsonl")); err == nil {
		t.Error("the downloaded view holds train_label.jsonl")
	}
	for _, want := range []string{"public view from the lab", "backend builtin", "share_finding", "submit_predictions", "Confirming", "stopped: the researcher finished"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	cl, _ := labclient.New("unix://"+sock, tok)
	raw, err := cl.ListFindings(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Findings []struct {
			Type, Family, Snapshot, Submission, Author string
			Card                                       *struct{ Summary string }
		}
	}
	_ = json.Unmarshal(raw, &page)
	types := map[string]int{}
	for _, f := range page.Findings {
		types[f.Type]++
		if f.Type == "result" && (f.Snapshot == "" || f.Submission == "" || f.Card == nil || f.Author != "alice") {
			t.Errorf("result finding %+v", f)
		}
	}
	if types["result"] != 1 || types["hypothesis"] < 1 {
		t.Errorf("findings by type: %v", types)
	}
	sp, _ := cl.Spend(context.Background())
	// 6 screens (vanilla among them) and 2 confirmations of 5 seeds.
	if sp.CPUSeconds <= 0 || sp.ToolCalls < 20 {
		t.Errorf("spend %+v", sp)
	}
	scanForLeaks(t, data, log+stdout.String(), map[string]string{"alice's token": tok, "the admin token": admin})
}

func TestResearcherBadInput(t *testing.T) {
	data := t.TempDir()
	view := importChat(t, data)
	t.Setenv("AAR_LAB", "http://127.0.0.1:1")
	t.Setenv("AAR_TOKEN", "aar_test")
	t.Setenv("ANTHROPIC_API_KEY", "")
	base := []string{"researcher", "--direction", "x"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--view", filepath.Join(data, "testbeds", "chat")}, "private testbed directory"},
		{[]string{"--view", view, "--testbed", "reviews"}, `holds testbed "chat", not "reviews"`},
		{[]string{"--view", view, "--backend", "anthropic"}, "needs ANTHROPIC_API_KEY"},
		{[]string{"--view", view, "--backend", "scripted"}, "needs --script FILE"},
		{[]string{"--view", view, "--backend", "openai"}, "needs --model"},
		{[]string{"--view", view, "--backend", "gpt"}, `--backend "gpt"`},
		{[]string{"--view", view, "--limits", "memory=lots"}, "memory"},
	} {
		code, _, errs := aar(t, data, append(base, c.args...)...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, %q (want %q)", c.args, code, errs, c.want)
		}
	}
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-test")
	if code, _, errs := aar(t, data, append(base, "--view", view, "--backend", "anthropic")...); code != exitUsage || !strings.Contains(errs, "needs a budget") {
		t.Errorf("anthropic without a budget: %d %s", code, errs)
	}
	if code, _, errs := aar(t, data, append(base, "--view", view, "--backend", "anthropic", "--budget-usd", "1")...); code == 0 || strings.Contains(errs, "sk-ant-test") {
		t.Errorf("an unreachable lab: %d %s", code, errs)
	}
	if code, _, errs := aar(t, data, append(base, "--backend", "builtin")...); code != exitFailure || !strings.Contains(errs, "public view") {
		t.Errorf("no view and an unreachable lab: %d %s", code, errs)
	}
}

// TestResearcherAnthropicWorker runs `aar researcher --backend anthropic`
// (the real SDK) against an httptest server speaking the Messages API: the
// key reaches the provider and nowhere else (transcript, sandbox, log), the
// stable prefix is marked for caching, and the lab's spend is the price
// table's figure for the usage the provider reported.
func TestResearcherAnthropicWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)")
	}
	data, view, sock, admin, tok := researcherLab(t)
	bin := buildAar(t)
	const key = "sk-ant-api03-WORKER-test-key-9f8e7d6c5b4a"
	var (
		mu       sync.Mutex
		calls    int
		keySeen  bool
		cacheCtl bool
	)
	turns := []string{
		`[{"type": "text", "text": "Let me look at the data."}, {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "ls /data; env | sort"}}]`,
		`[{"type": "tool_use", "id": "toolu_2", "name": "notebook", "input": {"action": "append", "text": "looked at /data"}}]`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/v1/messages" {
			http.Error(w, `{"type":"error","error":{"type":"not_found_error","message":"no route"}}`, 404)
			return
		}
		calls++
		if r.Header.Get("X-Api-Key") == key || r.Header.Get("Authorization") == "Bearer "+key {
			keySeen = true
		}
		if bytes.Contains(body, []byte(`"cache_control"`)) {
			cacheCtl = true
		}
		content, stop := `[{"type": "text", "text": "I am done."}]`, "end_turn"
		if calls <= len(turns) {
			content, stop = turns[calls-1], "tool_use"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": "msg_%d", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5", "content": %s, "stop_reason": %q, "stop_sequence": null,
			"usage": {"input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 500, "cache_creation_input_tokens": 200}}`, calls, content, stop)
	}))
	defer srv.Close()

	cmd := exec.Command(bin, "researcher", "--data", data, "--lab", "unix://"+sock, "--testbed", "toy", "--view", view,
		"--direction", "look around", "--backend", "anthropic", "--model", "claude-sonnet-5-5", "--budget-usd", "1", "--name", "alice")
	cmd.Env = append(os.Environ(), "AAR_TOKEN="+tok, "AAR_LAB=", "ANTHROPIC_API_KEY="+key, "ANTHROPIC_BASE_URL="+srv.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aar researcher: %v\n%s", err, stderr.String())
	}
	mu.Lock()
	n := calls
	mu.Unlock()
	// Two tool turns, then "done", two nudges answered "done" again.
	if n != 5 || !keySeen || !cacheCtl {
		t.Errorf("provider saw %d calls (want 5), key %v, cache_control %v", n, keySeen, cacheCtl)
	}
	cl, _ := labclient.New("unix://"+sock, tok)
	sp, err := cl.Spend(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Sonnet 5.5: $2 in, $10 out, cache read $0.20, cache write $2.50 per Mtok.
	want := float64(n) * (1000*2 + 100*10 + 500*0.2 + 200*2.5) / 1e6
	if d := sp.CostUSD - want; d > 1e-9 || d < -1e-9 || sp.ModelCalls != int64(n) || sp.InputTokens != int64(1000*n) {
		t.Errorf("spend %+v, want $%.6f over %d calls", sp, want, n)
	}
	adm, _ := labclient.New("unix://"+sock, admin)
	events, err := readTranscript(context.Background(), adm, labclient.TranscriptQuery{Campaign: "c1", Researcher: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var corpus bytes.Buffer
	for _, e := range events {
		b, _ := json.Marshal(e)
		corpus.Write(b)
	}
	if !strings.Contains(corpus.String(), "AAR_LAB=") {
		t.Error("the transcript lacks the sandbox's env output (the leak check would be empty)")
	}
	corpus.Write(stderr.Bytes())
	corpus.Write(stdout.Bytes())
	scanForLeaks(t, data, corpus.String(), map[string]string{"the API key": key, "alice's token": tok, "the admin token": admin})
}
