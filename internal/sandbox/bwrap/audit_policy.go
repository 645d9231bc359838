package bwrap

import (
	"path"
	"slices"
	"strings"
)

// auditPolicy says which paths a sandbox grants, read from the bubblewrap
// command line that builds it (never a second list kept by hand), plus the
// host paths a command inside has no business naming.
type auditPolicy struct {
	mounts    []mountPoint      // deepest first
	symlinks  map[string]string // --symlink: link → absolute target
	ancestors map[string]bool   // directories bubblewrap made to hold mounts
	host      []string          // host-only paths (the lab's and this sandbox's directories)
	search    []string          // the directories on the sandbox's PATH (looked in for commands)
	labSocket string            // where the lab's socket is inside, "" if none
}

type mountKind int

const (
	mountRO   mountKind = iota // --ro-bind
	mountRW                    // --bind, --tmpfs
	mountProc                  // --proc
	mountDev                   // --dev
)

type mountPoint struct {
	path string
	kind mountKind
}

type verdict int

const (
	granted verdict = iota
	outside         // not in the sandbox, or a host path
	roWrite         // a write to a path the sandbox grants read-only
)

// bwrapArity is how many values each bubblewrap option the box uses takes.
var bwrapArity = map[string]int{
	"--unshare-all": 0, "--die-with-parent": 0, "--new-session": 0, "--clearenv": 0,
	"--uid": 1, "--gid": 1, "--hostname": 1, "--chdir": 1, "--size": 1, "--unsetenv": 1,
	"--setenv": 2, "--proc": 1, "--dev": 1, "--tmpfs": 1, "--dir": 1,
	"--ro-bind": 2, "--bind": 2, "--dev-bind": 2, "--ro-bind-try": 2, "--bind-try": 2, "--symlink": 2,
}

// newAuditPolicy reads the mounts from a bubblewrap command line (up to
// "--") and keeps the host paths that are not also sandbox paths.
func newAuditPolicy(args []string, labSocketHost string, host []string) *auditPolicy {
	p := &auditPolicy{symlinks: map[string]string{}, ancestors: map[string]bool{"/": true}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		n := bwrapArity[a]
		if i+n >= len(args) {
			break
		}
		v := args[i+1 : i+1+n]
		i += n
		switch a {
		case "--ro-bind", "--ro-bind-try":
			p.mounts = append(p.mounts, mountPoint{v[1], mountRO})
			if labSocketHost != "" && v[0] == labSocketHost {
				p.labSocket = v[1]
			}
		case "--bind", "--bind-try", "--dev-bind", "--tmpfs", "--dir":
			p.mounts = append(p.mounts, mountPoint{v[len(v)-1], mountRW})
		case "--proc":
			p.mounts = append(p.mounts, mountPoint{v[0], mountProc})
		case "--dev":
			p.mounts = append(p.mounts, mountPoint{v[0], mountDev})
			// The links bubblewrap makes in its /dev.
			for l, t := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
				"stderr": "/proc/self/fd/2", "core": "/proc/kcore", "ptmx": "pts/ptmx"} {
				if !path.IsAbs(t) {
					t = path.Join(v[0], t)
				}
				p.symlinks[path.Join(v[0], l)] = t
			}
		case "--setenv":
			if v[0] == "PATH" {
				for _, d := range strings.Split(v[1], ":") {
					if path.IsAbs(d) {
						p.search = append(p.search, path.Clean(d))
					}
				}
			}
		case "--symlink":
			t := v[0]
			if !path.IsAbs(t) {
				t = path.Join(path.Dir(v[1]), t)
			}
			p.symlinks[v[1]] = path.Clean(t)
		}
	}
	slices.SortStableFunc(p.mounts, func(a, b mountPoint) int { return len(b.path) - len(a.path) })
	dests := map[string]bool{}
	for _, m := range p.mounts {
		dests[m.path] = true
		for d := path.Dir(m.path); ; d = path.Dir(d) {
			p.ancestors[d] = true
			if d == "/" {
				break
			}
		}
	}
	for l := range p.symlinks {
		p.ancestors[path.Dir(l)] = true
	}
	for _, h := range host {
		if h == "" || !path.IsAbs(h) {
			continue
		}
		h = path.Clean(h)
		// A host path that is also where the sandbox has something (the
		// aar binary bound at its own path, a root like /tmp) tells nothing.
		if p.ancestors[h] || dests[h] || h == "/" || p.under(h) {
			continue
		}
		p.host = append(p.host, h)
	}
	return p
}

// under tells whether a host path lies inside a read-only mount (an
// installed binary, say): the sandbox sees that path too.
func (p *auditPolicy) under(h string) bool {
	m, ok := p.mount(h)
	return ok && m.kind == mountRO
}

func within(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

func (p *auditPolicy) mount(abs string) (mountPoint, bool) {
	for _, m := range p.mounts {
		if within(abs, m.path) {
			return m, true
		}
	}
	return mountPoint{}, false
}

// check classifies an absolute, clean path a process named; cwd is its
// working directory (for /proc/self/cwd). With nofollow the call acts on a
// final symbolic link itself (lstat, readlink, unlink), not on its target.
func (p *auditPolicy) check(abs string, write, nofollow bool, cwd string) verdict {
	if _, ok := p.symlinks[abs]; ok && nofollow {
		if write {
			return roWrite
		}
		return granted
	}
	for range 8 {
		abs = p.resolveLinks(abs)
		for _, h := range p.host {
			if within(abs, h) {
				return outside
			}
		}
		m, ok := p.mount(abs)
		if !ok {
			switch {
			case p.ancestors[abs]:
				if write {
					return roWrite
				}
				return granted
			case !write && probe(abs):
				return granted
			case !write && slices.ContainsFunc(p.search, func(d string) bool { return within(abs, d) }):
				return granted
			}
			return outside
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(abs, m.path), "/")
		switch m.kind {
		case mountRW:
			return granted
		case mountRO:
			if write {
				return roWrite
			}
			return granted
		case mountDev:
			first, _, _ := strings.Cut(rel, "/")
			if rel == "" || devNodes[first] {
				return granted
			}
			return outside
		case mountProc:
			next, v := procCheck(rel, write, cwd)
			if next == "" {
				return v
			}
			abs = next // /proc/PID/root/x is /x
		}
	}
	return outside
}

func (p *auditPolicy) resolveLinks(abs string) string {
	for range 8 {
		changed := false
		for l, t := range p.symlinks {
			if within(abs, l) {
				abs = path.Join(t, strings.TrimPrefix(abs, l))
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	return abs
}

// devNodes are the nodes and directories bubblewrap's --dev holds (its
// links are in auditPolicy.symlinks).
var devNodes = map[string]bool{
	"null": true, "zero": true, "full": true, "random": true, "urandom": true, "tty": true,
	"console": true, "pts": true, "shm": true,
}

// procInfo are /proc entries outside the process directories that
// runtimes and tools read (kernel settings and counters, no host secrets).
var procInfo = map[string]bool{
	"cpuinfo": true, "meminfo": true, "stat": true, "loadavg": true, "uptime": true, "version": true,
	"filesystems": true, "mounts": true, "cgroups": true, "swaps": true, "sys": true, "net": true,
	"crypto": true, "vmstat": true, "zoneinfo": true, "buddyinfo": true, "pressure": true,
	"interrupts": true, "softirqs": true, "devices": true, "misc": true, "locks": true,
}

// procCheck classifies a path under /proc. The sandbox has its own pid
// namespace, so every /proc/PID is one of its own processes: their
// directories are granted, except that PID/root/x is the path /x (returned
// as next, to check again) and PID/cwd/x is x below the caller's directory.
func procCheck(rel string, write bool, cwd string) (next string, v verdict) {
	if rel == "" {
		if write {
			return "", roWrite
		}
		return "", granted
	}
	parts := strings.Split(rel, "/")
	if parts[0] == "self" || parts[0] == "thread-self" || isDigits(parts[0]) {
		i := 1
		if len(parts) > 3 && parts[1] == "task" && isDigits(parts[2]) {
			i = 3
		}
		if len(parts) > i+1 {
			switch parts[i] {
			case "root":
				return "/" + strings.Join(parts[i+1:], "/"), granted
			case "cwd":
				return path.Join(cwd, strings.Join(parts[i+1:], "/")), granted
			}
		}
		return "", granted
	}
	if write {
		return "", roWrite
	}
	if procInfo[parts[0]] {
		return "", granted
	}
	return "", outside
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// probes are lookups the C library, Python and the Go runtime make on
// their own at start (and that fail in a sandbox without those files), and
// the sandbox's own mount points when a spec leaves one out. Reading them
// says nothing about a command's intent, so they are not reported. An entry
// ending in '*' matches any path with that prefix; others match the path
// and everything below it.
var probes = []string{
	// glibc: the loader, SELinux checks in coreutils, name service, locale, time zone
	"/etc/ld.so.preload", "/etc/ld.so.nohwcap", "/etc/selinux", "/selinux", "/sys/fs/selinux",
	"/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/host.conf", "/etc/hosts",
	"/etc/resolv.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols",
	"/run/nscd", "/var/run/nscd", "/etc/localtime", "/etc/timezone", "/etc/os-release",
	"/usr/share/zoneinfo", "/usr/share/lib/zoneinfo", "/usr/lib/locale/TZ", "/etc/zoneinfo",
	"/usr/share/locale", "/usr/share/locale-langpack", "/usr/share/i18n", "/etc/locale.alias",
	"/etc/terminfo", "/usr/share/terminfo", "/etc/inputrc", "/etc/mtab",
	// Python's start-up: venv and build-tree landmarks, site directories
	"/usr/pyvenv.cfg", "/usr/local/lib/python3*", "/usr/local/share/python3*", "/etc/python3*",
	// the Go runtime, OpenBLAS and numpy: CPUs, NUMA nodes, cgroup limits, huge pages
	"/sys/devices/system/cpu", "/sys/devices/system/node", "/sys/fs/cgroup",
	"/sys/kernel/mm/transparent_hugepage", "/sys/kernel/mm/hugepages",
	// where a spec's optional mounts go (see box.baseArgs)
	"/data", "/shared", "/run/aar", "/usr/local/bin/aar",
}

func probe(abs string) bool {
	// The Go runtime's last place to look for time zones: the zip in the
	// GOROOT the binary was built with.
	if strings.HasSuffix(abs, "/lib/time/zoneinfo.zip") {
		return true
	}
	for _, p := range probes {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(abs, pre) {
				return true
			}
		} else if within(abs, p) {
			return true
		}
	}
	return false
}
