package bwrap

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

// Check is one line of a doctor report.
type Check struct {
	Feature string `json:"feature"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`
}

// Doctor reports which isolation features and profiles this host supports,
// by looking and by running a sandbox under root (a temporary directory).
func Doctor(ctx context.Context, root string) []Check {
	var out []Check
	add := func(feature string, ok bool, format string, args ...any) {
		out = append(out, Check{Feature: feature, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	bw, err := exec.LookPath("bwrap")
	if err != nil {
		add("bubblewrap", false, "not installed: apt-get install bubblewrap")
		return out
	}
	v, _ := exec.Command(bw, "--version").Output()
	add("bubblewrap", true, "%s (%s)", strings.TrimSpace(string(v)), bw)
	if _, err := exec.LookPath("prlimit"); err != nil {
		add("rlimits", false, "prlimit (util-linux) not found: open files and file size are not limited")
	} else {
		add("rlimits", true, "prlimit sets open files and file size")
	}
	add("root", os.Geteuid() == 0, "euid %d (cgroup limits and the workspace size need root)", os.Geteuid())
	switch {
	case v2Available():
		add("cgroups", true, "v2 unified hierarchy with memory and pids")
	default:
		var ctl []string
		for _, c := range []string{"memory", "pids", "cpu"} {
			if _, err := os.Stat(filepath.Join(cgroupRoot, c)); err == nil {
				ctl = append(ctl, c)
			}
		}
		add("cgroups", len(ctl) == 3, "v1 controllers: %s", strings.Join(ctl, ", "))
	}
	py := exec.Command("/usr/bin/python3", "-c", "import numpy, scipy, sklearn; print(numpy.__version__, scipy.__version__, sklearn.__version__)")
	if b, err := py.Output(); err == nil {
		add("profile cpu: python3", true, "numpy, scipy, scikit-learn %s", strings.TrimSpace(string(b)))
	} else {
		add("profile cpu: python3", false, "Debian python3 with numpy, scipy and scikit-learn missing: apt-get install python3-numpy python3-scipy python3-sklearn")
	}
	b := &Backend{Root: root}
	start := time.Now()
	s, err := b.Create(ctx, sandbox.Spec{ID: fmt.Sprintf("doctor-%d", time.Now().UnixNano()%1e9)})
	if err != nil {
		add("sandbox", false, "create: %v", err)
		return out
	}
	defer s.Destroy(ctx)
	res, err := s.Exec(ctx, sandbox.ExecRequest{Shell: "id -u; cat /proc/net/route | wc -l"})
	switch {
	case err != nil:
		add("sandbox", false, "exec: %v", err)
	case res.ExitCode != 0:
		add("sandbox", false, "exec exit %d: %s", res.ExitCode, res.Stderr)
	default:
		add("sandbox", true, "create + run in %s; uid inside %s; network routes: %s", time.Since(start).Round(time.Millisecond),
			strings.Fields(string(res.Stdout))[0], strings.Fields(string(res.Stdout))[1])
	}
	for _, w := range s.Warnings() {
		add("limit", false, "%s", w)
	}
	return out
}
