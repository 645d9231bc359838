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
// by looking and by running sandboxes under b.Root: one to test isolation,
// then one per profile running the profile's check command.
func Doctor(ctx context.Context, b *Backend) []Check {
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
	if out, err := exec.Command("/bin/sh", "-c", "ulimit -n 64 && ulimit -f 8 && ulimit -c 0 && ulimit -n && ulimit -f").Output(); err != nil || strings.Fields(string(out))[0] != "64" {
		add("rlimits", false, "/bin/sh's ulimit could not set open files and file size (%v): they are not limited", err)
	} else {
		add("rlimits", true, "/bin/sh's ulimit sets open files, file size and core size")
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
	for _, name := range b.ProfileNames() {
		feature := "profile " + name
		prof, err := b.profile(name)
		if err == nil {
			err = prof.Validate()
		}
		if err != nil {
			add(feature, false, "%v", err)
			continue
		}
		if len(prof.Check) == 0 {
			add(feature, true, "%s (no check command)", prof.Description)
			continue
		}
		ps, err := b.Create(ctx, sandbox.Spec{ID: fmt.Sprintf("doctor-%s-%d", name, time.Now().UnixNano()%1e9), Profile: name})
		if err != nil {
			add(feature, false, "create: %v", err)
			continue
		}
		res, err := ps.Exec(ctx, sandbox.ExecRequest{Argv: prof.Check, Timeout: 2 * time.Minute})
		ps.Destroy(ctx)
		switch {
		case err != nil:
			add(feature, false, "check: %v", err)
		case res.ExitCode != 0:
			add(feature, false, "check %q exited %d: %s; fix: %s", strings.Join(prof.Check, " "), res.ExitCode, lastLine(res.Stderr), prof.Fix)
		default:
			add(feature, true, "%s", strings.TrimSpace(string(res.Stdout)))
		}
	}
	return out
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
