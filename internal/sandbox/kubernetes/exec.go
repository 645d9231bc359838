package kubernetes

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

// stream runs argv in a container of a pod through the API server's exec
// subresource: the WebSocket protocol, falling back to SPDY where a proxy
// or an older server refuses the upgrade. It needs a kubelet (a real
// cluster): nothing answers exec under envtest. A command that exits
// non-zero is a utilexec.CodeExitError.
func (b *Backend) stream(ctx context.Context, pod, container string, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	req := b.client.CoreV1().RESTClient().Post().
		Namespace(b.cfg.Namespace).Resource("pods").Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: argv, Stdin: stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(b.rest, "GET", req.URL().String())
	if err != nil {
		return fmt.Errorf("exec in pod %s: %w", pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(b.rest, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("exec in pod %s: %w", pod, err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return fmt.Errorf("exec in pod %s: %w", pod, err)
	}
	return ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// execScript is what every command runs under, as /bin/sh -c execScript
// aar-exec TIMEOUT DIR NOFILE FBLOCKS ARGV...: it reports its pid (the
// process group the timeout will lead) on the first line of stderr, reads
// the request's environment from stdin (one base64 KEY=VALUE a line, an
// empty line last, so that no value travels in the exec request's URL,
// which API servers log), sets the rlimits, changes directory, and becomes
// coreutils timeout, which starts its own process group and on expiry
// sends SIGKILL to the command and everything it started (exit status
// 137). The rest of stdin is the command's.
const execScript = `echo "aar-pid $$" >&2
while IFS= read -r l && [ -n "$l" ]; do
	kv=$(printf '%s' "$l" | base64 -d && echo x) || { echo "aar: bad environment line" >&2; exit 125; }
	export "${kv%x}" || exit 125
done
t=$1 d=$2
ulimit -n "$3" 2>/dev/null
ulimit -f "$4" 2>/dev/null
ulimit -c 0 2>/dev/null
shift 4
cd "$d" || exit 126
exec timeout -s KILL "$t" "$@"`

// killScript ends a command's process group (or the process, before it
// leads one): kill -s KILL -- -PID.
const killScript = `kill -s KILL -- "-$1" 2>/dev/null || kill -s KILL "$1" 2>/dev/null; exit 0`

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// execCommand builds a command's argv and stdin (see execScript). Env
// entries whose name a shell cannot export are left out.
func execCommand(req sandbox.ExecRequest, timeout time.Duration, lim sandbox.Limits) (argv []string, stdin []byte) {
	dir := req.Dir
	if dir == "" {
		dir = workspaceDir
	}
	argv = []string{"/bin/sh", "-c", execScript, "aar-exec",
		strconv.FormatFloat(max(timeout, time.Millisecond).Seconds(), 'f', 3, 64), dir,
		strconv.Itoa(lim.OpenFiles), strconv.FormatInt(max(1, lim.FileBytes/512), 10)}
	if req.Shell != "" {
		argv = append(argv, "/bin/sh", "-c", req.Shell)
	} else {
		argv = append(argv, req.Argv...)
	}
	var b bytes.Buffer
	for _, kv := range req.Env {
		if k, _, ok := strings.Cut(kv, "="); ok && envName.MatchString(k) {
			b.WriteString(base64.StdEncoding.EncodeToString([]byte(kv)))
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	b.Write(req.Stdin)
	return argv, b.Bytes()
}

// exitCode is the exit status an exec error carries (a command that ran
// and exited non-zero), or ok false for any other error.
func exitCode(err error) (code int, ok bool) {
	if err == nil {
		return 0, true
	}
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		return ce.Code, true
	}
	var ee utilexec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return ee.ExitStatus(), true
	}
	return 0, false
}

// timedOut tells whether a command that exited with code after elapsed
// was ended by its timeout: timeout's SIGKILL (137; 124 should timeout
// ever exit by itself) once the timeout has passed.
func timedOut(code int, elapsed, timeout time.Duration) bool {
	return (code == 137 || code == 124) && elapsed >= timeout-10*time.Millisecond
}

// pidSniffer takes execScript's "aar-pid N" line off the front of stderr
// and passes the rest on.
type pidSniffer struct {
	w io.Writer

	mu   sync.Mutex
	head []byte // guarded by mu; the first line so far
	done bool   // guarded by mu
	id   int    // guarded by mu
}

func (p *pidSniffer) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return p.w.Write(b)
	}
	n := len(b)
	i := bytes.IndexByte(b, '\n')
	if i < 0 && len(p.head)+len(b) < 64 {
		p.head = append(p.head, b...)
		p.mu.Unlock()
		return n, nil
	}
	p.done = true
	var rest []byte
	if i >= 0 {
		p.head = append(p.head, b[:i]...)
		rest = b[i+1:]
	} else {
		p.head = append(p.head, b...)
	}
	head := p.head
	if v, ok := strings.CutPrefix(string(head), "aar-pid "); ok {
		p.id, _ = strconv.Atoi(v)
		head = nil
	} else if i >= 0 {
		head = append(head, '\n') // not our line: keep it
	}
	p.mu.Unlock()
	if len(head) > 0 {
		if _, err := p.w.Write(head); err != nil {
			return 0, err
		}
	}
	if len(rest) > 0 {
		if _, err := p.w.Write(rest); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// pid is the command's pid, 0 before it is known.
func (p *pidSniffer) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.id
}

// auditUnavailable is why kubernetes sandboxes never audit.
const auditUnavailable = "the kubernetes backend cannot trace a command's system calls (its pods have no ptrace and no capabilities); run with --sandbox bwrap to audit"

// execGrace is how long past a command's timeout Exec waits for the
// stream to end (timeout inside the pod ends the command itself) before
// it gives up on the stream and kills the command's group.
const execGrace = 30 * time.Second

// Exec implements sandbox.Sandbox. The command runs in the "sandbox"
// container through the API server (see stream), under coreutils timeout
// (the command's process group is killed on expiry) and the sandbox's
// rlimits; /shared first receives the forum's new files. CPU is always 0:
// the exec API reports no resource usage for a command.
func (s *box) Exec(ctx context.Context, req sandbox.ExecRequest) (*sandbox.ExecResult, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	if len(req.Argv) == 0 && req.Shell == "" {
		return nil, errors.New("exec: give argv or a shell command")
	}
	timeout, err := s.lim.Bound(s.spec.ID, req.Timeout, s.created)
	if err != nil {
		return nil, err
	}
	if err := s.syncShared(ctx); err != nil {
		return nil, err
	}
	argv, stdin := execCommand(req, timeout, s.lim)
	out := &sandbox.Capped{Max: s.lim.OutputBytes}
	errw := &sandbox.Capped{Max: s.lim.OutputBytes}
	pid := &pidSniffer{w: errw}
	cctx, cancel := context.WithTimeout(ctx, timeout+execGrace)
	defer cancel()
	start := time.Now()
	err = s.b.stream(cctx, s.name, ContainerSandbox, argv, bytes.NewReader(stdin), out, pid)
	res := &sandbox.ExecResult{Duration: time.Since(start)}
	code, exited := exitCode(err)
	killed := false
	switch {
	case exited:
		res.ExitCode = code
		killed = timedOut(code, res.Duration, timeout)
	case ctx.Err() != nil:
		// The caller gave up: the command would run on in the pod.
		s.kill(pid.pid())
		return nil, fmt.Errorf("sandbox %s: command stopped: %w", s.spec.ID, ctx.Err())
	case cctx.Err() != nil:
		s.kill(pid.pid())
		res.ExitCode, killed = 137, true
	default:
		return nil, fmt.Errorf("sandbox %s: exec: %w", s.spec.ID, err)
	}
	if req.Audit {
		res.Audit = &sandbox.Audit{Unavailable: auditUnavailable}
	}
	sandbox.Finish(res, out, errw, killed, timeout)
	return res, nil
}

// kill ends a command's process group in the pod (0: not known, nothing
// to do; the timeout inside the pod still bounds it).
func (s *box) kill(pid int) {
	if pid <= 1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sink := &sandbox.Capped{Max: 1024}
	if err := s.b.stream(ctx, s.name, ContainerSandbox, []string{"/bin/sh", "-c", killScript, "aar-kill", strconv.Itoa(pid)}, nil, sink, sink); err != nil {
		s.b.cfg.Logger.Warn("kill a sandbox command", "sandbox", s.spec.ID, "pid", pid, "err", err)
	}
}
