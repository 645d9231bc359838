package bwrap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

// Auditing (ExecRequest.Audit) runs strace on the host, outside the
// sandbox, around bubblewrap:
//
//	sh -c 'exec 4>&2 2>&3; exec "$@"' aar-audit \
//	  strace -f -q -y ... -o /proc/self/fd/3 -- \
//	  sh -c 'exec 2>&4 3>&- 4>&-; <cgroup join, ulimits>; exec "$@"' aar-sandbox bwrap ...
//
// strace writes its trace (and its own messages) into a pipe that only it
// and this process hold: the shell it starts closes that descriptor before
// it becomes bubblewrap, so nothing in the sandbox has it, and there is no
// file at all, on the host or inside. strace is outside the sandbox's pid
// namespace, so the command can neither see nor signal it, and a traced
// process cannot detach itself. With --seccomp-bpf the kernel stops only the
// calls we read. The cgroup join and the rlimits happen after strace, so the
// command's limits are the same as without an audit and strace is not in
// the sandbox's cgroup.
//
// What the trace cannot see: operations the kernel performs for io_uring
// (io_uring_setup is reported instead) and anything that is not a system
// call (reading memory the process already mapped).

// straceTool is a strace binary and the options it works with here.
type straceTool struct {
	path string
	opts []string
	err  error
}

var (
	straceMu    sync.Mutex
	straceTools = map[string]*straceTool{} // by name; guarded by straceMu
)

// findStrace looks strace up (name is a path, or "" for PATH) and, once
// per binary, checks that it can trace bubblewrap here: ptrace may be
// refused (Yama's ptrace_scope 3, a seccomp policy, a container without
// CAP_SYS_PTRACE) and older versions lack --seccomp-bpf.
func findStrace(name, bwrap string) *straceTool {
	straceMu.Lock()
	defer straceMu.Unlock()
	if t, ok := straceTools[name]; ok {
		return t
	}
	t := &straceTool{}
	straceTools[name] = t
	p := name
	if p == "" {
		p = "strace"
	}
	lp, err := exec.LookPath(p)
	if err != nil {
		t.err = fmt.Errorf("strace is not installed (apt-get install strace): %w", err)
		return t
	}
	t.path = lp
	var last string
	for _, opts := range [][]string{{"--seccomp-bpf", "--decode-pids=pidns"}, {"--decode-pids=pidns"}, {"--seccomp-bpf"}, nil} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		args := append(append([]string{"-f", "-q", "-y"}, opts...), "-e", "trace=execve", "-o", "/dev/null", "--", bwrap, "--version")
		out, err := exec.CommandContext(ctx, lp, args...).CombinedOutput()
		cancel()
		if err == nil {
			t.opts = opts
			return t
		}
		last = fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	t.err = fmt.Errorf("strace %s cannot trace here: %s", lp, last)
	return t
}

// traceSet is strace's -e trace= value: the calls the auditor reads.
var traceSet = func() string {
	names := []string{"fchdir", "getcwd"}
	for _, m := range []map[string]bool{forks, netCalls} {
		for n := range m {
			names = append(names, n)
		}
	}
	for n := range privileged {
		names = append(names, n)
	}
	for n := range pathCalls {
		names = append(names, n)
	}
	slices.Sort(names)
	return "trace=%file,?" + strings.Join(names, ",?")
}()

// auditRun is the audit of one command.
type auditRun struct {
	a           *auditor
	r, w        *os.File
	done        chan struct{}
	unavailable string
}

// startAudit prepares cmd (the host shell that runs bubblewrap, as Exec
// builds it) to run under strace; nil when the request wants no audit.
// Where strace cannot run, cmd is left as it is and the result says why.
func (s *box) startAudit(req sandbox.ExecRequest, cmd *exec.Cmd) *auditRun {
	if !req.Audit {
		return nil
	}
	au := &auditRun{}
	t := findStrace(s.strace, s.bwrap)
	if t.err != nil {
		au.unavailable = t.err.Error()
		return au
	}
	r, w, err := os.Pipe()
	if err != nil {
		au.unavailable = fmt.Sprintf("audit pipe: %v", err)
		return au
	}
	dir := req.Dir
	if dir == "" {
		dir = "/workspace"
	}
	au.a = newAuditor(s.auditPolicy(), dir)
	au.r, au.w = r, w
	// cmd.Args is /bin/sh -c SCRIPT aar-sandbox BWRAP ARGS...
	script, rest := cmd.Args[2], cmd.Args[3:]
	args := []string{cmd.Args[0], "-c", `exec 4>&2 2>&3; exec "$@"`, "aar-audit", t.path, "-f", "-q", "-y"}
	args = append(args, t.opts...)
	args = append(args, "-e", "signal=none", "-e", traceSet, "-o", "/proc/self/fd/3", "--",
		"/bin/sh", "-c", "exec 2>&4 3>&- 4>&-; "+script)
	cmd.Args = append(args, rest...)
	cmd.ExtraFiles = []*os.File{w}
	return au
}

// started is called once the command has started: the host keeps no
// write end, so the trace ends when strace does.
func (au *auditRun) started() {
	if au == nil || au.w == nil {
		return
	}
	au.w.Close()
	au.w = nil
	au.done = make(chan struct{})
	go func() {
		defer close(au.done)
		readLines(au.r, au.a.line)
	}()
}

// finish waits for the rest of the trace (at most 5 s after strace ends,
// like Exec's wait for output) and returns the audit.
func (au *auditRun) finish() *sandbox.Audit {
	if au == nil {
		return nil
	}
	if au.unavailable != "" || au.done == nil {
		return &sandbox.Audit{OutsidePaths: []sandbox.AuditEvent{}, Network: []sandbox.AuditEvent{}, Denied: []sandbox.AuditEvent{}, Unavailable: au.unavailable}
	}
	select {
	case <-au.done:
	case <-time.After(5 * time.Second):
		au.r.Close()
		<-au.done
	}
	res := au.a.result()
	if au.a.root == 0 {
		res.Unavailable = "strace wrote no trace"
		if len(au.a.diag) > 0 {
			res.Unavailable += ": " + strings.Join(au.a.diag, "; ")
		}
	}
	return res
}

// close releases the pipe; safe to call more than once, and on nil.
func (au *auditRun) close() {
	if au == nil {
		return
	}
	if au.w != nil {
		au.w.Close()
	}
	if au.r != nil {
		au.r.Close()
	}
}

// auditPolicy is what this sandbox grants, from its bubblewrap command
// line, and the host paths that belong to the lab and this sandbox.
func (s *box) auditPolicy() *auditPolicy {
	dir, err := filepath.Abs(s.dir)
	if err != nil {
		dir = s.dir
	}
	root := filepath.Dir(dir)
	host := []string{dir, root, filepath.Dir(root), s.spec.Data, s.spec.Shared, s.spec.AarBinary}
	if s.spec.LabSocket != "" {
		host = append(host, s.spec.LabSocket, filepath.Dir(s.spec.LabSocket))
	}
	return newAuditPolicy(s.base, s.spec.LabSocket, host)
}

// Lines longer than this keep their first maxLineHead and last
// maxLineTail bytes (a long execve argument list, say): a call's name,
// first arguments and return value are still there.
const (
	maxLineHead = 256 << 10
	maxLineTail = 4 << 10
)

// readLines calls fn with each line of r, without its newline.
func readLines(r io.Reader, fn func(string)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var head []byte
	var tail []byte
	cut := false
	for {
		chunk, err := br.ReadSlice('\n')
		full := err == nil
		if full {
			chunk = chunk[:len(chunk)-1]
		}
		switch {
		case len(head)+len(chunk) <= maxLineHead && !cut:
			head = append(head, chunk...)
		default:
			if !cut {
				n := maxLineHead - len(head)
				head = append(head, chunk[:n]...)
				chunk = chunk[n:]
				cut = true
			}
			tail = append(tail, chunk...)
			if len(tail) > maxLineTail {
				tail = append(tail[:0], tail[len(tail)-maxLineTail:]...)
			}
		}
		if full || (err != nil && len(head) > 0 && !errors.Is(err, bufio.ErrBufferFull)) {
			line := string(head)
			if cut {
				line += string(tail)
			}
			fn(line)
			head, tail, cut = head[:0], tail[:0], false
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
