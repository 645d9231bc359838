// Package bwrap is the local sandbox backend: every command runs under
// bubblewrap with new user, pid, ipc, uts, cgroup and network namespaces, a
// root built from an allow-list of read-only system directories (never the
// host's /: no Go source tree, dataset packages, lab data, home or other
// sandbox), a private /workspace and /tmp, and the lab's Unix socket as the
// only way out. Limits come from cgroups (v1 or v2, whichever the host has)
// and rlimits; a limit the host cannot enforce is reported in Warnings, never
// dropped silently.
package bwrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

// Backend creates sandboxes under Root (one directory each).
type Backend struct {
	Root string // e.g. DATA/sandboxes
	// Bwrap is the bubblewrap binary (default: found on PATH).
	Bwrap string
	// Profiles adds to (or replaces) the built-in cpu profile.
	Profiles map[string]Profile
	// Strace is the strace binary audited commands run under (default:
	// found on PATH); see ExecRequest.Audit and audit.go.
	Strace string
}

var _ sandbox.Backend = (*Backend)(nil)

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// Create makes a sandbox.
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	closeInheritedOnExec()
	if !idRE.MatchString(spec.ID) {
		return nil, fmt.Errorf("sandbox id %q: use 1-64 lower-case letters, digits, '.', '_' or '-'", spec.ID)
	}
	if spec.Profile == "" {
		spec.Profile = "cpu"
	}
	prof, err := b.profile(spec.Profile)
	if err != nil {
		return nil, err
	}
	if err := prof.Validate(); err != nil {
		return nil, err
	}
	bw := b.Bwrap
	if bw == "" {
		p, err := exec.LookPath("bwrap")
		if err != nil {
			return nil, fmt.Errorf("bubblewrap is not installed (apt-get install bubblewrap): %w", err)
		}
		bw = p
	}
	for name, p := range map[string]string{"data": spec.Data, "shared": spec.Shared, "lab socket": spec.LabSocket, "aar binary": spec.AarBinary} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("sandbox %s %s: %w", name, p, err)
		}
	}
	s := &box{spec: spec, prof: prof, lim: spec.Limits.WithDefaults(), bwrap: bw, strace: b.Strace, created: time.Now()}
	s.dir = filepath.Join(b.Root, spec.ID)
	if _, err := os.Stat(s.dir); err == nil {
		return nil, fmt.Errorf("sandbox %s exists", spec.ID)
	}
	s.ws = filepath.Join(s.dir, "workspace")
	s.base = s.baseArgs()
	if err := os.MkdirAll(s.ws, 0o755); err != nil {
		return nil, err
	}
	// A size-limited workspace: a tmpfs mounted on the host (needs root).
	if err := syscall.Mount("tmpfs", s.ws, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+strconv.FormatInt(s.lim.WorkspaceBytes, 10)+",mode=0755"); err != nil {
		s.Warn("workspace size is not enforced (mounting a tmpfs needs root: %v)", err)
	} else {
		s.mounted = true
	}
	s.cg = newCgroup(spec.ID)
	if err := s.cg.setup(s.lim); err != nil {
		s.Warn("%v", err)
	}
	return s, nil
}

type box struct {
	spec    sandbox.Spec
	prof    Profile
	lim     sandbox.Limits
	bwrap   string
	strace  string // "" finds it on PATH
	dir, ws string
	base    []string // bubblewrap arguments shared by every command
	mounted bool
	cg      *cgroup
	created time.Time

	sandbox.Warned // what this host could not enforce

	mu        sync.Mutex
	destroyed bool // guarded by mu
}

func (s *box) ID() string { return s.spec.ID }

// args builds the bubblewrap command line.
// baseArgs builds the part of the bubblewrap command line that is the same
// for every command (looking on the host for the profile's directories);
// Create computes it once.
func (s *box) baseArgs() []string {
	a := []string{
		"--unshare-all", "--die-with-parent", "--new-session",
		"--uid", "1000", "--gid", "1000", "--hostname", "aar",
		"--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/workspace",
		"--setenv", "LANG", "C.UTF-8", "--setenv", "TMPDIR", "/tmp",
		"--proc", "/proc", "--dev", "/dev",
		"--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
		"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
	}
	for _, p := range s.prof.ReadOnly {
		if _, err := os.Stat(p); err == nil {
			a = append(a, "--ro-bind", p, p)
		}
	}
	for _, p := range s.prof.Hidden {
		if _, err := os.Stat(p); err == nil {
			a = append(a, "--tmpfs", p)
		}
	}
	a = append(a, "--size", strconv.FormatInt(s.lim.TmpBytes, 10), "--tmpfs", "/tmp",
		"--bind", s.ws, "/workspace")
	if s.spec.Data != "" {
		a = append(a, "--ro-bind", s.spec.Data, "/data")
	}
	if s.spec.Shared != "" {
		a = append(a, "--ro-bind", s.spec.Shared, "/shared")
	}
	if s.spec.LabSocket != "" {
		a = append(a, "--ro-bind", s.spec.LabSocket, "/run/aar/lab.sock", "--setenv", "AAR_LAB", "unix:///run/aar/lab.sock")
	}
	if s.spec.AarBinary != "" {
		a = append(a, "--ro-bind", s.spec.AarBinary, "/usr/local/bin/aar")
	}
	envKeys := make([]string, 0, len(s.prof.Env))
	for k := range s.prof.Env {
		envKeys = append(envKeys, k)
	}
	sort.Strings(envKeys)
	for _, k := range envKeys {
		a = append(a, "--setenv", k, s.prof.Env[k])
	}
	return a
}

// args is the bubblewrap command line for one command.
func (s *box) args(req sandbox.ExecRequest) []string {
	a := slices.Clip(s.base)
	for _, kv := range req.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			a = append(a, "--setenv", k, v)
		}
	}
	dir := req.Dir
	if dir == "" {
		dir = "/workspace"
	}
	a = append(a, "--chdir", dir, "--")
	if req.Shell != "" {
		return append(a, "/bin/sh", "-c", req.Shell)
	}
	return append(a, req.Argv...)
}

// Exec implements sandbox.Sandbox.
func (s *box) Exec(ctx context.Context, req sandbox.ExecRequest) (*sandbox.ExecResult, error) {
	s.mu.Lock()
	dead := s.destroyed
	s.mu.Unlock()
	if dead {
		return nil, errors.New("sandbox is destroyed")
	}
	if len(req.Argv) == 0 && req.Shell == "" {
		return nil, errors.New("exec: give argv or a shell command")
	}
	timeout, err := s.lim.Bound(s.spec.ID, req.Timeout, s.created)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// A small host shell puts itself into the sandbox's cgroups, sets the
	// rlimits with its ulimit builtin (POSIX: file size in 512-byte
	// blocks; one exec fewer than prlimit) and becomes bubblewrap.
	join := s.cg.joinScript()
	argv := append([]string{s.bwrap}, s.args(req)...)
	script := join + fmt.Sprintf(`ulimit -n %d && ulimit -f %d && ulimit -c 0 && exec "$@"`,
		s.lim.OpenFiles, max(1, s.lim.FileBytes/512))
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "aar-sandbox"}, argv...)...)
	// With req.Audit, strace runs the shell above (see audit.go).
	au := s.startAudit(req, cmd)
	defer au.close()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Should anything still hold the output pipes once the command is
	// killed, stop waiting for them rather than hang the worker.
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = bytes.NewReader(req.Stdin)
	out := &sandbox.Capped{Max: s.lim.OutputBytes}
	errw := &sandbox.Capped{Max: s.lim.OutputBytes}
	cmd.Stdout, cmd.Stderr = out, errw
	cpu0, cpuOK := s.cg.cpuUsage()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sandbox command: %w", err)
	}
	au.started()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	timedOut := false
	select {
	case werr = <-done:
	case <-cctx.Done():
		timedOut = ctx.Err() == nil
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		s.cg.killAll()
		werr = <-done
	}
	// Nothing outlives its command: kill whatever is left in the cgroup.
	s.cg.killAll()
	res := &sandbox.ExecResult{Duration: time.Since(start)}
	res.Audit = au.finish()
	// CPU time: the cgroup's count where there is one (it sees every
	// process, reaped or killed), else what wait4 reports. Under an audit
	// the cgroup count includes the kernel's work stopping each traced call
	// but not strace (outside the cgroup); wait4's includes strace too.
	if cpu1, ok := s.cg.cpuUsage(); ok && cpuOK {
		res.CPU = max(0, cpu1-cpu0)
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var ee *exec.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		res.ExitCode = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = 128 + int(ws.Signal())
		}
	default:
		return nil, fmt.Errorf("sandbox command: %w", werr)
	}
	sandbox.Finish(res, out, errw, timedOut, timeout)
	return res, nil
}

// openInside opens a workspace-relative path through an os.Root, so that
// neither "..", nor a symbolic link, nor one swapped in while we look, can
// lead outside /workspace; O_NONBLOCK and the regular-file check keep a FIFO
// or device the sandbox made from hanging or fooling the host.
func (s *box) openInside(path string, flag int, mkdirs bool) (*os.File, error) {
	clean := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	if clean == "" {
		return nil, fmt.Errorf("path %q names the workspace itself, not a file in it", path)
	}
	root, err := os.OpenRoot(s.ws)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if mkdirs {
		if err := root.MkdirAll(filepath.Dir(clean), 0o755); err != nil {
			return nil, fmt.Errorf("workspace path %q: %w", path, err)
		}
	}
	f, err := root.OpenFile(clean, flag|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		return nil, fmt.Errorf("workspace path %q: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("workspace path %q is not a regular file", path)
	}
	return f, nil
}

// WriteFile implements sandbox.Sandbox.
func (s *box) WriteFile(path string, data []byte) error {
	f, err := s.openInside(path, os.O_WRONLY|os.O_CREATE, true)
	if err != nil {
		return err
	}
	// Truncate only once the target is known to be a regular file.
	if err := f.Truncate(0); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadFile implements sandbox.Sandbox (at most 64 MiB).
func (s *box) ReadFile(path string) ([]byte, error) {
	f, err := s.openInside(path, os.O_RDONLY, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<20))
}

// Destroy implements sandbox.Sandbox.
func (s *box) Destroy(ctx context.Context) error {
	s.mu.Lock()
	if s.destroyed {
		s.mu.Unlock()
		return nil
	}
	s.destroyed = true
	s.mu.Unlock()
	s.cg.killAll()
	var errs []error
	if err := s.cg.remove(); err != nil {
		errs = append(errs, err)
	}
	if s.mounted {
		if err := syscall.Unmount(s.ws, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount workspace: %w", err))
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Remove destroys a sandbox this backend made, by ID, from any process
// (e.g. one kept by `aar sandbox run --keep`): it kills its processes and
// removes its cgroups, workspace mount and directory.
func (b *Backend) Remove(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("sandbox id %q: use 1-64 lower-case letters, digits, '.', '_' or '-'", id)
	}
	dir := filepath.Join(b.Root, id)
	cg := existingCgroup(id)
	if _, err := os.Stat(dir); err != nil && len(cg.paths) == 0 {
		return fmt.Errorf("no sandbox %s under %s", id, b.Root)
	}
	cg.killAll()
	var errs []error
	if err := cg.remove(); err != nil {
		errs = append(errs, err)
	}
	ws := filepath.Join(dir, "workspace")
	if err := syscall.Unmount(ws, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount workspace: %w", err))
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
