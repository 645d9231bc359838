package bwrap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
	"github.com/aar-lab/aar/internal/sandbox/sandboxtest"
)

// The test binary doubles as the label-free aar binary inside a sandbox: a
// Go program that starts the Go runtime and prints its version.
func init() {
	if os.Getenv("AAR_AUDIT_HELPER") == "version" {
		fmt.Println("aar (test helper)", runtime.Version())
		os.Exit(0)
	}
}

func needStrace(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace is not installed (apt-get install strace; .ci/run installs it)")
	}
	if _, err := exec.LookPath("bwrap"); err == nil {
		if tool := findStrace("", "bwrap"); tool.err != nil {
			t.Skipf("strace cannot trace on this host: %v", tool.err)
		}
	}
}

type auditBox struct {
	sandbox.Sandbox
	root, data, canary, labSocket string
}

// newAuditBox makes a sandbox with a data dir, a lab socket that answers
// "pong", the test binary as its aar binary, and a host canary under the
// lab's directory (root), outside every mount.
func newAuditBox(t *testing.T) *auditBox {
	t.Helper()
	needBwrap(t)
	needStrace(t)
	root := t.TempDir()
	data, canary := sandboxtest.Fixture(t, root)
	sock := filepath.Join(root, "lab.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("pong"))
			c.Close()
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{Root: filepath.Join(root, "sandboxes")}
	s, err := b.Create(context.Background(), sandbox.Spec{ID: "audit", Data: data, LabSocket: sock, AarBinary: exe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destroy(context.Background()) })
	return &auditBox{Sandbox: s, root: root, data: data, canary: canary, labSocket: sock}
}

func audit(t *testing.T, s sandbox.Sandbox, req sandbox.ExecRequest) *sandbox.ExecResult {
	t.Helper()
	req.Audit = true
	if req.Timeout == 0 {
		req.Timeout = time.Minute
	}
	res, err := s.Exec(context.Background(), req)
	if err != nil {
		t.Fatalf("exec %q %q: %v", req.Shell, req.Argv, err)
	}
	if res.Audit == nil {
		t.Fatal("no audit in the result")
	}
	if res.Audit.Unavailable != "" {
		t.Fatalf("audit unavailable: %s", res.Audit.Unavailable)
	}
	return res
}

func dump(a *sandbox.Audit) string {
	b, _ := json.MarshalIndent(a, "", "  ")
	return string(b)
}

func hasNumpy() bool {
	return exec.Command("/usr/bin/python3", "-c", "import numpy").Run() == nil
}

// TestAuditClean: everyday commands raise no alarm.
func TestAuditClean(t *testing.T) {
	s := newAuditBox(t)
	type clean struct {
		name string
		req  sandbox.ExecRequest
		out  string // in stdout
	}
	cases := []clean{
		{"ls and os-release", sandbox.ExecRequest{Shell: "ls /data /workspace; cat /etc/os-release"}, "test.jsonl"},
		{"aar version", sandbox.ExecRequest{Argv: []string{"aar", "version"}, Env: []string{"AAR_AUDIT_HELPER=version"}}, "aar (test helper)"},
		{"shell tools", sandbox.ExecRequest{Shell: `ls -la / /dev /workspace >/dev/null; id; date >/dev/null; nproc >/dev/null; uname -a >/dev/null
ps aux >/dev/null; free -m >/dev/null; df /workspace >/dev/null; env >/dev/null; cat /proc/self/status /proc/cpuinfo >/dev/null
mkdir -p /workspace/a/b /tmp/x && cp /etc/ssl/certs/ca-certificates.crt a/b/ && rm -r a; echo hi > /tmp/x/f; cat /tmp/x/f
head -c 8 /dev/urandom >/dev/null; tar czf /tmp/w.tgz -C /workspace .; grep -r t1 /data | wc -l; sort /data/test.jsonl | uniq -c
cd /tmp && ls ../workspace >/dev/null; ls /dev/fd/ >/dev/null; echo done`}, "done"},
		{"lab socket", sandbox.ExecRequest{Shell: `python3 -c "
import socket
s = socket.socket(socket.AF_UNIX)
s.connect('/run/aar/lab.sock')
print(s.recv(4).decode())
"`}, "pong"},
	}
	if hasNumpy() {
		cases = append(cases, clean{"numpy", sandbox.ExecRequest{Shell: `python3 -c 'import numpy' && python3 -c "
import os, tempfile, subprocess, numpy as np
a = np.random.rand(300, 300); print((a @ a).shape, os.cpu_count() > 0)
with tempfile.NamedTemporaryFile() as f: f.write(b'x')
open('/workspace/out.txt', 'w').write('hi')
subprocess.run(['true'])
"`}, "(300, 300) True"})
	} else {
		t.Log("python3-numpy is not installed: the numpy case is left out")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := audit(t, s, c.req)
			if !strings.Contains(string(res.Stdout), c.out) {
				t.Errorf("stdout %q lacks %q (stderr %q)", res.Stdout, c.out, res.Stderr)
			}
			if !res.Audit.Clean() {
				t.Errorf("false alarm:\n%s", dump(res.Audit))
			}
			if res.Audit.Syscalls == 0 {
				t.Error("no traced calls counted")
			}
		})
	}
}

// TestAuditCatches: each attempt lands in the right list with its call and
// target.
func TestAuditCatches(t *testing.T) {
	s := newAuditBox(t)
	hostData := filepath.Join(s.data, "test.jsonl")
	type catch struct {
		name    string
		req     sandbox.ExecRequest
		list    string // outside, network or denied
		syscall string // "" any
		target  string // exact
	}
	cases := []catch{
		{"absolute path", sandbox.ExecRequest{Shell: "cat /root/secret"}, "outside", "openat", "/root/secret"},
		{"dot-dot from the workspace", sandbox.ExecRequest{Shell: "cat ../../../../etc/shadow"}, "outside", "openat", "/etc/shadow"},
		{"dot-dot from a subdirectory", sandbox.ExecRequest{Shell: "mkdir -p d/e && cd d/e && cat ../../../root/.ssh/id_rsa"}, "outside", "openat", "/root/.ssh/id_rsa"},
		{"python open", sandbox.ExecRequest{Shell: `python3 -c "open('/var/lib/aar/x')"`}, "outside", "openat", "/var/lib/aar/x"},
		{"raw open(2), relative, after chdir", sandbox.ExecRequest{Shell: `python3 -c "
import ctypes, os
os.chdir('/tmp')
ctypes.CDLL(None).syscall(2, b'../etc/gshadow', 0)
"`}, "outside", "open", "/etc/gshadow"},
		{"a child's relative stat", sandbox.ExecRequest{Shell: `cd /tmp && sh -c 'ls ../home'`}, "outside", "", "/home"},
		{"the lab's canary on the host", sandbox.ExecRequest{Shell: "cat " + s.canary}, "outside", "openat", s.canary},
		{"the host path of /data", sandbox.ExecRequest{Shell: "cat " + hostData}, "outside", "openat", hostData},
		{"through /proc/1/root", sandbox.ExecRequest{Shell: "ls /proc/1/root/root"}, "outside", "", "/proc/1/root/root"},
		{"kernel memory", sandbox.ExecRequest{Shell: "cat /proc/kcore"}, "outside", "openat", "/proc/kcore"},
		{"a symbolic link to a secret", sandbox.ExecRequest{Shell: "ln -s /etc/shadow l; cat l"}, "outside", "symlinkat", "/etc/shadow"},
		{"exec outside", sandbox.ExecRequest{Shell: "/opt/tool/bin/run"}, "outside", "execve", "/opt/tool/bin/run"},
		{"a command outside", sandbox.ExecRequest{Argv: []string{"/root/evil", "x"}}, "outside", "execve", "/root/evil"},
		{"AF_INET socket", sandbox.ExecRequest{Shell: `python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try: s.connect(('10.1.2.3', 443))
except OSError as e: print(e)
"`}, "network", "socket", "AF_INET SOCK_STREAM|SOCK_CLOEXEC"},
		{"AF_INET connect", sandbox.ExecRequest{Shell: `python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try: s.connect(('10.1.2.3', 443))
except OSError as e: print(e)
"`}, "network", "connect", "10.1.2.3:443"},
		{"UDP send", sandbox.ExecRequest{Shell: `python3 -c "
import socket
try: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'x', ('::1', 53))
except OSError as e: print(e)
"`}, "network", "sendto", "[::1]:53"},
		{"another unix socket", sandbox.ExecRequest{Shell: `python3 -c "
import socket
try: socket.socket(socket.AF_UNIX).connect('/workspace/other.sock')
except OSError as e: print(e)
"`}, "network", "connect", "unix:/workspace/other.sock"},
		{"unshare", sandbox.ExecRequest{Shell: "unshare -r true"}, "denied", "unshare", "CLONE_NEWUSER"},
		{"mount", sandbox.ExecRequest{Shell: "mount -t tmpfs x /tmp"}, "denied", "mount", "tmpfs /tmp"},
		{"ptrace", sandbox.ExecRequest{Shell: `python3 -c "import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0)"`}, "denied", "ptrace", "PTRACE_ATTACH 1"},
		{"chroot", sandbox.ExecRequest{Shell: "/usr/sbin/chroot /tmp /bin/true"}, "denied", "chroot", "/tmp"},
		{"setuid", sandbox.ExecRequest{Shell: `python3 -c "
import os
try: os.setuid(0)
except OSError as e: print(e)
"`}, "denied", "setuid", "0"},
		{"io_uring", sandbox.ExecRequest{Shell: `python3 -c "import ctypes; print(ctypes.CDLL(None).syscall(425, 4, ctypes.create_string_buffer(120)))"`},
			"denied", "io_uring_setup", "io_uring (its operations are not traced)"},
		{"write to a read-only path", sandbox.ExecRequest{Shell: "touch /usr/bin/evil"}, "denied", "openat", "/usr/bin/evil"},
	}
	if runtime.GOARCH == "amd64" {
		// A 32-bit open(2) through int 0x80, from code in a MAP_32BIT page.
		cases = append(cases, catch{"i386 open through int 0x80", sandbox.ExecRequest{Shell: `python3 -c "
import mmap, ctypes, struct
m = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40, prot=7)
base = ctypes.addressof(ctypes.c_char.from_buffer(m))
code = b'\x53\xb8\x05\x00\x00\x00\xbb' + struct.pack('<I', base + 256) + b'\x31\xc9\xcd\x80\x5b\xc3'
m[0:len(code)] = code
m[256:270] = b'/root/int80-x\0'
print(ctypes.CFUNCTYPE(ctypes.c_int)(base)())
"`}, "outside", "open", "/root/int80-x"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := audit(t, s, c.req).Audit
			if a.Clean() {
				t.Fatalf("Clean() for %q", c.req.Shell)
			}
			l := map[string][]sandbox.AuditEvent{"outside": a.OutsidePaths, "network": a.Network, "denied": a.Denied}[c.list]
			for _, e := range l {
				if e.Target == c.target && (c.syscall == "" || e.Syscall == c.syscall) && e.Count > 0 && e.PID > 0 && e.Result != "" {
					return
				}
			}
			t.Errorf("no %s event %s %q in\n%s", c.list, c.syscall, c.target, dump(a))
		})
	}
}

// TestAuditTamper: the command cannot find, reach or forge the trace, and
// what it tries after attacking it is still recorded.
func TestAuditTamper(t *testing.T) {
	s := newAuditBox(t)
	dir := s.Sandbox.(*box).dir
	before := treeOf(t, dir)
	fds := `ls /proc/self/fd | sort -n | tr '\n' ' '; echo`
	plain, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: fds})
	if err != nil {
		t.Fatal(err)
	}
	res := audit(t, s, sandbox.ExecRequest{Shell: fds + `
python3 -c "
import os
for fd in range(3, 250):
    try: os.write(fd, b'1 openat(AT_FDCWD</>, \"/forged\", O_RDONLY) = 3</forged>\\n')
    except OSError: pass
"
find / -xdev \( -name '*strace*' -o -name '*audit*' \) 2>/dev/null
kill -9 -1 2>/dev/null
cat "$(printf '/x\n1 openat(AT_FDCWD</>, "/ok", O_RDONLY) = 3</ok>')"
cat /root/after-the-attack`})
	a := res.Audit
	var targets []string
	for _, e := range a.OutsidePaths {
		targets = append(targets, e.Target)
	}
	all := strings.Join(targets, "|")
	if !strings.Contains(all, "/root/after-the-attack") {
		t.Errorf("the attempt after the attack is missing:\n%s", dump(a))
	}
	if !strings.Contains(all, "/x\n1 openat(AT_FDCWD</>, \"/ok\"") {
		t.Errorf("a path holding a forged line is not one event:\n%s", dump(a))
	}
	if strings.Contains(all, "/forged") || strings.Contains(all, "|/ok") {
		t.Errorf("a forged line was read as a call:\n%s", dump(a))
	}
	// The audit opens no descriptor in the sandbox.
	if got, want := strings.TrimSpace(strings.SplitN(string(res.Stdout), "\n", 2)[0]), strings.TrimSpace(string(plain.Stdout)); got != want {
		t.Errorf("descriptors in the sandbox: %q with an audit, %q without", got, want)
	}
	if strings.Contains(string(res.Stdout), "strace") || strings.Contains(string(res.Stdout), "audit") {
		t.Errorf("the sandbox found something: %q", res.Stdout)
	}
	// No trace file anywhere under the sandbox's host directory.
	if after := treeOf(t, dir); after != before {
		t.Errorf("files appeared on the host:\nbefore %s\nafter  %s", before, after)
	}
}

func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !strings.HasPrefix(p, filepath.Join(dir, "workspace")) {
			names = append(names, p)
		}
		return nil
	})
	return strings.Join(names, " ")
}

// TestAuditKeepsExec: with an audit the command's result is what it is
// without one: exit code, output, stdin, limits, timeout.
func TestAuditKeepsExec(t *testing.T) {
	needStrace(t)
	s, _ := newBox(t, sandbox.Limits{OutputBytes: 1000})
	for _, req := range []sandbox.ExecRequest{
		{Shell: "echo out; echo err >&2; exit 3"},
		{Argv: []string{"cat"}, Stdin: []byte("from stdin")},
		{Shell: `echo "$X $(pwd) $(id -u)"`, Env: []string{"X=1"}, Dir: "/tmp"},
		{Shell: "head -c 5000 /dev/zero | tr '\\0' a"},
		{Shell: "ulimit -n; ulimit -f"},
		{Shell: "kill -TERM $$"},
	} {
		plain, err := s.Exec(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		req.Audit = true
		au, err := s.Exec(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if au.ExitCode != plain.ExitCode || !bytes.Equal(au.Stdout, plain.Stdout) || !bytes.Equal(au.Stderr, plain.Stderr) ||
			au.StdoutDropped != plain.StdoutDropped || au.TimedOut != plain.TimedOut {
			t.Errorf("%q: with audit %d %q %q %d, without %d %q %q %d", req.Shell, au.ExitCode, au.Stdout, au.Stderr, au.StdoutDropped,
				plain.ExitCode, plain.Stdout, plain.Stderr, plain.StdoutDropped)
		}
		if plain.Audit != nil || au.Audit == nil || au.Audit.Unavailable != "" {
			t.Errorf("%q: audit %+v / %+v", req.Shell, plain.Audit, au.Audit)
		}
	}
	res := audit(t, s, sandbox.ExecRequest{Shell: "cat /root/first; sleep 30", Timeout: time.Second})
	if !res.TimedOut || !strings.Contains(string(res.Stderr), "timeout") {
		t.Errorf("timeout under audit: %+v", res)
	}
	if len(res.Audit.OutsidePaths) == 0 || res.Audit.OutsidePaths[0].Target != "/root/first" {
		t.Errorf("a timed-out command's audit lost its calls:\n%s", dump(res.Audit))
	}
	if b := s.(*box); b.cg != nil && len(b.cg.paths) > 0 && b.cg.alive() != 0 {
		t.Errorf("%d processes survived", b.cg.alive())
	}
}

// TestAuditUnavailable: without strace the command still runs.
func TestAuditUnavailable(t *testing.T) {
	needBwrap(t)
	b := &Backend{Root: filepath.Join(t.TempDir(), "sb"), Strace: "/nonexistent/strace"}
	s, err := b.Create(context.Background(), sandbox.Spec{ID: "nostrace"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy(context.Background())
	res, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: "echo ran", Audit: true})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "ran\n" || res.Audit == nil || !strings.Contains(res.Audit.Unavailable, "strace") || res.Audit.Clean() {
		t.Fatalf("%q %+v", res.Stdout, res.Audit)
	}
}

// TestAuditCap: a command that tries many paths fills each list up to
// sandbox.AuditCap and counts the rest.
func TestAuditCap(t *testing.T) {
	s := newAuditBox(t)
	a := audit(t, s, sandbox.ExecRequest{Shell: `i=0; while [ $i -lt 300 ]; do cat /root/f$i 2>/dev/null; i=$((i+1)); done`}).Audit
	if len(a.OutsidePaths) != sandbox.AuditCap || a.Dropped != 100 || a.Clean() {
		t.Fatalf("%d events, %d dropped", len(a.OutsidePaths), a.Dropped)
	}
}

// BenchmarkExecAudit runs the same command with and without an audit and
// reports both medians and their ratio.
func BenchmarkExecAudit(b *testing.B) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("bubblewrap is not installed")
	}
	needStrace(b)
	cmds := map[string]string{
		"true": "true",
		"ls":   "ls -la /usr/bin /usr/lib >/dev/null",
	}
	if hasNumpy() {
		cmds["numpy"] = "python3 -c 'import numpy'"
	}
	for name, sh := range cmds {
		b.Run(name, func(b *testing.B) {
			bk := &Backend{Root: filepath.Join(b.TempDir(), "sb")}
			s, err := bk.Create(context.Background(), sandbox.Spec{ID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Destroy(context.Background())
			var plain, audited []time.Duration
			calls := 0
			for b.Loop() {
				for _, on := range []bool{false, true} {
					t0 := time.Now()
					r, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: sh, Audit: on})
					if err != nil || r.ExitCode != 0 {
						b.Fatalf("%v %+v", err, r)
					}
					if on {
						audited = append(audited, time.Since(t0))
						calls = r.Audit.Syscalls
					} else {
						plain = append(plain, time.Since(t0))
					}
				}
			}
			p, a := percentile(plain, 0.5), percentile(audited, 0.5)
			b.ReportMetric(float64(p.Microseconds())/1000, "plain-p50-ms")
			b.ReportMetric(float64(a.Microseconds())/1000, "audit-p50-ms")
			b.ReportMetric(float64(a)/float64(p), "ratio")
			b.ReportMetric(float64(calls), "traced-calls")
		})
	}
}
