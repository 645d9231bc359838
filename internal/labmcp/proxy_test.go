package labmcp_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labmcp"
)

// proxyTools is what the sandbox proxy serves: the lab's tools and its own.
var proxyTools = func() []string {
	out := append([]string{"pull_workspace", "push_workspace", "submit_files"}, wantTools...)
	slices.Sort(out)
	return out
}()

// connectProxy dials the lab through a Proxy and connects a Go SDK client
// to the proxy's server in memory.
func connectProxy(t *testing.T, cfg labmcp.ProxyConfig) (*labmcp.Proxy, *mcp.ClientSession) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := labmcp.Dial(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ct, st := mcp.NewInMemoryTransports()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, st) }()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "aar-test", Version: "v0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		if err := <-done; err != nil {
			t.Errorf("proxy run: %v", err)
		}
		cancel()
		p.Close()
	})
	return p, cs
}

// writeWorkspace writes files (path → content) under dir.
func writeWorkspace(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// jsonl writes predictions as {"id", "label"} lines in public order.
func (e *env) jsonl(f func(i int) int) string {
	var b strings.Builder
	for i, r := range e.public {
		line, _ := json.Marshal(map[string]any{"id": r.ID, "label": f(i)})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestProxyTools drives the sandbox proxy (what aar mcp serves) over both
// of the lab's listeners: the lab's tools forwarded verbatim, and
// push_workspace, submit_files and pull_workspace on a real directory.
func TestProxyTools(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			e := newEnv(t)
			addr := e.tcp
			if network == "unix" {
				addr = "unix://" + e.sock
			}
			ws := t.TempDir()
			p, cs := connectProxy(t, labmcp.ProxyConfig{Lab: addr, Token: e.alice, Workspace: ws})
			if got := toolNames(t, cs); !slices.Equal(got, proxyTools) || !slices.Equal(p.Tools(), proxyTools) {
				t.Fatalf("proxy tools: %v / %v, want %v", got, p.Tools(), proxyTools)
			}
			exerciseProxy(t, e, cs, ws)
		})
	}
}

func exerciseProxy(t *testing.T, e *env, cs *mcp.ClientSession, ws string) {
	ctx := context.Background()
	alice := e.id(e.alice)
	// A forwarded tool answers as the lab does.
	sameJSON(t, "forwarded leaderboard", call(t, cs, "leaderboard", map[string]any{}), must[*lab.Board](t)(e.lab.Leaderboard(ctx, alice, "")))
	call(t, cs, "notebook_append", map[string]any{"text": "through the proxy"})
	if nb := must[[]lab.NotebookEntry](t)(e.lab.Notebook(alice, "", "")); len(nb) != 1 || nb[0].Text != "through the proxy" {
		t.Fatalf("notebook: %+v", nb)
	}
	// A forwarded tool error is the lab's.
	if code, _, status := callErr(t, cs, "read_finding", map[string]any{"id": "fnd_nope"}); code != "unknown_finding" || status != 404 {
		t.Fatalf("forwarded error: %s %d", code, status)
	}

	// push_workspace: the workspace as a snapshot; unchanged, the same one.
	writeWorkspace(t, ws, map[string]string{"train.py": "print('hi')\n", "lib/util.py": "X = 1\n"})
	if err := os.Chmod(filepath.Join(ws, "train.py"), 0o755); err != nil {
		t.Fatal(err)
	}
	s1 := call(t, cs, "push_workspace", map[string]any{})
	log1 := must[[]lab.SnapshotMeta](t)(e.lab.SnapshotLog(alice, str(s1, "id")))
	if len(log1) != 1 || log1[0].Files != 2 || log1[0].Tree != str(s1, "tree") {
		t.Fatalf("push_workspace: %v, the lab: %+v", s1, log1)
	}
	if again := call(t, cs, "push_workspace", map[string]any{}); str(again, "id") != str(s1, "id") || again["unchanged"] != true {
		t.Fatalf("an unchanged push: %v", again)
	}

	// submit_files: one JSONL file and one JSON array, after a change to the
	// workspace: a new snapshot, child of the first, cited by the submission.
	writeWorkspace(t, ws, map[string]string{
		"preds/42.jsonl": e.jsonl(func(i int) int { return (i / 3) % 2 }),
		"preds/43.json":  string(mustJSON(t, e.preds(func(i int) int { return (i/3 + 1) % 2 }))),
	})
	out := call(t, cs, "submit_files", map[string]any{"files": []string{"preds/42.jsonl", filepath.Join(ws, "preds/43.json")}, "note": "two seeds"})
	sub, _ := out["submission"].(map[string]any)
	snap, _ := out["snapshot"].(map[string]any)
	subs := must[[]lab.SubmissionInfo](t)(e.lab.CampaignSubmissions("c1"))
	if len(subs) != 1 || subs[0].ID != str(sub, "id") || subs[0].Seeds != 2 || subs[0].Snapshot != str(snap, "id") || subs[0].Note != "two seeds" {
		t.Fatalf("submit_files: %v, the lab: %+v", out, subs)
	}
	if log2 := must[[]lab.SnapshotMeta](t)(e.lab.SnapshotLog(alice, str(snap, "id"))); len(log2) != 2 || log2[1].ID != str(s1, "id") || log2[0].Files != 4 {
		t.Fatalf("the submission's snapshot: %+v", log2)
	}
	released := must[any](t)(e.lab.GetSubmission(alice, str(sub, "id"))).(map[string]any)
	sameJSON(t, "submit_files' feedback", sub["feedback"], released["feedback"])
	// The same call again (a retry) is the same submission.
	if again := call(t, cs, "submit_files", map[string]any{"files": []string{"preds/42.jsonl", "preds/43.json"}, "note": "two seeds"}); str(again["submission"].(map[string]any), "id") != str(sub, "id") {
		t.Fatalf("a retried submit_files made a new submission: %v", again)
	}
	// Mistakes come back as tool errors.
	if code, msg, _ := callErr(t, cs, "submit_files", map[string]any{"files": []string{"preds/nope.jsonl"}}); code != "invalid_file" || !strings.Contains(msg, "preds/nope.jsonl") {
		t.Fatalf("a missing file: %s %q", code, msg)
	}
	if code, _, _ := callErr(t, cs, "submit_files", map[string]any{"files": []string{"preds/42.jsonl", "other/42.json"}}); code != "invalid_request" {
		t.Fatalf("two files of one seed: %s", code)
	}
	if _, msg, _ := callErr(t, cs, "submit_files", map[string]any{"files": []string{}}); msg == "" {
		t.Fatal("no files passed")
	}
	writeWorkspace(t, ws, map[string]string{"preds/44.jsonl": "{\"id\": \"x\", \"label\": 0}\n"})
	if code, _, status := callErr(t, cs, "submit_files", map[string]any{"files": []string{"preds/44.jsonl"}}); code != "invalid_predictions" && code != "incomplete_predictions" || status != 400 {
		t.Fatalf("predictions the lab refuses: %s %d", code, status)
	}
	if err := os.Symlink("train.py", filepath.Join(ws, "link.py")); err != nil {
		t.Fatal(err)
	}
	if code, msg, _ := callErr(t, cs, "push_workspace", map[string]any{}); code != "invalid_workspace" || !strings.Contains(msg, "link.py") {
		t.Fatalf("a workspace with a link: %s %q", code, msg)
	}

	// pull_workspace: the first snapshot into a new directory, modes kept.
	pulled := call(t, cs, "pull_workspace", map[string]any{"id": str(s1, "id"), "dir": "pulled"})
	if str(pulled, "dir") != filepath.Join(ws, "pulled") || pulled["files"] != float64(2) {
		t.Fatalf("pull_workspace: %v", pulled)
	}
	b, err := os.ReadFile(filepath.Join(ws, "pulled", "lib", "util.py"))
	if err != nil || string(b) != "X = 1\n" {
		t.Fatalf("pulled file: %q %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(ws, "pulled", "train.py")); err != nil || st.Mode().Perm()&0o100 == 0 {
		t.Fatalf("pulled train.py lost its executable bit: %v %v", st, err)
	}
	if code, _, _ := callErr(t, cs, "pull_workspace", map[string]any{"id": str(s1, "id"), "dir": "pulled"}); code != "invalid_directory" {
		t.Fatalf("pull into a non-empty directory: %s", code)
	}
	if code, _, status := callErr(t, cs, "pull_workspace", map[string]any{"id": "snap_nope", "dir": "x"}); code != "unknown_snapshot" || status != 404 {
		t.Fatalf("pull an unknown snapshot: %s %d", code, status)
	}
}

// TestProxyDialErrors: what aar mcp says when it cannot start.
func TestProxyDialErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		cfg  labmcp.ProxyConfig
		want string
	}{
		"no token":       {labmcp.ProxyConfig{Lab: e.tcp}, "AAR_TOKEN"},
		"bad address":    {labmcp.ProxyConfig{Lab: "ftp://lab", Token: e.alice}, "http://host:port or unix://"},
		"no socket":      {labmcp.ProxyConfig{Lab: "unix://" + filepath.Join(t.TempDir(), "none.sock"), Token: e.alice, ConnectTimeout: 10 * time.Second}, "cannot reach the lab"},
		"wrong token":    {labmcp.ProxyConfig{Lab: "unix://" + e.sock, Token: "aar_wrong"}, "refused AAR_TOKEN (401"},
		"revoked token":  {labmcp.ProxyConfig{Lab: e.tcp, Token: e.bob}, "refused AAR_TOKEN (401"},
		"not an aar lab": {labmcp.ProxyConfig{Lab: e.tcp + "/v1", Token: e.alice}, "no MCP endpoint"},
	} {
		if name == "revoked token" {
			if err := e.lab.RevokeToken(ctx, e.bob); err != nil {
				t.Fatal(err)
			}
		}
		p, err := labmcp.Dial(ctx, tc.cfg)
		if err == nil {
			p.Close()
			t.Errorf("%s: Dial succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", name, err, tc.want)
		}
		if strings.Contains(err.Error(), e.alice) {
			t.Errorf("%s: the error shows the token: %v", name, err)
		}
	}

	// A token revoked mid-session: the next call says so.
	carol, err := e.lab.CreateToken(ctx, "carol", "c1")
	if err != nil {
		t.Fatal(err)
	}
	_, cs := connectProxy(t, labmcp.ProxyConfig{Lab: e.tcp, Token: carol, Workspace: t.TempDir()})
	call(t, cs, "leaderboard", map[string]any{})
	if err := e.lab.RevokeToken(ctx, carol); err != nil {
		t.Fatal(err)
	}
	if code, msg, status := callErr(t, cs, "leaderboard", map[string]any{}); code != "unauthorized" || status != 401 || !strings.Contains(msg, "refused AAR_TOKEN") {
		t.Fatalf("a revoked token mid-session: %s %q %d", code, msg, status)
	}
	if code, _, _ := callErr(t, cs, "push_workspace", map[string]any{}); code != "unauthorized" {
		t.Fatalf("a local tool after revocation: %s", code)
	}
}

// TestProxyLabRestart: a lab that goes away and comes back on its socket
// answers the proxy's next call; the call in between says it is gone.
func TestProxyLabRestart(t *testing.T) {
	e := newEnv(t)
	_, cs := connectProxy(t, labmcp.ProxyConfig{Lab: "unix://" + e.sock, Token: e.alice, Workspace: t.TempDir()})
	call(t, cs, "notebook_append", map[string]any{"text": "before"})
	e.stop()
	if code, msg, status := callErr(t, cs, "notebook_read", map[string]any{}); code != "lab_unreachable" || status != 502 || !strings.Contains(msg, "cannot reach the lab") {
		t.Fatalf("the lab is down: %s %q %d", code, msg, status)
	}
	e.serve()
	call(t, cs, "notebook_append", map[string]any{"text": "after"})
	if nb := call(t, cs, "notebook_read", map[string]any{}); len(nb["entries"].([]any)) != 2 {
		t.Fatalf("notebook after the restart: %v", nb)
	}
}
