// Package launch owns how a researcher's worker (aar researcher) is
// started: the Launcher interface the campaign supervisor uses, the spec it
// passes, and the local launcher (a child process). Cluster launchers
// (sandbox/kubernetes) implement the same interface.
package launch

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
)

// Spec is one researcher's worker for a Launcher to start: `aar
// researcher` with Args, its lab token, and the model keys in Env.
type Spec struct {
	Campaign string
	// Researcher names the researcher (unique in the campaign).
	Researcher string
	// Args are aar's arguments ("researcher", "--lab", …), without the
	// binary.
	Args []string
	// Env is KEY=VALUE added to the worker's environment: model keys and
	// their base URLs (none for Proxied workers). Never the token.
	Env []string
	// Proxied workers (agent-cli) reach models only through the lab's
	// metering proxy: they get no model key or base URL at all, not even
	// from aar run's own environment.
	Proxied bool
	// Token is the researcher's lab token; the worker gets it as AAR_TOKEN
	// (a local child's environment, a Kubernetes Secret).
	Token string
}

// Worker is a started worker.
type Worker interface {
	// Describe is what the researcher_started event records about where the
	// worker runs (a pid, a pod).
	Describe() map[string]any
	// Wait blocks until the worker ends and returns what it printed on
	// stdout (its JSON summary) and how it ended: nil when it exited 0.
	Wait() (summary []byte, err error)
	// Stop asks the worker to finish its call and stop (SIGTERM); Kill ends
	// it now. Both may be called after it has ended.
	Stop()
	Kill()
}

// Launcher starts workers: local child processes (Local) or pods on
// a cluster (sandbox/kube). Launch copies the worker's log (stderr) lines to
// log as they come, and closes nothing.
type Launcher interface {
	Launch(ctx context.Context, spec Spec, log io.Writer) (Worker, error)
}

// ModelEnv are the environment variables that carry model keys and
// endpoints.
var ModelEnv = []string{"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"}

// Local runs each worker as a child process of aar run (Exe), which
// dies with it and gets signals only from it.
type Local struct {
	Exe string
}

// Launch implements Launcher.
func (l Local) Launch(_ context.Context, spec Spec, log io.Writer) (Worker, error) {
	cmd := exec.Command(l.Exe, spec.Args...)
	env := withoutEnv(os.Environ(), "AAR_TOKEN", "AAR_LAB")
	if spec.Proxied {
		env = withoutEnv(env, ModelEnv...)
	}
	cmd.Env = append(append(env, spec.Env...), "AAR_TOKEN="+spec.Token)
	// The worker dies with the supervisor (a crashed `aar run` leaves no
	// orphan spending), and gets signals only from it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = log
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %s: %w", spec.Researcher, err)
	}
	return &localWorker{cmd: cmd, stdout: &stdout}, nil
}

type localWorker struct {
	cmd    *exec.Cmd
	stdout *strings.Builder
}

func (w *localWorker) Describe() map[string]any { return map[string]any{"pid": w.cmd.Process.Pid} }

func (w *localWorker) Wait() ([]byte, error) {
	err := w.cmd.Wait()
	return []byte(w.stdout.String()), err
}

func (w *localWorker) Stop() { _ = w.cmd.Process.Signal(syscall.SIGTERM) }
func (w *localWorker) Kill() { _ = w.cmd.Process.Kill() }

// withoutEnv drops the given keys from env.
func withoutEnv(env []string, keys ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(keys, k) {
			out = append(out, kv)
		}
	}
	return out
}
