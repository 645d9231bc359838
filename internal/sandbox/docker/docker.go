// Package docker is the sandbox backend for a Docker engine: one container
// per sandbox from a locally built image (see image.go), with no network
// (--network none: only the loopback device, and the lab's Unix socket
// bound in when the spec asks), a read-only root, the researcher as uid
// 1000 with every capability dropped and no-new-privileges, memory, CPU
// share, process, open-file and file-size limits, size-limited tmpfs
// /workspace and /tmp, and the public view and forum copy bound read-only.
// GPUs are passed through (--gpus) when configured. Commands run through
// the engine's exec API; nothing a command starts outlives it. Containers
// carry labels naming their sandbox, so a crashed aar's leftovers are found
// and removed (Reap), and each one stops by itself at its lifetime.
//
// The engine must run on this host: /data, /shared, the lab socket and the
// aar binary are bind mounts of host paths.
package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/aar-lab/aar/internal/sandbox"
)

// Labels on every container this backend makes.
const (
	LabelManaged = "app.kubernetes.io/managed-by" // = "aar"
	LabelSandbox = "aar.dev/sandbox"              // the sandbox id
)

// Backend creates sandboxes as containers.
type Backend struct {
	// Client talks to the engine (see NewClient).
	Client *client.Client
	// Image is the image every sandbox runs (see EnsureImage); it needs
	// /bin/sh, coreutils (timeout, sleep, cat, realpath, kill) and whatever
	// the researchers' commands use.
	Image string
	// GPUs is passed like docker run --gpus: "" for none, "all", or a
	// count ("2"); Runtime an OCI runtime other than the engine's default
	// (e.g. "runsc" for gVisor, "nvidia").
	GPUs    string
	Runtime string
	Logger  *slog.Logger
}

var _ sandbox.Backend = (*Backend)(nil)

// NewClient connects to the engine named by DOCKER_HOST (default the local
// socket), negotiating the API version, and checks that it answers.
func NewClient(ctx context.Context) (*client.Client, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, fmt.Errorf("docker engine at %s does not answer (start dockerd, or set DOCKER_HOST): %w", c.DaemonHost(), err)
	}
	return c, nil
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ContainerName is the container a sandbox id runs in.
func ContainerName(id string) string { return "aar-sandbox-" + id }

// Create makes and starts a sandbox's container.
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if !idRE.MatchString(spec.ID) {
		return nil, fmt.Errorf("sandbox id %q: use 1-64 lower-case letters, digits, '.', '_' or '-'", spec.ID)
	}
	if b.Client == nil || b.Image == "" {
		return nil, errors.New("docker backend: no engine client or image (aar builds one with: aar sandbox image build)")
	}
	if spec.Profile != "" && spec.Profile != "cpu" {
		return nil, fmt.Errorf("docker backend: profile %q: the image decides what a sandbox holds; build it with aar sandbox image build --profile %s", spec.Profile, spec.Profile)
	}
	for name, p := range map[string]string{"data": spec.Data, "shared": spec.Shared, "lab socket": spec.LabSocket, "aar binary": spec.AarBinary} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("sandbox %s %s: %w", name, p, err)
		}
	}
	lim := spec.Limits.WithDefaults()
	hc, err := b.hostConfig(spec, lim)
	if err != nil {
		return nil, err
	}
	cfg := &container.Config{
		Image:      b.Image,
		User:       "0:0",
		Hostname:   "aar",
		WorkingDir: "/workspace",
		Env:        baseEnv(spec),
		// The container's one long-lived process: it ends the container
		// at the sandbox's lifetime even if aar is gone.
		Cmd:    []string{"sleep", strconv.FormatInt(int64(lim.Lifetime/time.Second)+1, 10)},
		Labels: map[string]string{LabelManaged: "aar", LabelSandbox: spec.ID},
		// The init and its sleep run as root (with no capabilities), so
		// the researcher (uid 1000) can neither signal nor ptrace them.
		NetworkDisabled: true,
		StopSignal:      "SIGKILL",
	}
	name := ContainerName(spec.ID)
	cr, err := b.Client.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
	if err != nil {
		return nil, fmt.Errorf("create container %s from %s: %w", name, b.Image, err)
	}
	s := &box{b: b, spec: spec, lim: lim, id: cr.ID, created: time.Now()}
	for _, w := range cr.Warnings {
		s.Warn("docker: %s", w)
	}
	if _, err := b.Client.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		_, _ = b.Client.ContainerRemove(context.WithoutCancel(ctx), cr.ID, client.ContainerRemoveOptions{Force: true})
		return nil, fmt.Errorf("start container %s: %w", name, err)
	}
	if lim.CPUShares < 2 {
		s.Warn("cpu share %d is below docker's minimum of 2", lim.CPUShares)
	}
	return s, nil
}

func baseEnv(spec sandbox.Spec) []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/workspace", "LANG=C.UTF-8", "TMPDIR=/tmp"}
	if spec.LabSocket != "" {
		env = append(env, "AAR_LAB=unix:///run/aar/lab.sock")
	}
	return env
}

// hostConfig is the container's isolation and limits.
func (b *Backend) hostConfig(spec sandbox.Spec, lim sandbox.Limits) (*container.HostConfig, error) {
	pids := int64(lim.Pids)
	init := true
	hc := &container.HostConfig{
		NetworkMode:    "none",
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		IpcMode:        "private",
		Init:           &init, // reaps orphans; pid 1 is not the researcher's
		Runtime:        b.Runtime,
		Tmpfs: map[string]string{
			// exec: methods run their own scripts and binaries.
			"/workspace": fmt.Sprintf("rw,exec,nosuid,nodev,size=%d,mode=0755,uid=1000,gid=1000", lim.WorkspaceBytes),
			"/tmp":       fmt.Sprintf("rw,exec,nosuid,nodev,size=%d,mode=1777", lim.TmpBytes),
		},
		Resources: container.Resources{
			Memory:     lim.MemoryBytes,
			MemorySwap: lim.MemoryBytes, // no swap beyond the memory limit
			CPUShares:  int64(max(2, lim.CPUShares)),
			PidsLimit:  &pids,
			Ulimits: []*container.Ulimit{
				{Name: "nofile", Soft: int64(lim.OpenFiles), Hard: int64(lim.OpenFiles)},
				{Name: "fsize", Soft: lim.FileBytes, Hard: lim.FileBytes},
				{Name: "core", Soft: 0, Hard: 0},
			},
		},
	}
	bind := func(src, dst string) {
		hc.Binds = append(hc.Binds, src+":"+dst+":ro")
	}
	if spec.Data != "" {
		bind(spec.Data, "/data")
	}
	if spec.Shared != "" {
		bind(spec.Shared, "/shared")
	}
	if spec.LabSocket != "" {
		bind(spec.LabSocket, "/run/aar/lab.sock")
	}
	if spec.AarBinary != "" {
		// The worker's own aar, so the sandbox's toolkit matches it.
		bind(spec.AarBinary, "/usr/local/bin/aar")
	}
	if b.GPUs != "" {
		req := container.DeviceRequest{Capabilities: [][]string{{"gpu"}}}
		if b.GPUs == "all" {
			req.Count = -1
		} else {
			n, err := strconv.Atoi(b.GPUs)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("--gpus %q: give all or a number of GPUs", b.GPUs)
			}
			req.Count = n
		}
		hc.DeviceRequests = []container.DeviceRequest{req}
	}
	return hc, nil
}

type box struct {
	b       *Backend
	spec    sandbox.Spec
	lim     sandbox.Limits
	id      string // container id
	created time.Time

	sandbox.Warned // what this host could not enforce

	mu        sync.Mutex
	destroyed bool // guarded by mu
	active    int  // commands running; guarded by mu
}

func (s *box) ID() string { return s.spec.ID }

// Exec implements sandbox.Sandbox.
func (s *box) Exec(ctx context.Context, req sandbox.ExecRequest) (*sandbox.ExecResult, error) {
	s.mu.Lock()
	dead := s.destroyed
	if !dead {
		s.active++
	}
	s.mu.Unlock()
	if dead {
		return nil, errors.New("sandbox is destroyed")
	}
	defer s.endCommand()
	if len(req.Argv) == 0 && req.Shell == "" {
		return nil, errors.New("exec: give argv or a shell command")
	}
	timeout, err := s.lim.Bound(s.spec.ID, req.Timeout, s.created)
	if err != nil {
		return nil, err
	}
	argv := req.Argv
	if req.Shell != "" {
		argv = []string{"/bin/sh", "-c", req.Shell}
	}
	dir := req.Dir
	if dir == "" {
		dir = "/workspace"
	}
	out := &sandbox.Capped{Max: s.lim.OutputBytes}
	errw := &sandbox.Capped{Max: s.lim.OutputBytes}
	cpu0, cpuOK := s.cpuUsage(ctx)
	start := time.Now()
	code, timedOut, err := s.run(ctx, execOpts{argv: argv, env: req.Env, dir: dir, stdin: req.Stdin, timeout: timeout}, out, errw)
	if err != nil {
		return nil, err
	}
	res := &sandbox.ExecResult{ExitCode: code, Duration: time.Since(start)}
	// Nothing outlives its command: kill what it left (as bwrap's pid
	// namespace does), then count the CPU the container used meanwhile.
	s.killLeftovers(ctx)
	if cpu1, ok := s.cpuUsage(ctx); ok && cpuOK {
		res.CPU = max(0, cpu1-cpu0)
	}
	if req.Audit {
		res.Audit = &sandbox.Audit{Unavailable: "the docker backend does not trace system calls; aar verify audits in the local (bubblewrap) sandbox"}
	}
	sandbox.Finish(res, out, errw, timedOut, timeout)
	return res, nil
}

func (s *box) endCommand() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
}

type execOpts struct {
	argv    []string
	env     []string
	dir     string
	stdin   []byte
	timeout time.Duration
	user    string // default 1000:1000
}

// run runs argv in the container under coreutils timeout (which kills its
// whole process group at the deadline) and copies its output; on ctx's end
// the exec's processes are killed from the host.
func (s *box) run(ctx context.Context, o execOpts, stdout, stderr io.Writer) (code int, timedOut bool, err error) {
	user := o.user
	if user == "" {
		user = "1000:1000"
	}
	// timeout puts itself and the command in a new process group and
	// SIGKILLs the group at the deadline; the extra second is the host's
	// margin before it gives up on the stream.
	secs := strconv.FormatFloat(o.timeout.Seconds(), 'f', 3, 64)
	cmd := append([]string{"timeout", "-s", "KILL", secs}, o.argv...)
	ec, err := s.b.Client.ExecCreate(ctx, s.id, client.ExecCreateOptions{
		User: user, Cmd: cmd, Env: o.env, WorkingDir: o.dir,
		AttachStdin: true, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return 0, false, s.gone(ctx, fmt.Errorf("exec in sandbox %s: %w", s.spec.ID, err))
	}
	att, err := s.b.Client.ExecAttach(ctx, ec.ID, client.ExecAttachOptions{})
	if err != nil {
		return 0, false, s.gone(ctx, fmt.Errorf("attach to exec in sandbox %s: %w", s.spec.ID, err))
	}
	defer att.Close()
	go func() {
		if len(o.stdin) > 0 {
			_, _ = io.Copy(att.Conn, bytes.NewReader(o.stdin))
		}
		_ = att.CloseWrite()
	}()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copied <- err
	}()
	deadline := time.NewTimer(o.timeout + 10*time.Second)
	defer deadline.Stop()
	start := time.Now()
	select {
	case <-copied:
	case <-ctx.Done():
		s.killExec(ec.ID)
		att.Close()
		<-copied
	case <-deadline.C:
		// timeout(1) should have ended it: something holds the stream.
		s.killExec(ec.ID)
		att.Close()
		<-copied
	}
	ins, err := s.b.Client.ExecInspect(context.WithoutCancel(ctx), ec.ID, client.ExecInspectOptions{})
	if err != nil {
		return 0, false, s.gone(ctx, fmt.Errorf("exec result in sandbox %s: %w", s.spec.ID, err))
	}
	code = ins.ExitCode
	// timeout(1) exits 137 (128+SIGKILL) when it killed the command.
	timedOut = ctx.Err() == nil && code == 137 && time.Since(start) >= o.timeout
	return code, timedOut, nil
}

// killExec kills an exec's process group from the host (the engine has no
// API for it; its pid is a host pid, the group timeout(1) leads).
func (s *box) killExec(execID string) {
	ins, err := s.b.Client.ExecInspect(context.Background(), execID, client.ExecInspectOptions{})
	if err != nil || ins.PID <= 0 {
		return
	}
	_ = syscall.Kill(-ins.PID, syscall.SIGKILL)
	_ = syscall.Kill(ins.PID, syscall.SIGKILL)
}

// killLeftovers kills every researcher process in the container once no
// command is running: `kill -9 -1` as uid 1000 signals all of them but
// itself (and never pid 1, the engine's init, which is root's).
func (s *box) killLeftovers(ctx context.Context) {
	s.mu.Lock()
	others := s.active > 1
	s.mu.Unlock()
	if others {
		return
	}
	// Where the engine runs here its cgroup tells whether anything is left
	// besides the container's init and sleep; then the exec is not needed.
	if n, ok := s.procs(); ok && n <= 2 {
		return
	}
	var sink sandbox.Capped
	_, _, _ = s.run(context.WithoutCancel(ctx), execOpts{argv: []string{"kill", "-9", "-1"}, dir: "/", timeout: 30 * time.Second}, &sink, &sink)
}

// procs counts the container's processes from its cgroup on this host.
func (s *box) procs() (int, bool) {
	for _, p := range []string{
		"/sys/fs/cgroup/pids/docker/" + s.id + "/cgroup.procs",
		"/sys/fs/cgroup/system.slice/docker-" + s.id + ".scope/cgroup.procs",
		"/sys/fs/cgroup/docker/" + s.id + "/cgroup.procs",
	} {
		if b, err := os.ReadFile(p); err == nil {
			return len(strings.Fields(string(b))), true
		}
	}
	return 0, false
}

// gone tells a command that failed because the container died from other
// failures.
func (s *box) gone(ctx context.Context, err error) error {
	ins, ierr := s.b.Client.ContainerInspect(context.WithoutCancel(ctx), s.id, client.ContainerInspectOptions{})
	if ierr == nil && ins.Container.State != nil && !ins.Container.State.Running {
		return fmt.Errorf("sandbox %s's container is %s (exit %d; lifetime %s, or killed): %w", s.spec.ID, ins.Container.State.Status, ins.Container.State.ExitCode, s.lim.Lifetime, err)
	}
	return err
}

// cpuUsage is the container's CPU time so far: its cgroup's count (which
// sees every process of the container), read on the host where the engine
// runs here, else from the engine's one-shot stats.
func (s *box) cpuUsage(ctx context.Context) (time.Duration, bool) {
	for _, p := range []string{
		"/sys/fs/cgroup/cpuacct/docker/" + s.id + "/cpuacct.usage",
		"/sys/fs/cgroup/cpu,cpuacct/docker/" + s.id + "/cpuacct.usage",
	} {
		if b, err := os.ReadFile(p); err == nil {
			if ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
				return time.Duration(ns), true
			}
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/system.slice/docker-" + s.id + ".scope/cpu.stat", "/sys/fs/cgroup/docker/" + s.id + "/cpu.stat"} {
		if b, err := os.ReadFile(p); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
					if us, err := strconv.ParseInt(v, 10, 64); err == nil {
						return time.Duration(us) * time.Microsecond, true
					}
				}
			}
		}
	}
	st, err := s.b.Client.ContainerStats(ctx, s.id, client.ContainerStatsOptions{Stream: false})
	if err != nil {
		return 0, false
	}
	defer st.Body.Close()
	var v container.StatsResponse
	if err := decodeJSON(st.Body, &v); err != nil {
		return 0, false
	}
	return time.Duration(v.CPUStats.CPUUsage.TotalUsage), v.CPUStats.CPUUsage.TotalUsage > 0
}

// insidePath turns a workspace-relative path into an absolute one under
// /workspace; ".." stays inside, as in the local backend.
func insidePath(p string) (string, error) {
	clean := strings.TrimPrefix(path.Clean("/"+p), "/")
	if clean == "" {
		return "", fmt.Errorf("path %q names the workspace itself, not a file in it", p)
	}
	return "/workspace/" + clean, nil
}

// The shell programs behind WriteFile and ReadFile resolve the path inside
// the container (the researcher's own view: no link can reach the host)
// and refuse one that leaves /workspace or is not a regular file, so a
// FIFO cannot hang the host.
const (
	writeScript = `set -e
d=$(dirname -- "$1"); mkdir -p -- "$d"
rd=$(realpath -e -- "$d"); case "$rd/" in /workspace/*) ;; *) echo "outside the workspace" >&2; exit 3;; esac
f="$rd/$(basename -- "$1")"
if [ -e "$f" ] || [ -L "$f" ]; then rf=$(realpath -e -- "$f") || exit 3; case "$rf" in /workspace/*) ;; *) echo "outside the workspace" >&2; exit 3;; esac; [ -f "$rf" ] || { echo "not a regular file" >&2; exit 3; }; f=$rf; fi
t=$(mktemp -p "$rd" .aar-write.XXXXXX); cat > "$t"; mv -f -- "$t" "$f"`
	readScript = `rf=$(realpath -e -- "$1") || exit 3
case "$rf" in /workspace/*) ;; *) echo "outside the workspace" >&2; exit 3;; esac
[ -f "$rf" ] || { echo "not a regular file" >&2; exit 3; }
exec head -c 67108864 -- "$rf"`
)

// WriteFile implements sandbox.Sandbox.
func (s *box) WriteFile(p string, data []byte) error {
	abs, err := insidePath(p)
	if err != nil {
		return err
	}
	var out, errw sandbox.Capped
	out.Max, errw.Max = 4096, 4096
	code, _, err := s.run(context.Background(), execOpts{argv: []string{"/bin/sh", "-c", writeScript, "aar-write", abs}, dir: "/workspace", stdin: data, timeout: time.Minute}, &out, &errw)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("workspace path %q: %s", p, strings.TrimSpace(errw.Buf.String()))
	}
	return nil
}

// ReadFile implements sandbox.Sandbox (at most 64 MiB).
func (s *box) ReadFile(p string) ([]byte, error) {
	abs, err := insidePath(p)
	if err != nil {
		return nil, err
	}
	out := &sandbox.Capped{Max: 64 << 20}
	errw := &sandbox.Capped{Max: 4096}
	code, _, err := s.run(context.Background(), execOpts{argv: []string{"/bin/sh", "-c", readScript, "aar-read", abs}, dir: "/workspace", timeout: time.Minute}, out, errw)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("workspace path %q: %s", p, strings.TrimSpace(errw.Buf.String()))
	}
	return out.Buf.Bytes(), nil
}

// ReadTree implements sandbox.TreeReader: /workspace as one tar stream,
// one exec instead of one per file.
func (s *box) ReadTree(ctx context.Context) ([]sandbox.File, error) {
	out := &sandbox.Capped{Max: sandbox.MaxTree}
	errw := &sandbox.Capped{Max: 4096}
	code, _, err := s.run(ctx, execOpts{argv: sandbox.TreeCommand, dir: "/workspace", timeout: 5 * time.Minute}, out, errw)
	switch {
	case err != nil:
		return nil, err
	case out.Dropped > 0:
		return nil, fmt.Errorf("/workspace holds more than %d MiB", sandbox.MaxTree>>20)
	case code != 0:
		return nil, fmt.Errorf("read /workspace: tar exited %d: %s", code, strings.TrimSpace(errw.Buf.String()))
	}
	return sandbox.ReadTar(&out.Buf)
}

// Destroy implements sandbox.Sandbox: the container and its tmpfs go.
func (s *box) Destroy(ctx context.Context) error {
	s.mu.Lock()
	if s.destroyed {
		s.mu.Unlock()
		return nil
	}
	s.destroyed = true
	s.mu.Unlock()
	_, err := s.b.Client.ContainerRemove(context.WithoutCancel(ctx), s.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("remove sandbox %s's container: %w", s.spec.ID, err)
	}
	return nil
}

// Reap removes this backend's containers whose sandbox id starts with
// prefix ("" for all): what a crashed aar left. It returns the ids removed.
func (b *Backend) Reap(ctx context.Context, prefix string) ([]string, error) {
	res, err := b.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", LabelManaged+"=aar")})
	if err != nil {
		return nil, fmt.Errorf("list sandbox containers: %w", err)
	}
	var removed []string
	var errs []error
	for _, c := range res.Items {
		id := c.Labels[LabelSandbox]
		if id == "" || !strings.HasPrefix(id, prefix) {
			continue
		}
		if _, err := b.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove %s: %w", id, err))
			continue
		}
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}
