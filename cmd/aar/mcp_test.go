package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labmcp"
)

// TestMCPCommand drives the built `aar mcp` through its stdin and stdout
// with the official Go SDK client (mcp.CommandTransport), against a real
// lab on its Unix socket: the lab's tools re-exposed and forwarded, and
// push_workspace and submit_files on a temporary workspace.
func TestMCPCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildAar(t)
	data := t.TempDir()
	view := importChat(t, data)
	l, _ := newLab(t, data)
	ctx := context.Background()
	if _, err := l.CreateCampaign(ctx, lab.Campaign{ID: "c1", Testbed: "chat", Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	tok, err := l.CreateToken(ctx, "alice", "c1")
	if err != nil {
		t.Fatal(err)
	}
	alice := l.Authenticate(tok)
	l.SetMCP(labmcp.New(l, nil).Handler())
	sdir, err := os.MkdirTemp("", "aarmcp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sdir) })
	sock := filepath.Join(sdir, "lab.sock")
	addr := serveLab(t, l, sock)

	// The workspace: code and two seeds' predictions.
	ws := t.TempDir()
	lines, err := jsonl.ReadFile(filepath.Join(view, "test.jsonl"), jsonl.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var a strings.Builder
	arr := make([]int, len(lines))
	for i, ln := range lines {
		fmt.Fprintf(&a, "{\"id\":%s,\"label\":%d}\n", ln.Fields["id"], (i/3)%2)
		arr[i] = (i/3 + 1) % 2
	}
	b, _ := json.Marshal(arr)
	for p, c := range map[string]string{"method.py": "print('alternate')\n", "preds/42.jsonl": a.String(), "preds/43.json": string(b)} {
		os.MkdirAll(filepath.Dir(filepath.Join(ws, p)), 0o755)
		if err := os.WriteFile(filepath.Join(ws, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(bin, "mcp", "--workspace", ws)
	cmd.Env = append(os.Environ(), "AAR_LAB=unix://"+sock, "AAR_TOKEN="+tok)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "aar-test", Version: "v0"}, nil).Connect(cctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect to aar mcp: %v\n%s", err, stderr.String())
	}
	defer func() {
		if err := cs.Close(); err != nil {
			t.Errorf("close: %v\n%s", err, stderr.String())
		}
	}()
	var names []string
	for tool, err := range cs.Tools(cctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	for _, want := range []string{"submit_files", "push_workspace", "pull_workspace", "submit_predictions", "leaderboard", "notebook_read", "share_finding", "my_control"} {
		if !slices.Contains(names, want) {
			t.Errorf("aar mcp lacks %s: %v", want, names)
		}
	}
	call := func(name string, args map[string]any) map[string]any {
		t.Helper()
		res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, stderr.String())
		}
		out, _ := res.StructuredContent.(map[string]any)
		if res.IsError || out == nil {
			t.Fatalf("%s: %+v", name, res.Content)
		}
		return out
	}

	snap := call("push_workspace", nil)
	id, _ := snap["id"].(string)
	if m, err := l.SnapshotLog(alice, id); err != nil || len(m) != 1 || m[0].Files != 3 {
		t.Fatalf("push_workspace: %v; the lab: %+v %v", snap, m, err)
	}
	out := call("submit_files", map[string]any{"files": []string{"preds/42.jsonl", "preds/43.json"}, "note": "through aar mcp"})
	sub, _ := out["submission"].(map[string]any)
	subs, err := l.CampaignSubmissions("c1")
	if err != nil || len(subs) != 1 || subs[0].ID != sub["id"] || subs[0].Seeds != 2 || subs[0].Snapshot != id || subs[0].Note != "through aar mcp" {
		t.Fatalf("submit_files: %v; the lab: %+v %v", out, subs, err)
	}
	if sub["feedback"] == nil {
		t.Fatalf("submit_files released no feedback: %v", sub)
	}
	board := call("leaderboard", nil)
	if rows, _ := board["submissions"].([]any); len(rows) != 1 {
		t.Fatalf("leaderboard: %v", board)
	}
	call("notebook_append", map[string]any{"text": "from aar mcp"})
	if nb, err := l.Notebook(alice, "", ""); err != nil || len(nb) != 1 || nb[0].Text != "from aar mcp" {
		t.Fatalf("notebook: %+v %v", nb, err)
	}
	pulled := call("pull_workspace", map[string]any{"id": id, "dir": "copy"})
	if got, err := os.ReadFile(filepath.Join(ws, "copy", "method.py")); err != nil || string(got) != "print('alternate')\n" || pulled["files"] != float64(3) {
		t.Fatalf("pull_workspace: %v %q %v", pulled, got, err)
	}

	// The same over TCP, by flag.
	cmd2 := exec.Command(bin, "mcp", "--lab", "http://"+addr.String(), "--workspace", ws)
	cmd2.Env = append(os.Environ(), "AAR_TOKEN="+tok)
	cs2, err := mcp.NewClient(&mcp.Implementation{Name: "aar-test", Version: "v0"}, nil).Connect(cctx, &mcp.CommandTransport{Command: cmd2}, nil)
	if err != nil {
		t.Fatalf("connect to aar mcp --lab http://…: %v", err)
	}
	res, err := cs2.CallTool(cctx, &mcp.CallToolParams{Name: "notebook_read", Arguments: map[string]any{}})
	if err != nil || res.IsError || !strings.Contains(fmt.Sprint(res.StructuredContent), "from aar mcp") {
		t.Fatalf("notebook_read over TCP: %+v %v", res, err)
	}
	cs2.Close()
}

// TestMCPCommandErrors: aar mcp says what to fix when it cannot start.
func TestMCPCommandErrors(t *testing.T) {
	t.Setenv("AAR_LAB", "")
	t.Setenv("AAR_TOKEN", "")
	code, _, errs := aar(t, "", "mcp")
	if code != exitUsage || !strings.Contains(errs, "AAR_TOKEN") || !strings.Contains(errs, "Try: aar mcp --help") {
		t.Fatalf("no token: %d %s", code, errs)
	}
	t.Setenv("AAR_TOKEN", "aar_x")
	t.Setenv("AAR_LAB", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	code, _, errs = aar(t, "", "mcp")
	if code != exitFailure || !strings.Contains(errs, "cannot reach the lab at unix://") {
		t.Fatalf("no lab: %d %s", code, errs)
	}
	if strings.Contains(errs, "aar_x") {
		t.Fatalf("the error shows the token: %s", errs)
	}
}
