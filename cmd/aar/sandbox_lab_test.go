package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/sandbox"
	"github.com/aar-lab/aar/internal/sandbox/bwrap"
)

// TestSandboxSubmitsToLab is a researcher's path end to end: a real lab
// serving on a Unix socket, a sandbox holding the public view, the built aar
// binary and that socket, and `aar submit` run inside it. The submission is
// recorded; the lab's TCP port is unreachable from the same sandbox.
func TestSandboxSubmitsToLab(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)")
	}
	data := t.TempDir()
	view := importChat(t, data)
	bin := buildAar(t)
	l, admin := newLab(t, data)
	sock := filepath.Join(t.TempDir(), "lab.sock")
	addr := serveLab(t, l, sock)
	t.Setenv("AAR_LAB", "http://"+addr.String())
	t.Setenv("AAR_TOKEN", admin)
	if code, _, errs := aar(t, data, "lab", "campaign", "create", "--id", "c1", "--testbed", "chat"); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := aar(t, data, "lab", "token", "create", "--researcher", "alice", "--campaign", "c1")
	tok := strings.TrimSpace(out)
	if code != 0 {
		t.Fatal(errs)
	}

	b := &bwrap.Backend{Root: filepath.Join(t.TempDir(), "sandboxes")}
	s, err := b.Create(context.Background(), sandbox.Spec{ID: "alice", Data: view, LabSocket: sock, AarBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy(context.Background())
	lines, _ := jsonl.ReadFile(filepath.Join(view, "test.jsonl"), jsonl.Limits{})
	var preds strings.Builder
	for i, ln := range lines {
		fmt.Fprintf(&preds, "{\"id\":%s,\"label\":%d}\n", ln.Fields["id"], i%2)
	}
	if err := s.WriteFile("42.jsonl", []byte(preds.String())); err != nil {
		t.Fatal(err)
	}
	res, err := s.Exec(context.Background(), sandbox.ExecRequest{
		Shell:   fmt.Sprintf(`aar submit 42.jsonl --note "from a sandbox"; echo rc=$?; AAR_LAB=http://%s aar submit 42.jsonl 2>&1; echo tcp-rc=$?`, addr),
		Env:     []string{"AAR_TOKEN=" + tok},
		Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := string(res.Stdout)
	if !strings.Contains(got, `"id": "sub_`) || !strings.Contains(got, "rc=0") || strings.Contains(got, "tcp-rc=0") {
		t.Fatalf("submit from the sandbox:\n%s\n%s", got, res.Stderr)
	}
	// The lab recorded it.
	t.Setenv("AAR_LAB", "unix://"+sock)
	if code, out, errs := aar(t, data, "leaderboard", "--campaign", "c1", "--json"); code != 0 || !strings.Contains(out, "alice") {
		t.Errorf("leaderboard after a sandboxed submission: %d %s %s", code, out, errs)
	}
}
