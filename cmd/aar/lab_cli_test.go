package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/jsonl"
)

// TestLabCLI drives a lab served in-process (TCP and Unix socket) with the
// admin and researcher commands: campaign, token, submit, revoke.
func TestLabCLI(t *testing.T) {
	data := t.TempDir()
	view := importChat(t, data)
	l, admin := newLab(t, data)
	sock := filepath.Join(t.TempDir(), "lab.sock")
	addr := serveLab(t, l, sock)

	t.Setenv("AAR_LAB", "http://"+addr.String())
	t.Setenv("AAR_TOKEN", admin)
	if code, out, errs := aar(t, data, "lab", "campaign", "create", "--id", "c1", "--testbed", "chat"); code != 0 || !strings.Contains(out, `"policy": "default"`) {
		t.Fatalf("campaign create: %d %s %s", code, out, errs)
	}
	code, out, errs := aar(t, data, "lab", "token", "create", "--researcher", "alice", "--campaign", "c1")
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, "aar_") {
		t.Fatalf("token create: %d %s %s", code, out, errs)
	}

	// alice submits two seeds over the Unix socket.
	lines, _ := jsonl.ReadFile(filepath.Join(view, "test.jsonl"), jsonl.Limits{})
	dir := t.TempDir()
	var a, b strings.Builder
	for i, ln := range lines {
		fmt.Fprintf(&a, "{\"id\":%s,\"label\":%d}\n", ln.Fields["id"], i%2)
	}
	arr := make([]int, len(lines))
	bb, _ := json.Marshal(arr)
	b.Write(bb)
	os.WriteFile(filepath.Join(dir, "42.jsonl"), []byte(a.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "43.json"), []byte(b.String()), 0o644)
	t.Setenv("AAR_LAB", "unix://"+sock)
	t.Setenv("AAR_TOKEN", tok)

	// A workspace snapshot, and a child of it with one file changed.
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "method.py"), []byte("print('vanilla')\n"), 0o644)
	os.MkdirAll(filepath.Join(ws, "lib"), 0o755)
	os.WriteFile(filepath.Join(ws, "lib", "run.sh"), []byte("#!/bin/sh\necho run\n"), 0o755)
	code, out, errs = aar(t, data, "snapshot", "push", ws)
	snap := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(snap, "snap_") || !strings.Contains(errs, "pushed 2 files") {
		t.Fatalf("snapshot push: %d %q %s", code, out, errs)
	}
	os.WriteFile(filepath.Join(ws, "method.py"), []byte("print('logconf')\n"), 0o644)
	code, out, errs = aar(t, data, "snapshot", "push", ws, "--parent", snap)
	child := strings.TrimSpace(out)
	if code != 0 || child == snap {
		t.Fatalf("child push: %d %q %s", code, out, errs)
	}
	if code, out, errs := aar(t, data, "snapshot", "log", child); code != 0 || strings.Count(out, "snap_") != 2 || !strings.HasPrefix(out, child) {
		t.Fatalf("snapshot log: %d %s %s", code, out, errs)
	}
	if code, out, errs := aar(t, data, "snapshot", "diff", snap, child); code != 0 || !strings.Contains(out, "-print('vanilla')") || !strings.Contains(out, "+print('logconf')") {
		t.Fatalf("snapshot diff: %d %s %s", code, out, errs)
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	if code, out, errs := aar(t, data, "snapshot", "pull", snap, pulled); code != 0 || !strings.Contains(out, "2 files") {
		t.Fatalf("snapshot pull: %d %s %s", code, out, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(pulled, "method.py")); string(b) != "print('vanilla')\n" {
		t.Errorf("pulled method.py = %q", b)
	}
	if st, err := os.Stat(filepath.Join(pulled, "lib", "run.sh")); err != nil || st.Mode()&0o100 == 0 {
		t.Errorf("pulled run.sh lost its executable bit: %v", err)
	}
	if code, _, errs := aar(t, data, "snapshot", "log", "snap_nope"); code == 0 || !strings.Contains(errs, "unknown_snapshot") {
		t.Errorf("unknown snapshot: %d %s", code, errs)
	}
	if code, _, errs := aar(t, data, "submit", filepath.Join(dir, "42.jsonl"), "--snapshot", "snap_nope"); code == 0 || !strings.Contains(errs, "unknown_snapshot") {
		t.Errorf("submission citing an unknown snapshot: %d %s", code, errs)
	}

	code, out, errs = aar(t, data, "submit", filepath.Join(dir, "42.jsonl"), filepath.Join(dir, "43.json"), "--snapshot", snap)
	if code != 0 || !strings.Contains(out, `"policy": "default"`) || !strings.Contains(out, `"id": "sub_`) {
		t.Fatalf("submit: %d %s %s", code, out, errs)
	}
	// The same files again: the idempotency key makes it the same submission.
	code, again, _ := aar(t, data, "submit", filepath.Join(dir, "42.jsonl"), filepath.Join(dir, "43.json"), "--snapshot", snap)
	if code != 0 || !strings.Contains(again, `"replayed": true`) {
		t.Fatalf("resubmit: %d %s", code, again)
	}
	// Bad predictions: a clear error, exit 1.
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte("[0,1,2]"), 0o644)
	if code, _, errs := aar(t, data, "submit", filepath.Join(dir, "bad.json")); code == 0 || !strings.Contains(errs, "invalid_predictions") {
		t.Fatalf("bad submit: %d %s", code, errs)
	}
	// Without the environment: a usage error.
	t.Setenv("AAR_LAB", "")
	if code, _, errs := aar(t, data, "submit", filepath.Join(dir, "42.jsonl")); code != exitUsage || !strings.Contains(errs, "AAR_LAB") {
		t.Fatalf("submit without AAR_LAB: %d %s", code, errs)
	}
	// Revoked, alice is refused.
	t.Setenv("AAR_LAB", "http://"+addr.String())
	t.Setenv("AAR_TOKEN", admin)
	if code, _, errs := aar(t, data, "lab", "token", "revoke", tok); code != 0 {
		t.Fatalf("revoke: %s", errs)
	}
	t.Setenv("AAR_TOKEN", tok)
	if code, _, errs := aar(t, data, "submit", filepath.Join(dir, "42.jsonl")); code == 0 || !strings.Contains(errs, "401") {
		t.Fatalf("revoked submit: %d %s", code, errs)
	}
}
