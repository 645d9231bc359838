// Package sandbox owns where a researcher's commands run: a sandbox made
// from a spec (a public testbed view, the forum sync, the lab's socket, a
// label-free aar binary, a private writable workspace), commands run in it
// under limits (memory, CPU share, processes, open files, file size,
// workspace and /tmp size, wall clock per command and per sandbox, captured
// output), and its destruction. Backends live in subpackages
// (sandbox/bwrap for the local host). A sandbox never holds labels, the
// lab's data directory, another sandbox's files or a network route: only
// the lab's Unix socket. On request a backend also audits a command (see
// Audit): what it tried to reach beyond its sandbox, seen from outside it.
package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"
)

// Limits bound a sandbox. Zero fields take DefaultLimits' values.
type Limits struct {
	MemoryBytes    int64         `json:"memory_bytes"`
	CPUShares      int           `json:"cpu_shares"` // relative weight (1024 = one default share)
	Pids           int           `json:"pids"`
	OpenFiles      int           `json:"open_files"`
	FileBytes      int64         `json:"file_bytes"`      // largest file a command may write
	WorkspaceBytes int64         `json:"workspace_bytes"` // /workspace
	TmpBytes       int64         `json:"tmp_bytes"`       // /tmp
	CommandTimeout time.Duration `json:"command_timeout"`
	Lifetime       time.Duration `json:"lifetime"`
	OutputBytes    int64         `json:"output_bytes"` // per stream kept
}

// DefaultLimits are a researcher's defaults on a laptop.
func DefaultLimits() Limits {
	return Limits{
		MemoryBytes: 2 << 30, CPUShares: 1024, Pids: 256, OpenFiles: 1024, FileBytes: 1 << 30,
		WorkspaceBytes: 2 << 30, TmpBytes: 512 << 20, CommandTimeout: 10 * time.Minute,
		Lifetime: 24 * time.Hour, OutputBytes: 1 << 20,
	}
}

// WithDefaults fills zero (or negative) fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	orDefault(&l.MemoryBytes, d.MemoryBytes)
	orDefault(&l.CPUShares, d.CPUShares)
	orDefault(&l.Pids, d.Pids)
	orDefault(&l.OpenFiles, d.OpenFiles)
	orDefault(&l.FileBytes, d.FileBytes)
	orDefault(&l.WorkspaceBytes, d.WorkspaceBytes)
	orDefault(&l.TmpBytes, d.TmpBytes)
	orDefault(&l.CommandTimeout, d.CommandTimeout)
	orDefault(&l.Lifetime, d.Lifetime)
	orDefault(&l.OutputBytes, d.OutputBytes)
	return l
}

func orDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Spec describes a sandbox to create.
type Spec struct {
	ID      string // unique; names the sandbox's directory and cgroups
	Profile string // "cpu" (default)
	// Data is the testbed's public view (read-only at /data), Shared the
	// forum sync (read-only at /shared), LabSocket the lab's Unix socket
	// (at /run/aar/lab.sock), AarBinary the aar binary (at
	// /usr/local/bin/aar). Empty means not mounted.
	Data, Shared, LabSocket, AarBinary string
	Limits                             Limits
}

// ExecRequest is one command.
type ExecRequest struct {
	Argv    []string // or Shell, run with /bin/sh -c
	Shell   string
	Stdin   []byte
	Env     []string // KEY=VALUE, added to the sandbox's environment
	Dir     string   // inside the sandbox (default /workspace)
	Timeout time.Duration
	// Audit records what the command tries to reach (see Audit): paths
	// outside the sandbox, network sockets, privileged operations. The
	// record comes from the backend watching the command's system calls,
	// not from anything the command prints.
	Audit bool
}

// ExecResult is what a command did.
type ExecResult struct {
	ExitCode      int           `json:"exit_code"`
	Stdout        []byte        `json:"stdout"`
	Stderr        []byte        `json:"stderr"`
	StdoutDropped int64         `json:"stdout_dropped"`
	StderrDropped int64         `json:"stderr_dropped"`
	TimedOut      bool          `json:"timed_out"`
	Duration      time.Duration `json:"duration"`
	// CPU is the user + system CPU time the command and the processes it
	// waited for used (0 where the backend cannot tell).
	CPU time.Duration `json:"cpu"`
	// Audit is what the command tried, when ExecRequest.Audit asked.
	Audit *Audit `json:"audit,omitempty"`
}

// AuditCap is how many distinct events each Audit list keeps; the rest are
// counted in Audit.Dropped.
const AuditCap = 200

// Audit is what a command tried to reach beyond its sandbox, seen from the
// sandbox layer (the backend traces the command's system calls from
// outside it). A command that stays within what its sandbox grants leaves
// every list empty: see Clean.
type Audit struct {
	// OutsidePaths are path lookups (open, stat, exec, readlink, ...)
	// outside what the sandbox grants, relative paths and ".." resolved
	// against the caller's working directory; most fail, since the paths
	// are not in the sandbox.
	OutsidePaths []AuditEvent `json:"outside_paths"`
	// Network are sockets other than AF_UNIX and connects (or sends) to
	// anything but the lab's socket.
	Network []AuditEvent `json:"network"`
	// Denied are privileged operations the command tried (mount, new
	// namespaces, ptrace, chroot, bpf, keyctl, module loading, setuid and
	// the like) and writes to the sandbox's read-only paths. Result says
	// whether the sandbox refused them (almost always).
	Denied []AuditEvent `json:"denied"`
	// Syscalls counts the traced calls the command and its children made.
	Syscalls int `json:"syscalls"`
	// Dropped counts events left out because their list already held
	// AuditCap distinct entries.
	Dropped int `json:"dropped,omitempty"`
	// Unavailable says why the command ran without an audit (e.g. strace
	// is not installed); empty when the audit ran.
	Unavailable string `json:"unavailable,omitempty"`
}

// AuditEvent is one kind of attempt, deduplicated by (Syscall, Target,
// Result).
type AuditEvent struct {
	Syscall string `json:"syscall"`
	// Target is the absolute path, address or operation the call aimed at.
	Target string `json:"target"`
	// Result is "ok" or the error the call returned (e.g. "ENOENT").
	Result string `json:"result"`
	// PID is the first process (as the host numbers it) seen trying.
	PID   int `json:"pid"`
	Count int `json:"count"`
}

// Clean reports whether the audit ran and saw nothing outside the sandbox.
func (a *Audit) Clean() bool {
	return a != nil && a.Unavailable == "" && len(a.OutsidePaths) == 0 && len(a.Network) == 0 && len(a.Denied) == 0 && a.Dropped == 0
}

// Sandbox is a live sandbox.
type Sandbox interface {
	ID() string
	// Exec runs a command. A command that fails is a result (with its exit
	// code); an error means the sandbox itself failed or is gone.
	Exec(ctx context.Context, req ExecRequest) (*ExecResult, error)
	// WriteFile and ReadFile reach files under /workspace (path relative).
	WriteFile(path string, data []byte) error
	ReadFile(path string) ([]byte, error)
	// Warnings lists the limits this host could not enforce.
	Warnings() []string
	// Destroy kills every process and removes the sandbox; idempotent.
	Destroy(ctx context.Context) error
}

// Backend makes sandboxes.
type Backend interface {
	Create(ctx context.Context, spec Spec) (Sandbox, error)
}

// Capped keeps the first Max bytes written to it and counts the rest: a
// command's captured output stream.
type Capped struct {
	Max     int64
	Buf     bytes.Buffer
	Dropped int64
}

func (c *Capped) Write(p []byte) (int, error) {
	room := c.Max - int64(c.Buf.Len())
	if room > 0 {
		n := min(int64(len(p)), room)
		c.Buf.Write(p[:n])
		c.Dropped += int64(len(p)) - n
	} else {
		c.Dropped += int64(len(p))
	}
	return len(p), nil
}

// Finish fills res's output fields from the captured streams, noting what
// was dropped and, when timedOut, that the command was killed after timeout.
func Finish(res *ExecResult, stdout, stderr *Capped, timedOut bool, timeout time.Duration) {
	res.Stdout, res.Stderr = stdout.Buf.Bytes(), stderr.Buf.Bytes()
	res.StdoutDropped, res.StderrDropped, res.TimedOut = stdout.Dropped, stderr.Dropped, timedOut
	if res.StdoutDropped > 0 {
		res.Stdout = append(res.Stdout, fmt.Sprintf("\n[aar: %d more bytes of stdout dropped]\n", res.StdoutDropped)...)
	}
	if res.StderrDropped > 0 {
		res.Stderr = append(res.Stderr, fmt.Sprintf("\n[aar: %d more bytes of stderr dropped]\n", res.StderrDropped)...)
	}
	if timedOut {
		res.Stderr = append(res.Stderr, fmt.Sprintf("\n[aar: killed after the %s command timeout]\n", timeout)...)
	}
}

// Bound is one command's bound in sandbox id, created at created:
// the request's timeout, at most the per-command limit, never past the
// sandbox's lifetime; an error once the lifetime is over.
func (l Limits) Bound(id string, req time.Duration, created time.Time) (time.Duration, error) {
	left := l.Lifetime - time.Since(created)
	if left <= 0 {
		return 0, fmt.Errorf("sandbox %s outlived its %s lifetime: create a new one", id, l.Lifetime)
	}
	t := req
	if t <= 0 || t > l.CommandTimeout {
		t = l.CommandTimeout
	}
	return min(t, left), nil
}

// Warned collects what a sandbox could not enforce (its Warnings); safe
// for concurrent use. Backends embed it.
type Warned struct {
	mu   sync.Mutex
	list []string // guarded by mu
}

// Warn records a warning.
func (w *Warned) Warn(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, fmt.Sprintf(format, args...))
}

// Warnings implements Sandbox.Warnings.
func (w *Warned) Warnings() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}
