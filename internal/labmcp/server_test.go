package labmcp_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labmcp"
	"github.com/aar-lab/aar/internal/snapshot"
)

// TestMCPTools calls every tool with a researcher token through the
// official Go SDK client over streamable HTTP, on loopback TCP and on the
// lab's Unix socket, and checks each answer against the lab's own state.
func TestMCPTools(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			e := newEnv(t)
			exerciseTools(t, e, e.mustConnect(network, e.alice))
		})
	}
}

func exerciseTools(t *testing.T, e *env, cs *mcp.ClientSession) {
	ctx := context.Background()
	alice := e.id(e.alice)
	if got := toolNames(t, cs); !slices.Equal(got, wantTools) {
		t.Fatalf("tools:\n got %v\nwant %v", got, wantTools)
	}
	var infos []string
	for _, ti := range labmcp.New(e.lab, nil).Tools() {
		infos = append(infos, ti.Name)
	}
	if !slices.Equal(infos, wantTools) {
		t.Fatalf("Tools() = %v", infos)
	}
	if ir := cs.InitializeResult(); ir == nil || ir.ServerInfo == nil || ir.ServerInfo.Name != labmcp.ServerName {
		t.Fatalf("server info: %+v", ir)
	} else {
		t.Logf("Go SDK: server %s, protocol %s", ir.ServerInfo.Name, ir.ProtocolVersion)
	}

	// validate_predictions: checked, not counted.
	seeds := map[string]any{}
	for i, s := range []string{"42", "43", "44", "45", "46"} {
		seeds[s] = e.preds(func(j int) int { return (j/3 + i) % 2 })
	}
	v := call(t, cs, "validate_predictions", map[string]any{"seeds": map[string]any{"42": seeds["42"]}})
	sameJSON(t, "validate_predictions", v, must[map[string]any](t)(e.lab.Validate(ctx, alice, &lab.SubmitRequest{Seeds: map[string]json.RawMessage{"42": mustJSON(t, seeds["42"])}})))
	if n := len(must[[]lab.SubmissionInfo](t)(e.lab.CampaignSubmissions("c1"))); n != 0 {
		t.Fatalf("validation counted a submission: %d", n)
	}
	// Predictions the lab refuses come back as its public error.
	code, msg, status := callErr(t, cs, "validate_predictions", map[string]any{"seeds": map[string]any{"42": []int{0, 1}}})
	if status != 400 || (code != "invalid_predictions" && code != "incomplete_predictions") || msg == "" {
		t.Fatalf("short predictions: %s %q %d", code, msg, status)
	}

	// push_snapshot, twice (the second a child), then log, diff and pull.
	_, a1, err := snapshot.FromFiles([]snapshot.File{{Path: "train.py", Mode: 0o644, Data: []byte("print('v1')\n")}, {Path: "run.sh", Mode: 0o755, Data: []byte("#!/bin/sh\n")}}, snapshot.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	s1 := call(t, cs, "push_snapshot", map[string]any{"archive_base64": base64.StdEncoding.EncodeToString(a1)})
	_, a2, _ := snapshot.FromFiles([]snapshot.File{{Path: "train.py", Mode: 0o644, Data: []byte("print('v2')\n")}, {Path: "run.sh", Mode: 0o755, Data: []byte("#!/bin/sh\n")}}, snapshot.Limits{})
	s2 := call(t, cs, "push_snapshot", map[string]any{"archive_base64": base64.StdEncoding.EncodeToString(a2), "parent": str(s1, "id")})
	logv := call(t, cs, "snapshot_log", map[string]any{"id": str(s2, "id")})
	want := must[[]lab.SnapshotMeta](t)(e.lab.SnapshotLog(alice, str(s2, "id")))
	sameJSON(t, "snapshot_log", logv["snapshots"], want)
	if len(want) != 2 || want[0].ID != str(s2, "id") || want[1].ID != str(s1, "id") || want[0].Author != "alice" {
		t.Fatalf("lineage: %+v", want)
	}
	sameJSON(t, "push_snapshot", s2, want[0])
	diff := call(t, cs, "snapshot_diff", map[string]any{"a": str(s1, "id"), "b": str(s2, "id")})
	if d := must[string](t)(e.lab.SnapshotDiff(alice, str(s1, "id"), str(s2, "id"))); str(diff, "diff") != d || !strings.Contains(d, "+print('v2')") {
		t.Fatalf("snapshot_diff: %q, lab: %q", str(diff, "diff"), d)
	}
	pulled := call(t, cs, "pull_snapshot", map[string]any{"id": str(s1, "id")})
	rc := must[io.ReadCloser](t)(e.lab.SnapshotArchive(alice, str(s1, "id")))
	archive, _ := io.ReadAll(rc)
	rc.Close()
	if str(pulled, "archive_base64") != base64.StdEncoding.EncodeToString(archive) {
		t.Fatal("pull_snapshot: the archive is not the lab's")
	}
	sameJSON(t, "pull_snapshot's snapshot", pulled["snapshot"], want[1])
	if code, _, _ := callErr(t, cs, "push_snapshot", map[string]any{"archive_base64": "not base64!"}); code != "invalid_archive" {
		t.Fatalf("bad base64: %s", code)
	}
	if code, _, _ := callErr(t, cs, "push_snapshot", map[string]any{"archive_base64": base64.StdEncoding.EncodeToString([]byte("not a gzip"))}); code != "invalid_archive" {
		t.Fatalf("bad archive: %s", code)
	}

	// submit_predictions: five seeds with the snapshot; a retry with the
	// same key is the same submission.
	args := map[string]any{"seeds": seeds, "snapshot": str(s2, "id"), "note": "mcp test", "idempotency_key": "k1"}
	sub := call(t, cs, "submit_predictions", args)
	subID := str(sub, "id")
	infos2 := must[[]lab.SubmissionInfo](t)(e.lab.CampaignSubmissions("c1"))
	if len(infos2) != 1 || infos2[0].ID != subID || infos2[0].Seeds != 5 || infos2[0].Snapshot != str(s2, "id") {
		t.Fatalf("the lab's submissions: %+v (tool answered %v)", infos2, sub)
	}
	released := must[any](t)(e.lab.GetSubmission(alice, subID)).(map[string]any)
	sameJSON(t, "submit_predictions' feedback", sub["feedback"], released["feedback"])
	raw, _ := json.Marshal(sub)
	for _, forbidden := range []string{"holdout", "sealed", "correct", "distribution"} {
		if strings.Contains(string(raw), forbidden) {
			t.Errorf("a researcher's submission answer holds %q: %s", forbidden, raw)
		}
	}
	if again := call(t, cs, "submit_predictions", args); str(again, "id") != subID || again["replayed"] != true {
		t.Fatalf("retry: %v", again)
	}

	// share_finding: a result citing the submission and snapshot, and a
	// hypothesis; then list, search, read, comment, vote.
	card := map[string]any{"summary": "alternating predictions", "pseudocode": "predict (i/3) % 2",
		"components": []map[string]string{{"name": "alternation", "ablation": "constant predictions are flagged"}}, "inputs": []string{"weak labels"}}
	res := call(t, cs, "share_finding", map[string]any{"type": "result", "title": "alternation on five seeds", "body": "It scores.", "family": "other",
		"submission": subID, "snapshot": str(s2, "id"), "card": card, "config": map[string]any{"period": 3}, "worked": true, "idempotency_key": "f1"})
	hyp := call(t, cs, "share_finding", map[string]any{"type": "hypothesis", "title": "confidence filtering might help", "body": "Filter by confidence.", "family": "data filtering"})
	if again := call(t, cs, "share_finding", map[string]any{"type": "result", "title": "alternation on five seeds", "body": "It scores.", "family": "other",
		"submission": subID, "snapshot": str(s2, "id"), "card": card, "config": map[string]any{"period": 3}, "worked": true, "idempotency_key": "f1"}); str(again, "id") != str(res, "id") {
		t.Fatalf("finding retry: %v, first %v", again, res)
	}
	if m, _ := res["metrics"].(map[string]any); m == nil || m["released"] == nil {
		t.Fatalf("a result's metrics carry the released figures: %v", res)
	}
	code, msg, status = callErr(t, cs, "share_finding", map[string]any{"type": "result", "title": "no card", "body": "x", "family": "other", "submission": subID, "snapshot": str(s2, "id")})
	if code != "result_incomplete" || status != 400 || !strings.Contains(msg, "method card") {
		t.Fatalf("result without a card: %s %q %d", code, msg, status)
	}
	if _, msg, _ := callErr(t, cs, "share_finding", map[string]any{"type": "rumour", "title": "x", "body": "x", "family": "other"}); !strings.Contains(msg, "type") {
		t.Fatalf("a type outside the schema's enum: %q", msg)
	}

	list := call(t, cs, "list_findings", map[string]any{})
	sameJSON(t, "list_findings", list, must[any](t)(e.lab.ListFindings(ctx, alice, "", 0, 100)))
	if fs, _ := list["findings"].([]any); len(fs) != 2 {
		t.Fatalf("list_findings: %v", list)
	}
	page := call(t, cs, "list_findings", map[string]any{"since": list["next"], "limit": 5})
	if fs, _ := page["findings"].([]any); len(fs) != 0 {
		t.Fatalf("list_findings after the cursor: %v", page)
	}
	found := call(t, cs, "search_findings", map[string]any{"query": "confidence filtering"})
	sameJSON(t, "search_findings", found["findings"], must[any](t)(e.lab.SearchFindings(ctx, alice, "", "confidence filtering", 20)))
	if fs, _ := found["findings"].([]any); len(fs) != 1 || str(fs[0].(map[string]any), "id") != str(hyp, "id") {
		t.Fatalf("search_findings: %v", found)
	}
	cm := call(t, cs, "comment_finding", map[string]any{"id": str(hyp, "id"), "body": "worth a try"})
	if vote := call(t, cs, "vote_finding", map[string]any{"id": str(res, "id"), "value": 1}); vote["vote"] != float64(1) {
		t.Fatalf("vote_finding: %v", vote)
	}
	if code, _, status := callErr(t, cs, "vote_finding", map[string]any{"id": str(res, "id"), "value": -1}); code != "duplicate_vote" || status != 409 {
		t.Fatalf("a second vote: %s %d", code, status)
	}
	if _, msg, _ := callErr(t, cs, "vote_finding", map[string]any{"id": str(res, "id"), "value": 2}); msg == "" {
		t.Fatal("a vote of 2 passed the schema")
	}
	read := call(t, cs, "read_finding", map[string]any{"id": str(hyp, "id")})
	sameJSON(t, "read_finding", read, must[map[string]any](t)(e.lab.GetFinding(ctx, alice, "", str(hyp, "id"))))
	if cms, _ := read["comments"].([]any); len(cms) != 1 || str(cms[0].(map[string]any), "id") != str(cm, "id") {
		t.Fatalf("read_finding's comments: %v", read)
	}
	if got := call(t, cs, "read_finding", map[string]any{"id": str(res, "id")}); got["finding"].(map[string]any)["score"] != float64(1) {
		t.Fatalf("the vote is not counted: %v", got)
	}

	// leaderboard: the lab's board for alice.
	board := call(t, cs, "leaderboard", map[string]any{})
	sameJSON(t, "leaderboard", board, must[*lab.Board](t)(e.lab.Leaderboard(ctx, alice, "")))
	if str(board, "campaign") != "c1" {
		t.Fatalf("leaderboard: %v", board)
	}

	// notebook_append and notebook_read.
	entry := call(t, cs, "notebook_append", map[string]any{"text": "alternation scored; try filtering next"})
	nb := call(t, cs, "notebook_read", map[string]any{})
	sameJSON(t, "notebook_read", nb["entries"], must[[]lab.NotebookEntry](t)(e.lab.Notebook(alice, "", "")))
	if es, _ := nb["entries"].([]any); len(es) != 1 || str(es[0].(map[string]any), "text") != str(entry, "text") {
		t.Fatalf("notebook: %v", nb)
	}
	if code, _, _ := callErr(t, cs, "notebook_append", map[string]any{"text": "   "}); code != "invalid_notebook" {
		t.Fatalf("an empty notebook entry: %s", code)
	}
	if code, _, status := callErr(t, cs, "notebook_read", map[string]any{"researcher": "bob"}); code != "forbidden" || status != 403 {
		t.Fatalf("another researcher's notebook: %s %d", code, status)
	}

	// budget: the spend the transcript records.
	if _, err := e.lab.AppendTranscript(ctx, alice, []lab.TranscriptEvent{{Session: "s1", Type: "usage", Usage: &lab.Usage{InputTokens: 1200, OutputTokens: 300}, CostUSD: 0.25}, {Session: "s1", Type: "tool_call"}}); err != nil {
		t.Fatal(err)
	}
	spend := call(t, cs, "budget", map[string]any{})
	sameJSON(t, "budget", spend, must[*lab.Spend](t)(e.lab.SpendOf(alice, "", "")))
	if spend["cost_usd"] != 0.25 || spend["model_calls"] != float64(1) || spend["tool_calls"] != float64(1) {
		t.Fatalf("budget: %v", spend)
	}

	// my_control: an operator's note.
	if _, err := e.lab.Control(ctx, "c1", lab.ControlRequest{Action: "note", Researcher: "alice", Text: "look at OOD"}); err != nil {
		t.Fatal(err)
	}
	ctl := call(t, cs, "my_control", map[string]any{})
	sameJSON(t, "my_control", ctl, must[*lab.ControlState](t)(e.lab.MyControl(alice, 0)))
	if notes, _ := ctl["notes"].([]any); len(notes) != 1 || str(notes[0].(map[string]any), "text") != "look at OOD" || str(ctl, "state") != "running" {
		t.Fatalf("my_control: %v", ctl)
	}
	if again := call(t, cs, "my_control", map[string]any{"since": ctl["next"]}); len(again["notes"].([]any)) != 0 {
		t.Fatalf("my_control after the cursor: %v", again)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMCPAuth: every HTTP request needs a live token (401 before any MCP
// processing); a researcher sees only their campaign; an admin token lists
// the tools, reads a campaign it names, and gets the REST API's 403 as a
// tool error from researcher-only tools.
func TestMCPAuth(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}`
	for _, network := range []string{"tcp", "unix"} {
		for name, tok := range map[string]string{"no token": "", "wrong token": "aar_not-a-token", "admin hash": "Basic " + e.admin} {
			hc, endpoint := e.httpClient(network, "")
			req, _ := http.NewRequest("POST", endpoint, strings.NewReader(initialize))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if strings.HasPrefix(tok, "Basic ") {
				req.Header.Set("Authorization", tok)
			} else if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 || !strings.Contains(string(body), `"unauthorized"`) || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s over %s: %d %s", name, network, resp.StatusCode, body)
			}
		}
		if _, err := e.connect(network, "aar_wrong"); err == nil {
			t.Errorf("the Go SDK client connected over %s with a wrong token", network)
		}
		// The same request with a live token is served.
		hc, endpoint := e.httpClient(network, e.alice)
		req, _ := http.NewRequest("POST", endpoint, strings.NewReader(initialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), labmcp.ServerName) {
			t.Errorf("initialize with alice's token over %s: %d %s", network, resp.StatusCode, body)
		}
	}

	// Alice posts a finding; Bob (campaign c2) cannot read or find it.
	alice := e.mustConnect("tcp", e.alice)
	f := call(t, alice, "share_finding", map[string]any{"type": "insight", "title": "c1 only", "body": "secret to c1", "family": "other"})
	bob := e.mustConnect("unix", e.bob)
	if code, _, status := callErr(t, bob, "read_finding", map[string]any{"id": str(f, "id")}); code != "unknown_finding" || status != 404 {
		t.Fatalf("bob reads alice's finding: %s %d", code, status)
	}
	if code, _, _ := callErr(t, bob, "read_finding", map[string]any{"id": str(f, "id"), "campaign": "c1"}); code != "unknown_finding" {
		t.Fatalf("bob names c1: %s", code)
	}
	if l := call(t, bob, "list_findings", map[string]any{"campaign": "c1"}); len(l["findings"].([]any)) != 0 {
		t.Fatalf("bob lists c1's findings: %v", l)
	}
	if s := call(t, bob, "search_findings", map[string]any{"query": "secret"}); len(s["findings"].([]any)) != 0 {
		t.Fatalf("bob finds c1's finding: %v", s)
	}
	if code, _, _ := callErr(t, bob, "comment_finding", map[string]any{"id": str(f, "id"), "body": "hi"}); code != "unknown_finding" {
		t.Fatalf("bob comments on c1's finding: %s", code)
	}
	if code, _, status := callErr(t, bob, "budget", map[string]any{"campaign": "c1"}); code != "wrong_campaign" || status != 403 {
		t.Fatalf("bob reads c1's spend: %s %d", code, status)
	}
	if b := call(t, bob, "leaderboard", map[string]any{"campaign": "c1"}); str(b, "campaign") != "c2" {
		t.Fatalf("bob's leaderboard names c1: %v", b)
	}

	// The admin token: the same tools; researcher-only tools answer 403.
	admin := e.mustConnect("unix", e.admin)
	if got := toolNames(t, admin); !slices.Equal(got, wantTools) {
		t.Fatalf("admin tools: %v", got)
	}
	for _, ti := range labmcp.New(e.lab, nil).Tools() {
		if !ti.ResearcherOnly {
			continue
		}
		code, msg, status := callErr(t, admin, ti.Name, map[string]any{})
		if code == "" {
			// The schema refused the empty arguments first; send valid ones.
			code, msg, status = callErr(t, admin, ti.Name, validArgs[ti.Name])
		}
		if code != "forbidden" || status != 403 || !strings.Contains(msg, "researcher token") {
			t.Errorf("admin calls %s: %s %q %d", ti.Name, code, msg, status)
		}
	}
	adminID := e.id(e.admin)
	sameJSON(t, "admin leaderboard", call(t, admin, "leaderboard", map[string]any{"campaign": "c1"}), must[*lab.Board](t)(e.lab.Leaderboard(ctx, adminID, "c1")))
	if r := call(t, admin, "read_finding", map[string]any{"id": str(f, "id"), "campaign": "c1"}); r["finding"] == nil {
		t.Fatalf("admin reads c1's finding: %v", r)
	}
	sameJSON(t, "admin budget", call(t, admin, "budget", map[string]any{"campaign": "c1"}), must[*lab.CampaignSpend](t)(e.lab.CampaignSpendOf(adminID, "c1")))
	if code, _, status := callErr(t, admin, "notebook_read", map[string]any{}); code != "invalid_request" || status != 400 {
		t.Fatalf("admin notebook without a researcher: %s %d", code, status)
	}

	// A revoked token stops working at once, mid-session.
	if err := e.lab.RevokeToken(ctx, e.bob); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CallTool(ctx, &mcp.CallToolParams{Name: "leaderboard", Arguments: map[string]any{}}); err == nil {
		t.Fatal("a revoked token still calls tools")
	}
	if _, err := e.connect("tcp", e.bob); err == nil {
		t.Fatal("a revoked token connects")
	}
}

// validArgs are arguments that pass each researcher-only tool's schema.
var validArgs = map[string]map[string]any{
	"comment_finding":      {"id": "fnd_x", "body": "x"},
	"notebook_append":      {"text": "x"},
	"push_snapshot":        {"archive_base64": ""},
	"share_finding":        {"type": "insight", "title": "x", "body": "x", "family": "other"},
	"submit_predictions":   {"seeds": map[string]any{"1": []int{0}}},
	"validate_predictions": {"seeds": map[string]any{"1": []int{0}}},
	"vote_finding":         {"id": "fnd_x", "value": 1},
}
