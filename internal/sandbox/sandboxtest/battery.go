// Package sandboxtest is the attack battery every sandbox backend must pass:
// the same commands, run through the sandbox interface, against the local
// (bubblewrap) backend and the Docker backend alike. Each attack is
// contained with a concrete, checked outcome. Backends add what only they
// can see (cgroup counters, host directories) through Harness hooks.
package sandboxtest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

// Harness is a backend under test.
type Harness struct {
	// New creates a sandbox (and registers its cleanup with t).
	New func(t *testing.T, spec sandbox.Spec) sandbox.Sandbox
	// Limits says the backend enforces memory, pids and workspace/tmp size
	// here (bwrap: as root); without it the resource-limit attacks skip.
	Limits bool
	// ForkRefused, when set, counts forks the pids limit refused.
	ForkRefused func(s sandbox.Sandbox) int
	// Alive, when set, counts processes of s still running (after a
	// command has returned there must be none).
	Alive func(s sandbox.Sandbox) int
	// AfterDestroy, when set, checks that nothing of s is left on the host.
	AfterDestroy func(t *testing.T, s sandbox.Sandbox)
	// HostDir, when set, is where s's workspace lives on the host (the
	// neighbour attack tries it by path).
	HostDir func(s sandbox.Sandbox) string
}

// Run runs the whole battery.
func Run(t *testing.T, h Harness) {
	t.Run("ExecBasics", func(t *testing.T) { execBasics(t, h) })
	t.Run("Attacks", func(t *testing.T) { attacks(t, h) })
	t.Run("ResourceLimits", func(t *testing.T) { resourceLimits(t, h) })
	t.Run("Neighbours", func(t *testing.T) { neighbours(t, h) })
	t.Run("Lifetime", func(t *testing.T) { lifetime(t, h) })
	t.Run("Rlimits", func(t *testing.T) { rlimits(t, h) })
	t.Run("HostFileAccess", func(t *testing.T) { hostFileAccess(t, h) })
	t.Run("LabSocketOnly", func(t *testing.T) { labSocketOnly(t, h) })
	t.Run("ReadTree", func(t *testing.T) { readTree(t, h) })
}

// readTree: a backend's bulk reader (sandbox.TreeReader) returns exactly
// the workspace's regular files, with their modes and contents, as ReadFile
// reads them one by one; links, FIFOs and what they point at are left out.
func readTree(t *testing.T, h Harness) {
	s, canary := box(t, h, "tree", sandbox.Limits{})
	tr, ok := s.(sandbox.TreeReader)
	if !ok {
		t.Skip("this backend reads files one by one (no TreeReader)")
	}
	Sh(t, s, "mkdir -p a/b && printf one > a/b/one.txt && printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod 755 run.sh && "+
		"head -c 300000 /dev/urandom > blob.bin && mkfifo pipe && ln -s "+canary+" leak && ln -s a/b/one.txt inside && touch empty", 0)
	files, err := tr.ReadTree(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]sandbox.File{}
	for _, f := range files {
		got[f.Path] = f
	}
	want := map[string]uint32{"a/b/one.txt": 0o644, "run.sh": 0o755, "blob.bin": 0o644, "empty": 0o644}
	if len(got) != len(want) {
		t.Errorf("ReadTree gave %d files, want %d: %v", len(got), len(want), slices.Sorted(maps.Keys(got)))
	}
	for p, mode := range want {
		f, ok := got[p]
		if !ok {
			t.Errorf("ReadTree lacks %s", p)
			continue
		}
		one, err := s.ReadFile(p)
		if err != nil || string(one) != string(f.Data) || f.Mode != mode {
			t.Errorf("%s: ReadTree %d bytes mode %o, ReadFile %d bytes (%v), want mode %o", p, len(f.Data), f.Mode, len(one), err, mode)
		}
	}
}

// Fixture writes, under root, a public view (root/public, one test row)
// and a canary label file outside it (root/private/labels.jsonl, mode 0600):
// what a sandbox gets at /data, and what it must never read.
func Fixture(t *testing.T, root string) (data, canary string) {
	t.Helper()
	data = filepath.Join(root, "public")
	canary = filepath.Join(root, "private", "labels.jsonl")
	for _, err := range []error{
		os.MkdirAll(data, 0o755),
		os.WriteFile(filepath.Join(data, "test.jsonl"), []byte(`{"id":"t1","text":"x"}`+"\n"), 0o644),
		os.MkdirAll(filepath.Dir(canary), 0o700),
		os.WriteFile(canary, []byte("CANARY-LABEL-42\n"), 0o600),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return data, canary
}

// box creates a sandbox with Fixture's public view at /data.
func box(t *testing.T, h Harness, id string, lim sandbox.Limits) (sandbox.Sandbox, string) {
	t.Helper()
	data, canary := Fixture(t, t.TempDir())
	return h.New(t, sandbox.Spec{ID: id, Data: data, Limits: lim}), canary
}

// Sh runs a shell command in s and fails the test if the sandbox fails.
func Sh(t *testing.T, s sandbox.Sandbox, sh string, timeout time.Duration) *sandbox.ExecResult {
	t.Helper()
	res, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: sh, Timeout: timeout})
	if err != nil {
		t.Fatalf("exec %q: %v", sh, err)
	}
	return res
}

func execBasics(t *testing.T, h Harness) {
	s, _ := box(t, h, "basics", sandbox.Limits{})
	res := Sh(t, s, "echo hello; echo oops >&2; exit 3", 0)
	if res.ExitCode != 3 || string(res.Stdout) != "hello\n" || string(res.Stderr) != "oops\n" {
		t.Fatalf("result %+v", res)
	}
	r, err := s.Exec(context.Background(), sandbox.ExecRequest{Argv: []string{"cat"}, Stdin: []byte("in"), Env: []string{"X=1"}})
	if err != nil || string(r.Stdout) != "in" {
		t.Fatalf("stdin: %+v %v", r, err)
	}
	if r := Sh(t, s, `echo "$X $HOME $(pwd) $(id -u)"`, 0); string(r.Stdout) != " /workspace /workspace 1000\n" {
		t.Errorf("environment: %q", r.Stdout)
	}
	if r, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: `echo "$X $(pwd)"`, Env: []string{"X=1"}, Dir: "/tmp"}); err != nil || string(r.Stdout) != "1 /tmp\n" {
		t.Errorf("env and dir: %+v %v", r, err)
	}
	// The workspace persists between commands and is reachable from the host.
	Sh(t, s, "echo kept > notes.txt", 0)
	if b, err := s.ReadFile("notes.txt"); err != nil || string(b) != "kept\n" {
		t.Errorf("ReadFile: %q %v", b, err)
	}
	if err := s.WriteFile("in/put.txt", []byte("from host")); err != nil {
		t.Fatal(err)
	}
	if r := Sh(t, s, "cat in/put.txt; cat /data/test.jsonl", 0); !strings.Contains(string(r.Stdout), "from host") || !strings.Contains(string(r.Stdout), `"t1"`) {
		t.Errorf("files: %q", r.Stdout)
	}
	if _, err := s.ReadFile("../private/labels.jsonl"); err == nil {
		t.Error("ReadFile left the workspace")
	}
	if r := Sh(t, s, "python3 -c 'import numpy, scipy, sklearn; print(numpy.ones(3).sum())'", time.Minute); r.ExitCode != 0 || !strings.Contains(string(r.Stdout), "3.0") {
		t.Errorf("cpu profile python (needs Debian python3-numpy/scipy/sklearn): %d %s %s", r.ExitCode, r.Stdout, r.Stderr)
	}
	// CPU time is counted, and an idle command counts little.
	busy := Sh(t, s, `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done`, time.Minute)
	idle := Sh(t, s, "sleep 0.3", time.Minute)
	if busy.CPU < 50*time.Millisecond || idle.CPU > 200*time.Millisecond {
		t.Errorf("CPU: busy loop %s, sleep %s", busy.CPU, idle.CPU)
	}
}

func attacks(t *testing.T, h Harness) {
	s, canary := box(t, h, "attacks", sandbox.Limits{OutputBytes: 1 << 20})

	t.Run("read a canary by path", func(t *testing.T) {
		r := Sh(t, s, "cat "+canary+"; ls "+filepath.Dir(filepath.Dir(canary)), 0)
		if r.ExitCode == 0 || strings.Contains(string(r.Stdout), "CANARY") {
			t.Errorf("read the canary: %+v", r)
		}
	})
	t.Run("find source data on disk", func(t *testing.T) {
		// Go source trees, R data packages and dataset packages are absent
		// or empty.
		r := Sh(t, s, "find /usr/local/go /usr/share/datasets /usr/lib/go* /usr/lib/R /usr/share/metamath /root /home -type f 2>/dev/null | wc -l; find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o \\( -name '*.go' -o -name 'labels.jsonl' -o -name '*idx*-ubyte*' -o -name 'set.mm' -o -name 'Rdata.rdb' \\) -print 2>/dev/null | wc -l", time.Minute)
		if f := strings.Fields(string(r.Stdout)); len(f) != 2 || f[0] != "0" || f[1] != "0" {
			t.Errorf("source trees or data visible: %q", r.Stdout)
		}
		if r := Sh(t, s, "grep -rl CANARY-LABEL /data /workspace /tmp /run /etc 2>/dev/null | head -3", time.Minute); strings.TrimSpace(string(r.Stdout)) != "" {
			t.Errorf("grep found the canary at %q", r.Stdout)
		}
	})
	t.Run("network", func(t *testing.T) {
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "reached") }))
		port := ln.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		uport := udp.LocalAddr().(*net.UDPAddr).Port
		// The host as a container would see it too (the default bridge's
		// gateway), besides loopback and an outside address.
		r := Sh(t, s, fmt.Sprintf(`python3 -c "
import socket
for host in ['127.0.0.1', '172.17.0.1', '10.0.0.1']:
    try:
        socket.create_connection((host, %d), timeout=2); print('connected', host)
    except OSError as e:
        print('refused', host)
try:
    socket.getaddrinfo('example.com', 80); print('dns ok')
except OSError:
    print('no dns')
for host in ['127.0.0.1', '172.17.0.1', '10.0.0.1']:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'LEAK', (host, %d))
    except OSError:
        pass
"`, port, uport), time.Minute)
		out := string(r.Stdout)
		if strings.Contains(out, "connected") || strings.Contains(out, "dns ok") || !strings.Contains(out, "no dns") {
			t.Errorf("network from the sandbox: %q %q", out, r.Stderr)
		}
		udp.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, from, err := udp.ReadFrom(make([]byte, 16)); err == nil {
			t.Errorf("a UDP datagram (%d bytes from %v) reached the host", n, from)
		}
	})
	t.Run("write outside the workspace", func(t *testing.T) {
		r := Sh(t, s, "touch /usr/bin/x 2>&1; touch /data/x 2>&1; touch /x 2>&1; echo done", 0)
		if n := strings.Count(string(r.Stdout), "ouch"); n < 3 {
			t.Errorf("wrote outside: %q", r.Stdout)
		}
	})
	t.Run("escape through /proc/1/root and symlinks", func(t *testing.T) {
		r := Sh(t, s, "ls /proc/1/root"+filepath.Dir(canary)+" 2>&1; cat /proc/1/root"+canary+" 2>&1; ln -s "+canary+" l; cat l 2>&1", 0)
		if strings.Contains(string(r.Stdout), "CANARY") {
			t.Errorf("escaped: %q", r.Stdout)
		}
		if _, err := s.ReadFile("l"); err == nil {
			t.Error("the host followed a sandbox symlink")
		}
	})
	t.Run("10 GB to stdout", func(t *testing.T) {
		r := Sh(t, s, "head -c 10000000000 /dev/zero", 30*time.Second)
		if len(r.Stdout) > 1<<20+200 || (r.StdoutDropped == 0 && !r.TimedOut) {
			t.Errorf("output not capped: kept %d, dropped %d", len(r.Stdout), r.StdoutDropped)
		}
	})
	t.Run("outlive the command", func(t *testing.T) {
		// A duration no other test process sleeps, so the host-side check
		// sees only this battery's processes.
		long := fmt.Sprintf("sleep %d", 100000+os.Getpid()%100000)
		r := Sh(t, s, fmt.Sprintf("(%[1]s &) ; setsid %[1]s & nohup %[1]s >/dev/null 2>&1 & %[1]s", long), time.Second)
		if !r.TimedOut || !strings.Contains(string(r.Stderr), "timeout") {
			t.Errorf("timeout: %+v", r)
		}
		if h.Alive != nil {
			if n := h.Alive(s); n != 0 {
				t.Errorf("%d processes survived the timeout", n)
			}
		}
		// Seen from the sandbox itself, and from the host.
		if r := Sh(t, s, "ps -eo args | grep -c '^"+long+"'", 0); strings.TrimSpace(string(r.Stdout)) != "0" {
			t.Errorf("%s survived in the sandbox: %q", long, r.Stdout)
		}
		if out, _ := exec.Command("pgrep", "-f", long).Output(); len(out) > 0 {
			t.Errorf("%s still running on the host: %s", long, out)
		}
		// Nor does a background process outlive a command that ends well.
		Sh(t, s, "setsid "+long+" >/dev/null 2>&1 &", 0)
		if r := Sh(t, s, "ps -eo args | grep -c '^"+long+"'", 0); strings.TrimSpace(string(r.Stdout)) != "0" {
			t.Errorf("a background sleep survived its command: %q", r.Stdout)
		}
		if out, _ := exec.Command("pgrep", "-f", long).Output(); len(out) > 0 {
			t.Errorf("a background %s still running on the host: %s", long, out)
		}
	})
	t.Run("signal or ptrace the host", func(t *testing.T) {
		r := Sh(t, s, fmt.Sprintf("kill -9 %d 2>&1; echo rc=$?", os.Getpid()), 0)
		if !strings.Contains(string(r.Stdout), "rc=1") {
			t.Errorf("killed the host process? %q", r.Stdout)
		}
		// PTRACE_ATTACH (16) to the host's pid, and to every process the
		// sandbox can see that is not the researcher's own: none is a host
		// process, and none may be traced.
		r = Sh(t, s, fmt.Sprintf(`python3 -c "
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print('attach', libc.ptrace(16, %d, 0, 0), ctypes.get_errno())
me = os.getpid()
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
print('pids', pids)
others = [p for p in pids if os.stat('/proc/%%d' %% p).st_uid != os.getuid()]
print('traced', [p for p in others if libc.ptrace(16, p, 0, 0) == 0])
"`, os.Getpid()), time.Minute)
		if !strings.Contains(string(r.Stdout), "attach -1 3") { // ESRCH: no such process
			t.Errorf("ptrace of the host: %q %q", r.Stdout, r.Stderr)
		}
		if !strings.Contains(string(r.Stdout), "traced []") {
			t.Errorf("traced a process: %q %q", r.Stdout, r.Stderr)
		}
		if strings.Contains(string(r.Stdout), fmt.Sprintf(" %d,", os.Getpid())) || strings.Contains(string(r.Stdout), fmt.Sprintf(" %d]", os.Getpid())) {
			t.Errorf("the host's pid is visible: %q", r.Stdout)
		}
	})
	t.Run("change the clock", func(t *testing.T) {
		r := Sh(t, s, "date -s '2000-01-01' 2>&1; echo rc=$?", 0)
		if !strings.Contains(string(r.Stdout), "rc=1") || time.Now().Year() < 2020 {
			t.Errorf("changed the clock: %q", r.Stdout)
		}
	})
	t.Run("become root", func(t *testing.T) {
		r := Sh(t, s, "su -c id root </dev/null 2>&1; sudo id 2>&1; python3 -c 'import os; os.setuid(0)' 2>&1 | tail -1; mount -t tmpfs x /tmp 2>&1; echo uid=$(id -u)", 0)
		if strings.Contains(string(r.Stdout), "uid=0") {
			t.Errorf("became root: %q", r.Stdout)
		}
	})
}

// serving starts a lab-like HTTP server on the host; the returned check
// fails the test if it stopped answering.
func serving(t *testing.T) func() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "serving") }))
	t.Cleanup(srv.Close)
	return func() {
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
}

func resourceLimits(t *testing.T, h Harness) {
	if !h.Limits {
		t.Skip("this backend enforces memory, pids and size limits only as root")
	}
	s, _ := box(t, h, "limits", sandbox.Limits{MemoryBytes: 128 << 20, Pids: 64, WorkspaceBytes: 8 << 20, TmpBytes: 4 << 20})
	if w := s.Warnings(); len(w) > 0 {
		t.Fatalf("limits not enforced: %v", w)
	}
	// A lab-like server on the host must keep answering through every bomb.
	check := serving(t)
	defer check()
	t.Run("memory bomb", func(t *testing.T) {
		r := Sh(t, s, "python3 -c 'x = bytearray(512 << 20); print(len(x))'", time.Minute)
		if r.ExitCode == 0 {
			t.Errorf("allocated 512 MiB under a 128 MiB limit: %+v", r)
		}
	})
	t.Run("fork bomb", func(t *testing.T) {
		// The shell cannot fork past the pids limit; the sandbox still
		// works afterwards and nothing of the bomb is left.
		r := Sh(t, s, `for i in $(seq 1 500); do sleep 30 >/dev/null 2>&1 & done; echo started; ps -e | wc -l`, 20*time.Second)
		if h.ForkRefused != nil && h.ForkRefused(s) == 0 {
			t.Errorf("no fork was refused (exit %d, %q)", r.ExitCode, r.Stderr)
		}
		if f := strings.Fields(string(r.Stdout)); len(f) == 2 {
			if n, _ := strconv.Atoi(f[1]); n > 65 {
				t.Errorf("%d processes under a limit of 64", n)
			}
		}
		if r := Sh(t, s, "echo alive; ps -e | grep -c '[s]leep 30'", 0); string(r.Stdout) != "alive\n0\n" {
			t.Errorf("after the bomb: %q", r.Stdout)
		}
		if h.Alive != nil && h.Alive(s) != 0 {
			t.Errorf("%d processes left after the bomb", h.Alive(s))
		}
	})
	t.Run("fill the workspace and /tmp", func(t *testing.T) {
		r := Sh(t, s, "dd if=/dev/zero of=big bs=1M count=64 2>&1 | grep 'No space'; dd if=/dev/zero of=/tmp/big bs=1M count=64 2>&1 | grep 'No space'; rm -f big /tmp/big", time.Minute)
		if strings.Count(string(r.Stdout), "No space left") != 2 {
			t.Errorf("filled beyond the limits: %q", r.Stdout)
		}
	})
	t.Run("destroy leaves nothing", func(t *testing.T) {
		Sh(t, s, "setsid sleep 1000 &", 2*time.Second)
		if err := s.Destroy(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Destroy(context.Background()); err != nil {
			t.Errorf("a second Destroy: %v", err)
		}
		if h.AfterDestroy != nil {
			h.AfterDestroy(t, s)
		}
		if _, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: "true"}); err == nil {
			t.Error("a destroyed sandbox ran a command")
		}
	})
}

// neighbours puts two sandboxes side by side, next to a lab-like server and
// a lab database file, and attacks from one.
func neighbours(t *testing.T, h Harness) {
	root := t.TempDir()
	shared := filepath.Join(root, "shared")
	os.MkdirAll(shared, 0o755)
	os.WriteFile(filepath.Join(shared, "post-1.md"), []byte("a finding\n"), 0o644)
	labdb := filepath.Join(root, "lab", "lab.db")
	os.MkdirAll(filepath.Dir(labdb), 0o700)
	os.WriteFile(labdb, []byte("SQLite format 3\x00 LABDB-CANARY"), 0o600)
	check := serving(t)
	a := h.New(t, sandbox.Spec{ID: "alice", Shared: shared})
	other := h.New(t, sandbox.Spec{ID: "bob", Shared: shared})
	if err := other.WriteFile("secret.txt", []byte("BOB-SECRET")); err != nil {
		t.Fatal(err)
	}
	// By path where the backend keeps the neighbour's files on this host,
	// and by content anywhere the sandbox can read.
	byPath := ""
	if h.HostDir != nil {
		d := h.HostDir(other)
		byPath = fmt.Sprintf("cat %[1]s/workspace/secret.txt %[1]s/secret.txt 2>/dev/null; ls %[2]s 2>/dev/null; ", d, filepath.Dir(d))
	}

	t.Run("read another sandbox's workspace", func(t *testing.T) {
		r := Sh(t, a, byPath+"grep -rls BOB-SECRET / --exclude-dir=proc --exclude-dir=sys 2>/dev/null | head -1", 2*time.Minute)
		if out := strings.TrimSpace(string(r.Stdout)); out != "" {
			t.Errorf("reached the neighbour: %q", r.Stdout)
		}
		check()
	})
	t.Run("read the lab database", func(t *testing.T) {
		r := Sh(t, a, "cat "+labdb+" 2>/dev/null; find / -name 'lab.db' -not -path '/proc/*' 2>/dev/null", time.Minute)
		if out := strings.TrimSpace(string(r.Stdout)); out != "" {
			t.Errorf("reached the lab database: %q", r.Stdout)
		}
		check()
	})
	t.Run("shared is read-only", func(t *testing.T) {
		r := Sh(t, a, "cat /shared/post-1.md; echo forged > /shared/post-2.md 2>&1; rm /shared/post-1.md 2>&1; echo rc=$?", 0)
		if !strings.Contains(string(r.Stdout), "a finding") || !strings.Contains(string(r.Stdout), "rc=1") {
			t.Errorf("/shared: %q", r.Stdout)
		}
		if _, err := os.Stat(filepath.Join(shared, "post-2.md")); err == nil {
			t.Error("the sandbox wrote into the shared forum copy")
		}
		check()
	})
	t.Run("the neighbour is intact", func(t *testing.T) {
		if got, err := other.ReadFile("secret.txt"); err != nil || string(got) != "BOB-SECRET" {
			t.Errorf("neighbour's file: %q %v", got, err)
		}
	})
}

// lifetime: a command cannot run past the sandbox's lifetime, and no
// command starts after it.
func lifetime(t *testing.T, h Harness) {
	s, _ := box(t, h, "lifetime", sandbox.Limits{Lifetime: 3 * time.Second, CommandTimeout: time.Minute})
	t0 := time.Now()
	r := Sh(t, s, "sleep 30", 0)
	if !r.TimedOut || time.Since(t0) > 15*time.Second {
		t.Errorf("a command outran the lifetime: %+v after %s", r, time.Since(t0))
	}
	time.Sleep(time.Until(t0.Add(3 * time.Second)))
	if _, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: "true"}); err == nil || !strings.Contains(err.Error(), "lifetime") {
		t.Errorf("exec after the lifetime: %v", err)
	}
}

// rlimits: open files and file size are limited, and no core dump is
// written.
func rlimits(t *testing.T, h Harness) {
	s, _ := box(t, h, "rlimits", sandbox.Limits{OpenFiles: 32, FileBytes: 1 << 20})
	r := Sh(t, s, `python3 -c "
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

// hostFileAccess: ReadFile and WriteFile cannot be led out of the workspace
// by links the sandbox makes, nor hung by a FIFO.
func hostFileAccess(t *testing.T, h Harness) {
	s, canary := box(t, h, "files", sandbox.Limits{})
	hostDir := filepath.Dir(canary)
	Sh(t, s, fmt.Sprintf("mkfifo pipe; ln -s %s out; ln -s %s leak; ln -s /etc/passwd etc; ln -s /data/test.jsonl data; mkdir -p sub; ln -s ../notes.txt sub/back; echo kept > notes.txt", hostDir, canary), 0)
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
	case <-time.After(20 * time.Second):
		t.Fatal("a FIFO in the workspace hung the host")
	}
	for _, p := range []string{"leak", "etc", "data"} {
		if b, err := s.ReadFile(p); err == nil {
			t.Errorf("followed a link out of the workspace (%s): %q", p, b)
		}
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

// labSocketOnly: the lab's Unix socket is the sandbox's one way out,
// reachable at /run/aar/lab.sock (AAR_LAB set), while the same server on
// TCP is not.
func labSocketOnly(t *testing.T, h Harness) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "lab.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o666)
	tln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	hd := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "lab says hi") })
	go http.Serve(uln, hd)
	go http.Serve(tln, hd)
	defer uln.Close()
	defer tln.Close()
	s := h.New(t, sandbox.Spec{ID: "sock", LabSocket: sock})
	res, err := s.Exec(context.Background(), sandbox.ExecRequest{Timeout: 30 * time.Second, Shell: fmt.Sprintf(`echo "$AAR_LAB"; python3 -c "
import socket
s = socket.socket(socket.AF_UNIX); s.connect('/run/aar/lab.sock')
s.sendall(b'GET / HTTP/1.0\r\n\r\n'); print(s.recv(4096).decode().split('\r\n\r\n')[-1])
for host in ['127.0.0.1', '172.17.0.1']:
    try:
        socket.create_connection((host, %d), timeout=2); print('tcp reached', host)
    except OSError:
        print('tcp refused')
"`, tln.Addr().(*net.TCPAddr).Port)})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Stdout)
	if !strings.Contains(out, "unix:///run/aar/lab.sock") || !strings.Contains(out, "lab says hi") || strings.Contains(out, "tcp reached") {
		t.Fatalf("socket test: %q %q", out, res.Stderr)
	}
}
