package bwrap

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

// TestNeighbours puts two sandboxes side by side under one backend, next to
// a lab-like HTTP server and a lab database file, and attacks from one: the
// other's workspace, the database and the shared forum copy are out of
// reach or read-only, and the server keeps answering throughout.
func TestNeighbours(t *testing.T) {
	needBwrap(t)
	root := t.TempDir()
	shared := filepath.Join(root, "shared")
	os.MkdirAll(shared, 0o755)
	os.WriteFile(filepath.Join(shared, "post-1.md"), []byte("a finding\n"), 0o644)
	labdb := filepath.Join(root, "lab", "lab.db")
	os.MkdirAll(filepath.Dir(labdb), 0o700)
	os.WriteFile(labdb, []byte("SQLite format 3\x00 LABDB-CANARY"), 0o600)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "serving") }))
	defer srv.Close()
	serving := func(t *testing.T) {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatalf("the lab stopped serving: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "serving" {
			t.Fatalf("the lab answered %q", b)
		}
	}

	b := &Backend{Root: filepath.Join(root, "sandboxes")}
	mk := func(id string) sandbox.Sandbox {
		s, err := b.Create(context.Background(), sandbox.Spec{ID: id, Shared: shared})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Destroy(context.Background()) })
		return s
	}
	a, other := mk("alice"), mk("bob")
	if err := other.WriteFile("secret.txt", []byte("BOB-SECRET")); err != nil {
		t.Fatal(err)
	}
	otherDir := other.(*box).dir

	t.Run("read another sandbox's workspace", func(t *testing.T) {
		r := run(t, a, fmt.Sprintf("cat %s/workspace/secret.txt %s/secret.txt 2>/dev/null; ls %s 2>/dev/null; grep -rls BOB-SECRET / --exclude-dir=proc --exclude-dir=sys 2>/dev/null | head -1", otherDir, otherDir, filepath.Dir(otherDir)), time.Minute)
		if out := strings.TrimSpace(string(r.Stdout)); out != "" {
			t.Errorf("reached the neighbour: %q", r.Stdout)
		}
		serving(t)
	})
	t.Run("read the lab database", func(t *testing.T) {
		r := run(t, a, "cat "+labdb+" 2>/dev/null; find / -name 'lab.db' -not -path '/proc/*' 2>/dev/null", time.Minute)
		if out := strings.TrimSpace(string(r.Stdout)); out != "" {
			t.Errorf("reached the lab database: %q", r.Stdout)
		}
		serving(t)
	})
	t.Run("shared is read-only", func(t *testing.T) {
		r := run(t, a, "cat /shared/post-1.md; echo forged > /shared/post-2.md 2>&1; rm /shared/post-1.md 2>&1; echo rc=$?", 0)
		if !strings.Contains(string(r.Stdout), "a finding") || !strings.Contains(string(r.Stdout), "rc=1") {
			t.Errorf("/shared: %q", r.Stdout)
		}
		if _, err := os.Stat(filepath.Join(shared, "post-2.md")); err == nil {
			t.Error("the sandbox wrote into the shared forum copy")
		}
		serving(t)
	})
	t.Run("the neighbour is intact", func(t *testing.T) {
		if got, err := other.ReadFile("secret.txt"); err != nil || string(got) != "BOB-SECRET" {
			t.Errorf("neighbour's file: %q %v", got, err)
		}
	})
}

// TestLifetime: a command cannot run past the sandbox's lifetime, and no
// command starts after it.
func TestLifetime(t *testing.T) {
	s, _ := newBox(t, sandbox.Limits{Lifetime: 1500 * time.Millisecond, CommandTimeout: time.Minute})
	t0 := time.Now()
	r := run(t, s, "sleep 30", 0)
	if !r.TimedOut || time.Since(t0) > 10*time.Second {
		t.Errorf("a command outran the lifetime: %+v after %s", r, time.Since(t0))
	}
	if _, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: "true"}); err == nil || !strings.Contains(err.Error(), "lifetime") {
		t.Errorf("exec after the lifetime: %v", err)
	}
}

// TestRlimits: open files and file size are limited without root, and no
// core dump is written.
func TestRlimits(t *testing.T) {
	s, _ := newBox(t, sandbox.Limits{OpenFiles: 32, FileBytes: 1 << 20})
	r := run(t, s, `python3 -c "
fs = []
try:
    for i in range(100):
        fs.append(open('/dev/null'))
except OSError as e:
    print('opened', len(fs), e.errno)
"; dd if=/dev/zero of=big bs=64K count=32 2>/dev/null; echo dd=$?; stat -c %s big; ulimit -c`, time.Minute)
	f := strings.Fields(string(r.Stdout))
	// errno 24 is EMFILE; dd dies of SIGXFSZ (128+25) at exactly 1 MiB.
	if len(f) != 6 || f[0] != "opened" || f[2] != "24" || f[3] != "dd=153" || f[4] != "1048576" || f[5] != "0" {
		t.Errorf("rlimits: %q %q", r.Stdout, r.Stderr)
	}
}

// TestHostFileAccess: the host's ReadFile and WriteFile cannot be led out
// of the workspace by links the sandbox makes, nor hung by a FIFO.
func TestHostFileAccess(t *testing.T) {
	s, canary := newBox(t, sandbox.Limits{})
	hostDir := filepath.Dir(canary)
	run(t, s, fmt.Sprintf("mkfifo pipe; ln -s %s out; ln -s %s leak; mkdir -p sub; ln -s ../notes.txt sub/back; echo kept > notes.txt", hostDir, canary), 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := s.ReadFile("pipe"); err == nil {
			t.Error("read a FIFO")
		}
		if err := s.WriteFile("pipe", []byte("x")); err == nil {
			t.Error("wrote a FIFO")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO in the workspace hung the host")
	}
	if b, err := s.ReadFile("leak"); err == nil {
		t.Errorf("followed a link out of the workspace: %q", b)
	}
	if err := s.WriteFile("out/pwned", []byte("x")); err == nil {
		t.Error("wrote through a link out of the workspace")
	}
	if _, err := os.Stat(filepath.Join(hostDir, "pwned")); err == nil {
		t.Error("a file appeared on the host outside the workspace")
	}
	// A link that stays inside the workspace is an ordinary path.
	if b, err := s.ReadFile("sub/back"); err != nil || string(b) != "kept\n" {
		t.Errorf("inside link: %q %v", b, err)
	}
	if err := s.WriteFile("../../x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.ReadFile("x"); err != nil || string(b) != "y" {
		t.Errorf("a path with .. is taken inside the workspace: %q %v", b, err)
	}
	if _, err := s.ReadFile(""); err == nil {
		t.Error("read the workspace directory as a file")
	}
}
