package bwrap

import (
	"context"
	"fmt"
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
	"github.com/aar-lab/aar/internal/sandbox/sandboxtest"
)

func needBwrap(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)")
	}
}

// newBox creates a sandbox with a data dir, a shared dir and a host canary
// outside every mount.
func newBox(t *testing.T, lim sandbox.Limits) (sandbox.Sandbox, string) {
	t.Helper()
	needBwrap(t)
	root := t.TempDir()
	data, canary := sandboxtest.Fixture(t, root)
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

// TestBattery runs the attack battery every backend passes (see
// sandboxtest), with what only this backend can see: its cgroups' process
// counts and refused forks, and its directory on the host.
func TestBattery(t *testing.T) {
	needBwrap(t)
	root := t.TempDir()
	b := &Backend{Root: filepath.Join(root, "sandboxes")}
	sandboxtest.Run(t, sandboxtest.Harness{
		New: func(t *testing.T, spec sandbox.Spec) sandbox.Sandbox {
			s, err := b.Create(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Destroy(context.Background()) })
			return s
		},
		Limits: os.Geteuid() == 0,
		ForkRefused: func(s sandbox.Sandbox) int {
			refused := 0
			for _, p := range s.(*box).cg.paths {
				if ev, err := os.ReadFile(filepath.Join(p, "pids.events")); err == nil {
					fmt.Sscanf(string(ev), "max %d", &refused)
				}
			}
			return refused
		},
		Alive: func(s sandbox.Sandbox) int { return s.(*box).cg.alive() },
		AfterDestroy: func(t *testing.T, s sandbox.Sandbox) {
			b := s.(*box)
			if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
				t.Errorf("sandbox directory left: %v", err)
			}
			for _, p := range b.cg.paths {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("cgroup %s left", p)
				}
			}
		},
		HostDir: func(s sandbox.Sandbox) string { return s.(*box).dir },
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
