package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseLimits(t *testing.T) {
	l, err := parseLimits("memory=512M, pids=64,timeout=30s,workspace=1G,files=100")
	if err != nil {
		t.Fatal(err)
	}
	if l.MemoryBytes != 512<<20 || l.Pids != 64 || l.CommandTimeout.Seconds() != 30 || l.WorkspaceBytes != 1<<30 || l.OpenFiles != 100 {
		t.Errorf("parsed %+v", l)
	}
	for in, want := range map[string]int64{"512M": 512 << 20, "512m": 512 << 20, "2Gi": 2 << 30, "64KiB": 64 << 10, "1MB": 1 << 20, "4096": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"memory", "memory=-1", "memory=lots", "memory=1T", "memory=B", "memory=99999999999G", "disk=1G", "timeout=soon"} {
		if _, err := parseLimits(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// TestSandboxRunCLI runs `aar sandbox run` on an imported testbed: the public
// view is at /data, the sealed labels are not, and bad limits are refused
// before anything is created.
func TestSandboxRunCLI(t *testing.T) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)")
	}
	data := t.TempDir()
	if code, out, errs := aar(t, data, "testbed", "import", filepath.Join(fixture, "labeled_data", "chat"),
		"--name", "chat", "--cache", filepath.Join(fixture, "cache_results")); code != exitOK {
		t.Fatalf("import: exit %d %s %s", code, out, errs)
	}
	code, out, errs := aar(t, data, "sandbox", "run", "--testbed", "chat", "--limits", "memory=256M,timeout=20s",
		"--", "sh", "-c", "ls /data; id -u; cat /data/test.jsonl")
	if code != exitOK {
		t.Fatalf("sandbox run: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "test.jsonl") || !strings.Contains(out, "\n1000\n") || !strings.Contains(errs, "exit 0") {
		t.Errorf("sandbox run output:\n%s\n%s", out, errs)
	}
	if strings.Contains(out, `"label"`) {
		t.Errorf("the sandbox's test set carries labels:\n%s", out)
	}
	// The private store, by its host paths: every file in it is unreachable.
	var private []string
	filepath.WalkDir(filepath.Join(data, "testbeds"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			private = append(private, p)
		}
		return nil
	})
	if len(private) == 0 {
		t.Fatal("no private store files to attack")
	}
	code, out, _ = aar(t, data, "sandbox", "run", "--testbed", "chat", "--", "sh", "-c", "cat "+strings.Join(private, " ")+" 2>/dev/null; ls "+data+" 2>/dev/null; true")
	if code != exitOK || strings.TrimSpace(out) != "" {
		t.Errorf("the private store from a sandbox: exit %d %q", code, out)
	}
	// --keep leaves the workspace for inspection; rm removes it.
	code, _, errs = aar(t, data, "sandbox", "run", "--testbed", "chat", "--keep", "--", "sh", "-c", "echo result > out.txt")
	if code != exitOK || !strings.Contains(errs, "aar sandbox rm run-") {
		t.Fatalf("--keep: exit %d %s", code, errs)
	}
	kept := strings.Fields(errs[strings.Index(errs, "aar sandbox rm ")+len("aar sandbox rm "):])[0]
	if b, err := os.ReadFile(filepath.Join(data, "sandboxes", kept, "workspace", "out.txt")); err != nil || string(b) != "result\n" {
		t.Errorf("kept workspace: %q %v", b, err)
	}
	if code, out, errs := aar(t, data, "sandbox", "rm", kept); code != exitOK || !strings.Contains(out, "removed") {
		t.Errorf("rm: exit %d %s %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(data, "sandboxes", kept)); !os.IsNotExist(err) {
		t.Errorf("rm left the sandbox: %v", err)
	}
	if code, _, errs := aar(t, data, "sandbox", "rm", kept); code == exitOK || !strings.Contains(errs, "no sandbox") {
		t.Errorf("rm twice: exit %d %s", code, errs)
	}
	if code, _, errs = aar(t, data, "sandbox", "run", "--testbed", "chat", "--", "sh", "-c", "exit 3"); code == exitOK || !strings.Contains(errs, "exited 3") {
		t.Errorf("failing command: exit %d %s", code, errs)
	}
	if code, _, errs = aar(t, data, "sandbox", "run", "--testbed", "chat", "--limits", "timeout=1s", "--", "sleep", "30"); code == exitOK || !strings.Contains(errs, "time limit") {
		t.Errorf("timeout: exit %d %s", code, errs)
	}
	if code, _, errs = aar(t, data, "sandbox", "run", "--testbed", "chat", "--limits", "disk=1G", "--", "true"); code != exitUsage || !strings.Contains(errs, "memory, cpu") {
		t.Errorf("bad limit: exit %d %s", code, errs)
	}
	if code, _, errs = aar(t, data, "sandbox", "run", "--testbed", "nope", "--", "true"); code == exitOK || !strings.Contains(errs, "nope") {
		t.Errorf("unknown testbed: exit %d %s", code, errs)
	}
	// A profile from DATA/sandbox-profiles.
	os.MkdirAll(filepath.Join(data, "sandbox-profiles"), 0o755)
	os.WriteFile(filepath.Join(data, "sandbox-profiles", "shell.json"), []byte(`{"name":"shell","read_only":["/usr/bin","/usr/lib","/usr/lib64"],"env":{"AAR_PROFILE":"shell"}}`), 0o644)
	if code, out, errs = aar(t, data, "sandbox", "run", "--testbed", "chat", "--profile", "shell", "--", "sh", "-c", "echo $AAR_PROFILE"); code != exitOK || out != "shell\n" {
		t.Errorf("--profile shell: exit %d %q %s", code, out, errs)
	}
	if code, _, errs = aar(t, data, "sandbox", "run", "--testbed", "chat", "--profile", "gpu", "--", "true"); code == exitOK || !strings.Contains(errs, "gpu.json") {
		t.Errorf("unknown profile: exit %d %s", code, errs)
	}
	code, out, _ = aar(t, data, "sandbox", "doctor", "--json")
	var checks []struct {
		Feature string
		OK      bool
	}
	if code != exitOK || json.Unmarshal([]byte(out), &checks) != nil || len(checks) < 3 || checks[0].Feature != "bubblewrap" || !checks[0].OK {
		t.Errorf("doctor --json: exit %d %s", code, out)
	}
}
