package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
	utilexec "k8s.io/client-go/util/exec"
)

// These tests cover the pieces of Exec that run without a cluster: the
// command line and stdin it sends, and what it makes of the answer. The
// scripts themselves run here under the local /bin/sh and coreutils, the
// same programs the image runs them with; the exec transport itself runs
// only on a real cluster (envtest has no kubelet).

func TestExecCommandKeepsEnvOutOfArgv(t *testing.T) {
	lim := sandbox.DefaultLimits()
	req := sandbox.ExecRequest{Shell: "echo hi", Env: []string{"AAR_TOKEN=secret-token-value", "BAD-NAME=x", "noequals", "MULTI=a\nb=c"}, Stdin: []byte("input")}
	argv, stdin := execCommand(req, 90*time.Second, lim)
	if strings.Contains(strings.Join(argv, " "), "secret-token-value") {
		t.Fatalf("argv carries an env value (exec URLs are logged): %q", argv)
	}
	want := []string{"/bin/sh", "-c", execScript, "aar-exec", "90.000", "/workspace", strconv.Itoa(lim.OpenFiles), strconv.FormatInt(lim.FileBytes/512, 10), "/bin/sh", "-c", "echo hi"}
	if fmt.Sprint(argv) != fmt.Sprint(want) {
		t.Fatalf("argv = %q, want %q", argv, want)
	}
	lines := strings.Split(string(stdin), "\n")
	if len(lines) != 4 || lines[2] != "" || lines[3] != "input" {
		t.Fatalf("stdin = %q: want two env lines, an empty line, then the command's stdin", stdin)
	}
	if strings.Contains(string(stdin), "secret-token-value") {
		t.Fatal("stdin carries the value in clear; want base64")
	}
	argv, _ = execCommand(sandbox.ExecRequest{Argv: []string{"ls", "-l"}, Dir: "/data"}, time.Second, lim)
	if argv[5] != "/data" || fmt.Sprint(argv[8:]) != "[ls -l]" {
		t.Fatalf("argv = %q", argv)
	}
}

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"timeout", "base64", "head"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (coreutils)", tool)
		}
	}
}

// runLocal runs a command line the way the pod would, with the local sh.
func runLocal(t *testing.T, argv []string, stdin []byte) (stdout, stderr string, code int, pid int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	errw := &sandbox.Capped{Max: 1 << 20}
	sn := &pidSniffer{w: errw}
	cmd.Stdout, cmd.Stderr = &out, sn
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	default:
		t.Fatal(err)
	}
	return out.String(), errw.Buf.String(), code, sn.pid()
}

func TestExecScriptLocally(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	lim := sandbox.DefaultLimits()
	req := sandbox.ExecRequest{
		Shell: `printf '%s|%s|' "$A" "$B"; pwd; cat; echo err >&2; exit 3`,
		Env:   []string{"A=x=y", "B=line1\nline2\n", "C"},
		Dir:   dir, Stdin: []byte("from stdin\n"),
	}
	argv, stdin := execCommand(req, 10*time.Second, lim)
	out, errs, code, pid := runLocal(t, argv, stdin)
	if want := "x=y|line1\nline2\n|" + dir + "\nfrom stdin\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if errs != "err\n" {
		t.Errorf("stderr = %q: the pid line should be taken off", errs)
	}
	if code != 3 || pid <= 1 {
		t.Errorf("code %d pid %d, want 3 and a pid", code, pid)
	}

	// A missing directory fails before the command runs.
	argv, stdin = execCommand(sandbox.ExecRequest{Argv: []string{"true"}, Dir: filepath.Join(dir, "nope")}, 10*time.Second, lim)
	if _, _, code, _ := runLocal(t, argv, stdin); code != 126 {
		t.Errorf("missing dir: code %d, want 126", code)
	}

	// The file-size rlimit holds.
	small := lim
	small.FileBytes = 4096
	argv, stdin = execCommand(sandbox.ExecRequest{Shell: "head -c 100000 /dev/zero > big; wc -c < big", Dir: dir}, 10*time.Second, small)
	out, _, _, _ = runLocal(t, argv, stdin)
	if n, _ := strconv.Atoi(strings.TrimSpace(out)); n > 4096 {
		t.Errorf("wrote %d bytes under a 4096-byte file limit", n)
	}
}

func TestExecScriptTimeoutKillsTheGroup(t *testing.T) {
	needTools(t)
	// A child in the background as well as the command itself.
	req := sandbox.ExecRequest{Shell: "sleep 30 & sleep 30", Dir: t.TempDir()}
	timeout := 500 * time.Millisecond
	argv, stdin := execCommand(req, timeout, sandbox.DefaultLimits())
	start := time.Now()
	_, _, code, pid := runLocal(t, argv, stdin)
	el := time.Since(start)
	if code != 137 || !timedOut(code, el, timeout) {
		t.Fatalf("code %d after %s: want 137 and a timeout", code, el)
	}
	if el > 5*time.Second {
		t.Fatalf("took %s", el)
	}
	if n := liveInGroup(t, pid); n > 0 {
		t.Fatalf("%d processes of the command's group outlived its timeout", n)
	}
}

func TestKillScriptLocally(t *testing.T) {
	needTools(t)
	argv, stdin := execCommand(sandbox.ExecRequest{Shell: "sleep 30 & sleep 30"}, time.Minute, sandbox.DefaultLimits())
	argv[5] = t.TempDir()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(stdin)
	sn := &pidSniffer{w: &bytes.Buffer{}}
	cmd.Stderr = sn
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sn.pid() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sn.pid() != cmd.Process.Pid {
		t.Fatalf("sniffed pid %d, want %d", sn.pid(), cmd.Process.Pid)
	}
	// timeout takes over the pid and leads its group, with both sleeps.
	for liveInGroup(t, sn.pid()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := liveInGroup(t, sn.pid()); n < 3 {
		t.Fatalf("%d processes in the command's group, want timeout, sh and two sleeps", n)
	}
	if out, err := exec.Command("/bin/sh", "-c", killScript, "aar-kill", strconv.Itoa(sn.pid())).CombinedOutput(); err != nil {
		t.Fatalf("kill: %v %s", err, out)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the command survived the kill script")
	}
	if n := liveInGroup(t, sn.pid()); n > 0 {
		t.Fatalf("%d processes of the group survive", n)
	}
}

// liveInGroup counts the processes of a process group that are not
// zombies (a killed orphan stays one until init reaps it).
func liveInGroup(t *testing.T, pgid int) int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			n++
		}
	}
	return n
}

func TestFileScriptsLocally(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "a", "b", "c.txt")
	cmd := exec.Command("/bin/sh", "-c", writeScript, "aar-write", f)
	cmd.Stdin = strings.NewReader("hello")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("write: %v %s", err, out)
	}
	out, err := exec.Command("/bin/sh", "-c", readScript, "aar-read", f, "3").Output()
	if err != nil || string(out) != "hel" {
		t.Fatalf("read %q %v, want the first 3 bytes", out, err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{writeScript, readScript} {
		cmd := exec.Command("/bin/sh", "-c", script, "aar-file", filepath.Join(dir, "fifo"), "10")
		cmd.Stdin = strings.NewReader("x")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "not a regular file") {
			t.Fatalf("fifo: %v %q", err, out)
		}
	}
	if out, err := exec.Command("/bin/sh", "-c", readScript, "aar-read", filepath.Join(dir, "missing"), "10").CombinedOutput(); err == nil || !strings.Contains(string(out), "no such file") {
		t.Fatalf("missing: %v %q", err, out)
	}
}

func TestWorkspacePath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"a.txt", "/workspace/a.txt"},
		{"dir/./b", "/workspace/dir/b"},
		{"dir//c/", "/workspace/dir/c"},
		{"/etc/passwd", ""},
		{"../x", ""},
		{"a/../../x", ""},
		{"a/..", ""},
		{".", ""},
		{"", ""},
		{"a\x00b", ""},
	} {
		got, err := workspacePath(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("workspacePath(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("workspacePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestPidSniffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		pid    int
		rest   string
	}{
		{"whole", []string{"aar-pid 42\nhello"}, 42, "hello"},
		{"split", []string{"aar-", "pid 4", "2\n", "more\n"}, 42, "more\n"},
		{"not ours", []string{"oops\nx"}, 0, "oops\nx"},
		{"long first line", []string{strings.Repeat("y", 100)}, 0, strings.Repeat("y", 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &pidSniffer{w: &out}
			for _, w := range tc.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatal(n, err)
				}
			}
			if s.pid() != tc.pid || out.String() != tc.rest {
				t.Fatalf("pid %d rest %q, want %d %q", s.pid(), out.String(), tc.pid, tc.rest)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code int
		ok   bool
	}{
		{"nil", nil, 0, true},
		{"exit", utilexec.CodeExitError{Err: errors.New("command terminated with exit code 3"), Code: 3}, 3, true},
		{"wrapped", fmt.Errorf("x: %w", utilexec.CodeExitError{Err: errors.New("killed"), Code: 137}), 137, true},
		{"transport", errors.New("error dialing backend: connection refused"), 0, false},
		{"ctx", context.Canceled, 0, false},
	} {
		code, ok := exitCode(tc.err)
		if code != tc.code || ok != tc.ok {
			t.Errorf("%s: exitCode = %d, %v; want %d, %v", tc.name, code, ok, tc.code, tc.ok)
		}
	}
	if timedOut(137, time.Second, 2*time.Second) || !timedOut(137, 2*time.Second, 2*time.Second) || timedOut(1, time.Hour, time.Second) {
		t.Error("timedOut")
	}
}
