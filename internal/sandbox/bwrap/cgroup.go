package bwrap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

const cgroupRoot = "/sys/fs/cgroup"

// ParentCPUShares is the CPU weight (cgroup v1 cpu.shares; v2 cpu.weight is
// scaled from it) of the aar/ group holding every sandbox. A process on the
// host, such as the lab's API, weighs 1024, so all sandboxes together yield
// to it when it wants CPU and share the idle cores otherwise; per-sandbox
// shares divide the group among sandboxes.
const ParentCPUShares = 128

// cgroup is a sandbox's control groups: one per v1 controller (memory,
// pids, cpu) under aar/ID, or one v2 group aar/ID.
type cgroup struct {
	id    string
	paths []string // the groups made, where processes are placed
	v2    bool
}

func newCgroup(id string) *cgroup { return &cgroup{id: id} }

// v2Available reports a unified hierarchy with the controllers we need.
func v2Available() bool {
	b, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil && strings.Contains(string(b), "memory") && strings.Contains(string(b), "pids")
}

// setup creates the groups and writes the limits; it returns an error
// naming what could not be enforced (the caller reports it as a warning).
func (c *cgroup) setup(lim sandbox.Limits) error {
	if v2Available() {
		c.v2 = true
		p := filepath.Join(cgroupRoot, "aar", c.id)
		os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0o644)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("memory, process and CPU limits are not enforced (cgroup v2: %v)", err)
		}
		os.WriteFile(filepath.Join(cgroupRoot, "aar", "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0o644)
		os.WriteFile(filepath.Join(cgroupRoot, "aar", "cpu.weight"), []byte(strconv.Itoa(ParentCPUShares*100/1024)), 0o644)
		c.paths = []string{p}
		var missing []string
		write := func(file, val, what string) {
			if err := os.WriteFile(filepath.Join(p, file), []byte(val), 0o644); err != nil {
				missing = append(missing, what)
			}
		}
		write("memory.max", strconv.FormatInt(lim.MemoryBytes, 10), "memory")
		write("memory.swap.max", "0", "swap")
		write("pids.max", strconv.Itoa(lim.Pids), "processes")
		write("cpu.weight", strconv.Itoa(max(1, min(10000, lim.CPUShares*100/1024))), "CPU share")
		if len(missing) > 0 {
			return fmt.Errorf("not enforced (cgroup v2): %s", strings.Join(missing, ", "))
		}
		return nil
	}
	var missing []string
	for _, ctl := range []struct{ name, file, val, what string }{
		{"memory", "memory.limit_in_bytes", strconv.FormatInt(lim.MemoryBytes, 10), "memory"},
		{"pids", "pids.max", strconv.Itoa(lim.Pids), "processes"},
		{"cpu", "cpu.shares", strconv.Itoa(lim.CPUShares), "CPU share"},
		{"cpuacct", "", "", "CPU accounting"},
	} {
		if ctl.name == "cpuacct" {
			// Accounting only: where cpuacct is mounted on its own, a group
			// there counts the sandbox's CPU time (co-mounted with cpu, the
			// cpu group has cpuacct.usage already).
			if st, err := os.Stat(filepath.Join(cgroupRoot, "cpuacct")); err != nil || !st.IsDir() || sameDir(filepath.Join(cgroupRoot, "cpuacct"), filepath.Join(cgroupRoot, "cpu")) {
				continue
			}
		}
		p := filepath.Join(cgroupRoot, ctl.name, "aar", c.id)
		if err := os.MkdirAll(p, 0o755); err != nil {
			missing = append(missing, ctl.what)
			continue
		}
		c.paths = append(c.paths, p)
		if ctl.name == "cpu" {
			os.WriteFile(filepath.Join(cgroupRoot, "cpu", "aar", "cpu.shares"), []byte(strconv.Itoa(ParentCPUShares)), 0o644)
		}
		if ctl.file == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(p, ctl.file), []byte(ctl.val), 0o644); err != nil {
			missing = append(missing, ctl.what)
		}
		if ctl.name == "memory" {
			// No swap to hide in, where the kernel allows setting it.
			os.WriteFile(filepath.Join(p, "memory.memsw.limit_in_bytes"), []byte(ctl.val), 0o644)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not enforced (cgroup v1; root needed): %s", strings.Join(missing, ", "))
	}
	return nil
}

func sameDir(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// cpuUsage is the CPU time the groups' processes have used so far (false
// where no group accounts for it).
func (c *cgroup) cpuUsage() (time.Duration, bool) {
	for _, p := range c.paths {
		if c.v2 {
			b, err := os.ReadFile(filepath.Join(p, "cpu.stat"))
			if err != nil {
				return 0, false
			}
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
					us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					return time.Duration(us) * time.Microsecond, err == nil
				}
			}
			return 0, false
		}
		if b, err := os.ReadFile(filepath.Join(p, "cpuacct.usage")); err == nil {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return time.Duration(ns), err == nil
		}
	}
	return 0, false
}

// joinScript is shell that moves the current shell into the groups.
func (c *cgroup) joinScript() string {
	var b strings.Builder
	for _, p := range c.paths {
		fmt.Fprintf(&b, "echo $$ > '%s/cgroup.procs' 2>/dev/null; ", p)
	}
	return b.String()
}

// pids lists the processes in the groups.
func (c *cgroup) pids() []int {
	seen := map[int]bool{}
	var out []int
	for _, p := range c.paths {
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// killAll kills every process in the groups until none is left (a fork
// bomb races the killing, so it repeats for up to two seconds).
func (c *cgroup) killAll() {
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := c.pids()
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Alive is how many processes are in the groups.
func (c *cgroup) alive() int { return len(c.pids()) }

// remove deletes the groups (after killAll).
func (c *cgroup) remove() error {
	var errs []error
	for _, p := range c.paths {
		var err error
		for range 50 {
			if err = os.Remove(p); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			c.killAll()
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// existingCgroup finds the groups of a sandbox made earlier (by another
// process), for removal.
func existingCgroup(id string) *cgroup {
	c := newCgroup(id)
	candidates := []string{filepath.Join(cgroupRoot, "aar", id)}
	for _, ctl := range []string{"memory", "pids", "cpu", "cpuacct"} {
		candidates = append(candidates, filepath.Join(cgroupRoot, ctl, "aar", id))
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			c.paths = append(c.paths, p)
		}
	}
	return c
}
