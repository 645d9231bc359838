package bwrap

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

func needBwrap(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)")
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("cgroup and workspace-size limits need root")
	}
}

// newBox creates a sandbox with a data dir, a shared dir and a host canary
// outside every mount.
func newBox(t *testing.T, lim sandbox.Limits) (sandbox.Sandbox, string) {
	t.Helper()
	needBwrap(t)
	root := t.TempDir()
	data := filepath.Join(root, "public")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "test.jsonl"), []byte(`{"id":"t1","text":"x"}`+"\n"), 0o644)
	canary := filepath.Join(root, "private", "labels.jsonl")
	os.MkdirAll(filepath.Dir(canary), 0o700)
	os.WriteFile(canary, []byte("CANARY-LABEL-42\n"), 0o600)
	b := &Backend{Root: filepath.Join(root, "sandboxes")}
	s, err := b.Create(context.Background(), sandbox.Spec{ID: "box1", Data: data, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destroy(context.Background()) })
	return s, canary
}

func run(t *testing.T, s sandbox.Sandbox, sh string, timeout time.Duration) *sandbox.ExecResult {
	t.Helper()
	res, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: sh, Timeout: timeout})
	if err != nil {
		t.Fatalf("exec %q: %v", sh, err)
	}
	return res
}

func TestExecBasics(t *testing.T) {
	s, _ := newBox(t, sandbox.Limits{})
	res := run(t, s, "echo hello; echo oops >&2; exit 3", 0)
	if res.ExitCode != 3 || string(res.Stdout) != "hello\n" || string(res.Stderr) != "oops\n" {
		t.Fatalf("result %+v", res)
	}
	r, err := s.Exec(context.Background(), sandbox.ExecRequest{Argv: []string{"cat"}, Stdin: []byte("in"), Env: []string{"X=1"}})
	if err != nil || string(r.Stdout) != "in" {
		t.Fatalf("stdin: %+v %v", r, err)
	}
	if r := run(t, s, `echo "$X $HOME $(pwd) $(id -u)"`, 0); string(r.Stdout) != " /workspace /workspace 1000\n" {
		t.Errorf("environment: %q", r.Stdout)
	}
	// The workspace persists between commands and is reachable from the host.
	run(t, s, "echo kept > notes.txt", 0)
	if b, err := s.ReadFile("notes.txt"); err != nil || string(b) != "kept\n" {
		t.Errorf("ReadFile: %q %v", b, err)
	}
	if err := s.WriteFile("in/put.txt", []byte("from host")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, s, "cat in/put.txt; cat /data/test.jsonl", 0); !strings.Contains(string(r.Stdout), "from host") || !strings.Contains(string(r.Stdout), `"t1"`) {
		t.Errorf("files: %q", r.Stdout)
	}
	if _, err := s.ReadFile("../../etc/passwd"); err != nil {
		t.Logf("escape refused: %v", err)
	}
	if _, err := s.ReadFile("../private/labels.jsonl"); err == nil {
		t.Error("ReadFile left the workspace")
	}
	if r := run(t, s, "python3 -c 'import numpy, scipy, sklearn; print(numpy.ones(3).sum())'", time.Minute); r.ExitCode != 0 || !strings.Contains(string(r.Stdout), "3.0") {
		t.Logf("cpu profile python (needs Debian python3-numpy/scipy/sklearn): %d %s %s", r.ExitCode, r.Stdout, r.Stderr)
	}
}

// The attack battery: each attack is contained with a concrete outcome.
func TestAttacks(t *testing.T) {
	s, canary := newBox(t, sandbox.Limits{OutputBytes: 1 << 20})

	t.Run("read a canary by path", func(t *testing.T) {
		r := run(t, s, "cat "+canary+"; ls "+filepath.Dir(filepath.Dir(canary)), 0)
		if r.ExitCode == 0 || strings.Contains(string(r.Stdout), "CANARY") {
			t.Errorf("read the canary: %+v", r)
		}
	})
	t.Run("find source data on disk", func(t *testing.T) {
		// Go source trees, R data packages and dataset packages are absent
		// or empty.
		r := run(t, s, "find /usr/local/go /usr/share/datasets /usr/lib/go* /usr/lib/R /usr/share/metamath /root /home -type f 2>/dev/null | wc -l; find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o \\( -name '*.go' -o -name 'labels.jsonl' -o -name '*idx*-ubyte*' -o -name 'set.mm' -o -name 'Rdata.rdb' \\) -print 2>/dev/null | wc -l", time.Minute)
		if strings.Fields(string(r.Stdout))[0] != "0" || strings.Fields(string(r.Stdout))[1] != "0" {
			t.Errorf("source trees or data visible: %q", r.Stdout)
		}
		if r := run(t, s, "grep -rl CANARY-LABEL /data /workspace /tmp /run /etc 2>/dev/null | head -3", time.Minute); strings.TrimSpace(string(r.Stdout)) != "" {
			t.Errorf("grep found the canary at %q", r.Stdout)
		}
	})
	t.Run("network", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "reached") }))
		port := ln.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		uport := udp.LocalAddr().(*net.UDPAddr).Port
		r := run(t, s, fmt.Sprintf(`python3 -c "
import socket
for host in ['127.0.0.1', '10.0.0.1']:
    try:
        socket.create_connection((host, %d), timeout=2); print('connected', host)
    except OSError as e:
        print('refused', host)
try:
    socket.getaddrinfo('example.com', 80); print('dns ok')
except OSError:
    print('no dns')
for host in ['127.0.0.1', '10.0.0.1']:
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
		r := run(t, s, "touch /usr/bin/x 2>&1; touch /data/x 2>&1; touch /x 2>&1; echo done", 0)
		if n := strings.Count(string(r.Stdout), "ouch"); n < 3 {
			t.Errorf("wrote outside: %q", r.Stdout)
		}
	})
	t.Run("escape through /proc/1/root and symlinks", func(t *testing.T) {
		r := run(t, s, "ls /proc/1/root"+filepath.Dir(canary)+" 2>&1; ln -s "+canary+" l; cat l 2>&1", 0)
		if strings.Contains(string(r.Stdout), "CANARY") {
			t.Errorf("escaped: %q", r.Stdout)
		}
		if _, err := s.ReadFile("l"); err == nil {
			t.Error("the host followed a sandbox symlink")
		}
	})
	t.Run("10 GB to stdout", func(t *testing.T) {
		r := run(t, s, "head -c 10000000000 /dev/zero", 30*time.Second)
		if len(r.Stdout) > 1<<20+200 || (r.StdoutDropped == 0 && !r.TimedOut) {
			t.Errorf("output not capped: kept %d, dropped %d", len(r.Stdout), r.StdoutDropped)
		}
	})
	t.Run("outlive the command", func(t *testing.T) {
		r := run(t, s, "(sleep 1000 &) ; setsid sleep 1000 & sleep 1000", time.Second)
		if !r.TimedOut || !strings.Contains(string(r.Stderr), "timeout") {
			t.Errorf("timeout: %+v", r)
		}
		if b := s.(*box); b.cg != nil && len(b.cg.paths) > 0 && b.cg.alive() != 0 {
			t.Errorf("%d processes survived the timeout", b.cg.alive())
		}
		if out, _ := exec.Command("pgrep", "-f", "sleep 1000").Output(); len(out) > 0 {
			t.Errorf("sleep 1000 still running on the host: %s", out)
		}
	})
	t.Run("signal or ptrace the host", func(t *testing.T) {
		r := run(t, s, fmt.Sprintf("kill -9 %d 2>&1; echo rc=$?", os.Getpid()), 0)
		if !strings.Contains(string(r.Stdout), "rc=1") {
			t.Errorf("killed the host process? %q", r.Stdout)
		}
		// PTRACE_ATTACH (16) to the host's pid, and to every pid the
		// sandbox can see outside its own shell: none is a host process.
		r = run(t, s, fmt.Sprintf(`python3 -c "
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print('attach', libc.ptrace(16, %d, 0, 0), ctypes.get_errno())
print('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
"`, os.Getpid()), time.Minute)
		if !strings.Contains(string(r.Stdout), "attach -1 3") { // ESRCH: no such process
			t.Errorf("ptrace of the host: %q %q", r.Stdout, r.Stderr)
		}
		if strings.Contains(string(r.Stdout), fmt.Sprintf(" %d,", os.Getpid())) || strings.Contains(string(r.Stdout), fmt.Sprintf(" %d]", os.Getpid())) {
			t.Errorf("the host's pid is visible: %q", r.Stdout)
		}
	})
	t.Run("change the clock", func(t *testing.T) {
		r := run(t, s, "date -s '2000-01-01' 2>&1; echo rc=$?", 0)
		if !strings.Contains(string(r.Stdout), "rc=1") || time.Now().Year() < 2020 {
			t.Errorf("changed the clock: %q", r.Stdout)
		}
	})
}

func TestResourceLimits(t *testing.T) {
	needRoot(t)
	s, _ := newBox(t, sandbox.Limits{MemoryBytes: 128 << 20, Pids: 64, WorkspaceBytes: 8 << 20, TmpBytes: 4 << 20})
	if w := s.Warnings(); len(w) > 0 {
		t.Fatalf("limits not enforced as root: %v", w)
	}
	// A lab-like server on the host must keep answering through every bomb.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "serving") }))
	defer srv.Close()
	defer func() {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Errorf("the lab stopped serving: %v", err)
			return
		}
		resp.Body.Close()
	}()
	t.Run("memory bomb", func(t *testing.T) {
		r := run(t, s, "python3 -c 'x = bytearray(512 << 20); print(len(x))'", time.Minute)
		if r.ExitCode == 0 {
			t.Errorf("allocated 512 MiB under a 128 MiB limit: %+v", r)
		}
	})
	t.Run("fork bomb", func(t *testing.T) {
		// The shell cannot fork past the pids limit (dash gives up); the
		// cgroup counts the refused forks, and the sandbox still works.
		r := run(t, s, `for i in $(seq 1 500); do sleep 30 >/dev/null 2>&1 & done`, 20*time.Second)
		b := s.(*box)
		refused := 0
		for _, p := range b.cg.paths {
			if ev, err := os.ReadFile(filepath.Join(p, "pids.events")); err == nil {
				fmt.Sscanf(string(ev), "max %d", &refused)
			}
		}
		if refused == 0 {
			t.Errorf("no fork was refused (exit %d, %q)", r.ExitCode, r.Stderr)
		}
		if r := run(t, s, "echo alive", 0); string(r.Stdout) != "alive\n" || b.cg.alive() != 0 {
			t.Errorf("after the bomb: %q, %d processes left", r.Stdout, b.cg.alive())
		}
	})
	t.Run("fill the workspace and /tmp", func(t *testing.T) {
		r := run(t, s, "dd if=/dev/zero of=big bs=1M count=64 2>&1 | grep 'No space'; dd if=/dev/zero of=/tmp/big bs=1M count=64 2>&1 | grep 'No space'; rm -f big /tmp/big", time.Minute)
		if strings.Count(string(r.Stdout), "No space left") != 2 {
			t.Errorf("filled beyond the limits: %q", r.Stdout)
		}
	})
	t.Run("destroy leaves nothing", func(t *testing.T) {
		b := s.(*box)
		run(t, s, "setsid sleep 1000 &", 2*time.Second)
		if err := s.Destroy(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
			t.Errorf("sandbox directory left: %v", err)
		}
		for _, p := range b.cg.paths {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("cgroup %s left", p)
			}
		}
		if _, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: "true"}); err == nil {
			t.Error("a destroyed sandbox ran a command")
		}
	})
}

// TestExecCPU: a command's CPU time is counted, including a child it left
// running in the background until the command ended.
func TestExecCPU(t *testing.T) {
	s, _ := newBox(t, sandbox.Limits{})
	for _, w := range s.Warnings() {
		if strings.Contains(w, "cgroup") {
			t.Skipf("CPU accounting needs cgroups (root): %s", w)
		}
	}
	busy := `i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done`
	two := "(" + busy + ") & " + busy + "; wait"
	// The same command on the host as the yardstick: CPU time does not
	// stretch when the machine is busy the way wall time does. Were the
	// background loop not counted, the sandbox would show about half.
	host := exec.Command("/bin/sh", "-c", two)
	if err := host.Run(); err != nil {
		t.Fatal(err)
	}
	ru := host.ProcessState.SysUsage().(*syscall.Rusage)
	hostCPU := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	res := run(t, s, two, time.Minute)
	if ratio := float64(res.CPU) / float64(hostCPU); ratio < 0.65 || ratio > 1.6 {
		t.Fatalf("CPU %s for two busy loops in the sandbox; %s on the host (ratio %.2f)", res.CPU, hostCPU, ratio)
	}
	idle := run(t, s, "sleep 0.3", time.Minute)
	if idle.CPU > 200*time.Millisecond {
		t.Errorf("sleep 0.3 counted %s of CPU", idle.CPU)
	}
	t.Logf("busy: CPU %s over %s wall; sleep: CPU %s", res.CPU, res.Duration, idle.CPU)
}

// TestNoInheritedDescriptors: a descriptor this process inherited without
// close-on-exec does not reach a sandbox.
func TestNoInheritedDescriptors(t *testing.T) {
	needBwrap(t)
	b := &Backend{Root: filepath.Join(t.TempDir(), "sandboxes")}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// Clear close-on-exec, as a shell's stray descriptor would be.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), syscall.F_SETFD, 0); errno != 0 {
		t.Fatal(errno)
	}
	cloexecOnce = sync.Once{}
	sb, err := b.Create(context.Background(), sandbox.Spec{ID: "fds"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy(context.Background())
	res, err := sb.Exec(context.Background(), sandbox.ExecRequest{Shell: "ls /proc/self/fd"})
	if err != nil {
		t.Fatal(err)
	}
	if fds := strings.Fields(string(res.Stdout)); slices.Contains(fds, strconv.Itoa(int(w.Fd()))) {
		t.Errorf("descriptor %d reached the sandbox: /proc/self/fd holds %v", w.Fd(), fds)
	}
}
