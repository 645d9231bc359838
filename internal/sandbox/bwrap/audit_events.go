package bwrap

import (
	"path"
	"strconv"
	"strings"

	"github.com/aar-lab/aar/internal/sandbox"
)

// auditor turns a trace of bubblewrap and the command it starts into a
// sandbox.Audit. Bubblewrap's own calls (mounts, pivot_root, the user
// namespace it makes) are not the command's: the auditor ignores every
// process seen before the command's first successful execve (but for the
// execve calls that start it), and counts from there the process that made
// it and every process that appears later.
type auditor struct {
	pol *auditPolicy
	dir string // where the command starts

	lines    lineParser
	root     int          // the first process traced: the shell that becomes bubblewrap
	started  bool         // the command's first execve succeeded
	user     int          // the process that made it
	setup    map[int]bool // processes seen before: bubblewrap's
	cwd      map[int]string
	lastFork int // the process whose fork-like call is the latest seen

	out   sandbox.Audit
	index map[eventKey]int
	diag  []string // strace's own messages
}

type eventList int

const (
	listOutside eventList = iota
	listNetwork
	listDenied
)

type eventKey struct {
	list                    eventList
	syscall, target, result string
}

func newAuditor(pol *auditPolicy, dir string) *auditor {
	return &auditor{pol: pol, dir: dir, setup: map[int]bool{}, cwd: map[int]string{}, index: map[eventKey]int{}}
}

// line reads one line of strace's output.
func (a *auditor) line(s string) {
	if rest, ok := strings.CutPrefix(s, "strace: "); ok {
		if len(a.diag) < 20 {
			a.diag = append(a.diag, rest)
		}
		return
	}
	c, kind := a.lines.parse(s)
	if kind == lineOther {
		return
	}
	if a.root == 0 {
		a.root = c.pid
	}
	if kind == lineExit {
		delete(a.cwd, c.pid)
		delete(a.setup, c.pid)
		return
	}
	if !a.started {
		a.setup[c.pid] = true
		if kind == lineCall && c.pid != a.root && (c.name == "execve" || c.name == "execveat") {
			// Bubblewrap's child execs nothing but the command (trying each
			// directory on PATH for a bare name): these are the command's
			// first calls, and a program outside the sandbox is reported
			// even when it never starts.
			a.cwd[c.pid] = a.dir
			a.out.Syscalls++
			a.call(&c)
			if c.ret == "0" {
				a.started, a.user = true, c.pid
			}
		}
		return
	}
	if a.setup[c.pid] && c.pid != a.user {
		return
	}
	if _, ok := a.cwd[c.pid]; !ok {
		// A new process: it has its parent's directory, and its parent is
		// (nearly always) the one whose fork is the latest seen.
		if d, ok := a.cwd[a.lastFork]; ok {
			a.cwd[c.pid] = d
		} else {
			a.cwd[c.pid] = a.dir
		}
	}
	if forks[c.name] {
		a.lastFork = c.pid
	}
	if kind == lineUnfinished {
		return
	}
	a.out.Syscalls++
	a.call(&c)
}

var forks = map[string]bool{"clone": true, "clone3": true, "fork": true, "vfork": true}

func (a *auditor) call(c *call) {
	for _, arg := range c.args {
		// AT_FDCWD</dir> says where the process is, at every *at call.
		if p, cwd, ok := fdPath(arg); ok && cwd {
			a.cwd[c.pid] = p
		}
	}
	switch c.name {
	case "clone", "clone3", "fork", "vfork":
		if c.child > 0 {
			if _, ok := a.cwd[c.child]; !ok {
				a.cwd[c.child] = a.cwd[c.pid]
			}
		}
		if f := newNamespaces(c.args); f != "" {
			a.add(listDenied, c, f)
		}
		return
	case "getcwd":
		if p, ok := str(first(c.args)); ok && c.errno == "" && path.IsAbs(p) {
			a.cwd[c.pid] = path.Clean(p)
		}
		return
	case "fchdir":
		if p, _, ok := fdPath(first(c.args)); ok && c.errno == "" {
			a.cwd[c.pid] = p
		}
		return
	}
	if d, ok := privileged[c.name]; ok {
		if !d.onlyRefused || c.errno != "" {
			a.add(listDenied, c, d.target(a, c))
		}
		return
	}
	if netCalls[c.name] {
		a.network(c)
		return
	}
	specs, ok := pathCalls[c.name]
	if !ok {
		return
	}
	for _, sp := range specs {
		if sp.path >= len(c.args) {
			continue
		}
		p, ok := str(c.args[sp.path])
		if !ok || p == "" {
			continue // NULL, an unreadable pointer, or "" with AT_EMPTY_PATH: the call names a descriptor
		}
		abs := a.resolve(c, sp.dirfd, p)
		write := sp.write || (sp.flags >= 0 && sp.flags < len(c.args) && opensForWrite(c.args[sp.flags]))
		a.path(c, abs, write, noFollow(c))
		if sp.target >= 0 && sp.target < len(c.args) {
			// A symbolic link's target, relative to the link's directory.
			if t, ok := str(c.args[sp.target]); ok && t != "" {
				if !path.IsAbs(t) {
					t = path.Join(path.Dir(abs), t)
				}
				a.path(c, path.Clean(t), false, false)
			}
		}
	}
	if c.name == "chdir" && c.errno == "" && len(c.args) > 0 {
		if p, ok := str(c.args[0]); ok {
			a.cwd[c.pid] = a.resolve(c, -1, p)
		}
	}
	// What a successful open really reached, after symbolic links.
	if path.IsAbs(c.retPath) && c.errno == "" {
		a.path(c, path.Clean(c.retPath), false, true)
	}
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// resolve makes p absolute against the directory descriptor argument (or
// the process's working directory).
func (a *auditor) resolve(c *call, dirfd int, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	base := a.cwd[c.pid]
	if dirfd >= 0 && dirfd < len(c.args) {
		if d, _, ok := fdPath(c.args[dirfd]); ok {
			base = d
		}
	}
	if base == "" {
		base = a.dir
	}
	return path.Join(base, p)
}

func (a *auditor) path(c *call, abs string, write, nofollow bool) {
	switch a.pol.check(abs, write, nofollow, a.cwd[c.pid]) {
	case outside:
		a.add(listOutside, c, abs)
	case roWrite:
		a.add(listDenied, c, abs)
	}
}

func (a *auditor) add(list eventList, c *call, target string) {
	if len(target) > 512 {
		target = target[:512] + "..."
	}
	k := eventKey{list, c.name, target, c.result()}
	var l *[]sandbox.AuditEvent
	switch list {
	case listOutside:
		l = &a.out.OutsidePaths
	case listNetwork:
		l = &a.out.Network
	default:
		l = &a.out.Denied
	}
	if i, ok := a.index[k]; ok {
		(*l)[i].Count++
		return
	}
	if len(*l) >= sandbox.AuditCap {
		a.out.Dropped++
		return
	}
	a.index[k] = len(*l)
	*l = append(*l, sandbox.AuditEvent{Syscall: c.name, Target: target, Result: c.result(), PID: c.pid, Count: 1})
}

// result is the audit so far; lists are never nil, so JSON shows [].
func (a *auditor) result() *sandbox.Audit {
	out := a.out
	for _, l := range []*[]sandbox.AuditEvent{&out.OutsidePaths, &out.Network, &out.Denied} {
		if *l == nil {
			*l = []sandbox.AuditEvent{}
		}
	}
	return &out
}

// noFollowCalls act on a final symbolic link itself.
var noFollowCalls = map[string]bool{
	"lstat": true, "lstat64": true, "readlink": true, "readlinkat": true, "lgetxattr": true, "llistxattr": true,
	"lsetxattr": true, "lremovexattr": true, "lchown": true, "lchown32": true, "unlink": true, "unlinkat": true,
	"rmdir": true, "rename": true, "renameat": true, "renameat2": true, "symlink": true, "symlinkat": true,
	"link": true, "mkdir": true, "mkdirat": true, "mknod": true, "mknodat": true,
}

// noFollow tells whether a call leaves a final symbolic link unfollowed:
// by its nature or by a flag (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW).
func noFollow(c *call) bool {
	if noFollowCalls[c.name] {
		return true
	}
	for _, a := range c.args {
		if !strings.HasPrefix(a, `"`) && (strings.Contains(a, "AT_SYMLINK_NOFOLLOW") || strings.Contains(a, "O_NOFOLLOW")) {
			return true
		}
	}
	return false
}

// pathSpec says where a call's path arguments are.
type pathSpec struct {
	dirfd  int  // argument with the directory descriptor, -1: the working directory
	path   int  // argument with the path
	write  bool // the call creates, changes or removes what it names
	flags  int  // argument with open flags (O_WRONLY, O_CREAT, ...), -1: none
	target int  // argument with a symbolic link's target, -1: none
}

func rd(dirfd, p int) pathSpec { return pathSpec{dirfd: dirfd, path: p, flags: -1, target: -1} }
func wr(dirfd, p int) pathSpec {
	return pathSpec{dirfd: dirfd, path: p, write: true, flags: -1, target: -1}
}

// pathCalls are the traced calls that look up paths (strace's %file class,
// less those in privileged).
var pathCalls = map[string][]pathSpec{
	"open":    {{dirfd: -1, path: 0, flags: 1, target: -1}},
	"openat":  {{dirfd: 0, path: 1, flags: 2, target: -1}},
	"openat2": {{dirfd: 0, path: 1, flags: 2, target: -1}},
	"creat":   {wr(-1, 0)},

	"stat": {rd(-1, 0)}, "lstat": {rd(-1, 0)}, "stat64": {rd(-1, 0)}, "lstat64": {rd(-1, 0)},
	"newfstatat": {rd(0, 1)}, "fstatat64": {rd(0, 1)}, "statx": {rd(0, 1)},
	"access": {rd(-1, 0)}, "faccessat": {rd(0, 1)}, "faccessat2": {rd(0, 1)},
	"execve": {rd(-1, 0)}, "execveat": {rd(0, 1)}, "uselib": {rd(-1, 0)},
	"readlink": {rd(-1, 0)}, "readlinkat": {rd(0, 1)},
	"chdir": {rd(-1, 0)}, "statfs": {rd(-1, 0)}, "statfs64": {rd(-1, 0)},
	"getxattr": {rd(-1, 0)}, "lgetxattr": {rd(-1, 0)}, "listxattr": {rd(-1, 0)}, "llistxattr": {rd(-1, 0)},
	"getxattrat": {rd(0, 1)}, "listxattrat": {rd(0, 1)},
	"inotify_add_watch": {rd(-1, 1)}, "fanotify_mark": {rd(3, 4)},
	"name_to_handle_at": {rd(0, 1)},

	"mkdir": {wr(-1, 0)}, "mkdirat": {wr(0, 1)}, "rmdir": {wr(-1, 0)},
	"unlink": {wr(-1, 0)}, "unlinkat": {wr(0, 1)},
	"rename": {wr(-1, 0), wr(-1, 1)}, "renameat": {wr(0, 1), wr(2, 3)}, "renameat2": {wr(0, 1), wr(2, 3)},
	"link": {rd(-1, 0), wr(-1, 1)}, "linkat": {rd(0, 1), wr(2, 3)},
	"symlink":   {{dirfd: -1, path: 1, write: true, flags: -1, target: 0}},
	"symlinkat": {{dirfd: 1, path: 2, write: true, flags: -1, target: 0}},
	"chmod":     {wr(-1, 0)}, "fchmodat": {wr(0, 1)}, "fchmodat2": {wr(0, 1)},
	"chown": {wr(-1, 0)}, "lchown": {wr(-1, 0)}, "fchownat": {wr(0, 1)},
	"chown32": {wr(-1, 0)}, "lchown32": {wr(-1, 0)},
	"truncate": {wr(-1, 0)}, "truncate64": {wr(-1, 0)},
	"utime": {wr(-1, 0)}, "utimes": {wr(-1, 0)}, "utimensat": {wr(0, 1)}, "futimesat": {wr(0, 1)},
	"mknod": {wr(-1, 0)}, "mknodat": {wr(0, 1)},
	"setxattr": {wr(-1, 0)}, "lsetxattr": {wr(-1, 0)}, "removexattr": {wr(-1, 0)}, "lremovexattr": {wr(-1, 0)},
	"setxattrat": {wr(0, 1)}, "removexattrat": {wr(0, 1)},
}

// opensForWrite reads open flags ("O_WRONLY|O_CREAT|O_CLOEXEC", or
// "{flags=O_RDWR, ...}" for openat2).
func opensForWrite(flags string) bool {
	if v, ok := field(flags, "flags"); ok {
		flags = v
	}
	for _, f := range strings.Split(flags, "|") {
		switch strings.TrimSpace(f) {
		case "O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_TMPFILE", "__O_TMPFILE":
			return true
		}
	}
	return false
}

// denial describes a privileged call: reported whenever tried, or only
// when refused (calls that are harmless when they succeed, like setuid to
// one's own uid).
type denial struct {
	onlyRefused bool
	target      func(a *auditor, c *call) string
}

func argN(n int) func(*auditor, *call) string {
	return func(_ *auditor, c *call) string {
		if n >= len(c.args) {
			return ""
		}
		if s, ok := str(c.args[n]); ok {
			return s
		}
		return c.args[n]
	}
}

func pathN(n int) func(*auditor, *call) string {
	return func(a *auditor, c *call) string {
		if n >= len(c.args) {
			return ""
		}
		if s, ok := str(c.args[n]); ok && s != "" {
			return a.resolve(c, -1, s)
		}
		return c.args[n]
	}
}

func argsN(ns ...int) func(*auditor, *call) string {
	return func(_ *auditor, c *call) string {
		var parts []string
		for _, n := range ns {
			if n < len(c.args) {
				parts = append(parts, c.args[n])
			}
		}
		return strings.Join(parts, " ")
	}
}

func none(*auditor, *call) string { return "" }

// privileged are the calls a sandboxed command has no business making.
var privileged = map[string]denial{
	"mount":      {target: func(a *auditor, c *call) string { return strings.TrimSpace(argN(2)(a, c) + " " + pathN(1)(a, c)) }},
	"umount":     {target: pathN(0)},
	"umount2":    {target: pathN(0)},
	"pivot_root": {target: pathN(0)},
	"chroot":     {target: pathN(0)},
	"swapon":     {target: pathN(0)},
	"swapoff":    {target: pathN(0)},
	"acct":       {target: pathN(0)},
	"quotactl":   {target: pathN(1)},
	"open_tree":  {target: argN(1)},
	"move_mount": {target: argN(3)},
	"fsopen":     {target: argN(0)},
	"fsmount":    {target: none}, "fspick": {target: argN(1)}, "fsconfig": {target: none},
	"mount_setattr":     {target: argN(1)},
	"unshare":           {target: argN(0)},
	"setns":             {target: argN(1)},
	"ptrace":            {target: argsN(0, 1)},
	"process_vm_readv":  {target: argsN(0)},
	"process_vm_writev": {target: argsN(0)},
	"pidfd_getfd":       {target: none},
	"kcmp":              {target: none},
	"bpf":               {target: argN(0)},
	"perf_event_open":   {target: none},
	"keyctl":            {target: argN(0)},
	"add_key":           {target: argN(0)},
	"request_key":       {target: argN(0)},
	"init_module":       {target: none},
	"finit_module":      {target: none},
	"delete_module":     {target: argN(0)},
	"kexec_load":        {target: none},
	"kexec_file_load":   {target: none},
	"reboot":            {target: argsN(2)},
	"sethostname":       {target: argN(0)},
	"setdomainname":     {target: argN(0)},
	"settimeofday":      {target: none},
	"clock_settime":     {target: argN(0)},
	"stime":             {target: none},
	"syslog":            {target: argN(0)},
	"vhangup":           {target: none},
	"iopl":              {target: argN(0)},
	"ioperm":            {target: none},
	"open_by_handle_at": {target: none},
	"lookup_dcookie":    {target: none},
	"fanotify_init":     {target: none},
	"userfaultfd":       {onlyRefused: true, target: none},
	"nfsservctl":        {target: none},
	"create_module":     {target: none},
	// io_uring can open files and sockets in the kernel's own threads,
	// where no trace sees them: using it at all is reported.
	"io_uring_setup": {target: func(*auditor, *call) string { return "io_uring (its operations are not traced)" }},
	"adjtimex":       {onlyRefused: true, target: none},
	"clock_adjtime":  {onlyRefused: true, target: argN(0)},
	"capset":         {onlyRefused: true, target: none},
	"setuid":         {onlyRefused: true, target: argsN(0)},
	"setgid":         {onlyRefused: true, target: argsN(0)},
	"setreuid":       {onlyRefused: true, target: argsN(0, 1)},
	"setregid":       {onlyRefused: true, target: argsN(0, 1)},
	"setresuid":      {onlyRefused: true, target: argsN(0, 1, 2)},
	"setresgid":      {onlyRefused: true, target: argsN(0, 1, 2)},
	"setgroups":      {onlyRefused: true, target: argsN(0, 1)},
	"setuid32":       {onlyRefused: true, target: argsN(0)},
	"setgid32":       {onlyRefused: true, target: argsN(0)},
	"setresuid32":    {onlyRefused: true, target: argsN(0, 1, 2)},
	"setresgid32":    {onlyRefused: true, target: argsN(0, 1, 2)},
	"setgroups32":    {onlyRefused: true, target: argsN(0, 1)},
}

// newNamespaces returns the CLONE_NEW* flags of a clone or clone3 call.
func newNamespaces(args []string) string {
	var out []string
	for _, a := range args {
		if v, ok := field(a, "flags"); ok {
			a = v
		} else if v, ok := strings.CutPrefix(a, "flags="); ok {
			a = v
		}
		for _, f := range strings.Split(a, "|") {
			if strings.HasPrefix(f, "CLONE_NEW") {
				out = append(out, f)
			}
		}
	}
	return strings.Join(out, "|")
}

var netCalls = map[string]bool{"socket": true, "socketpair": true, "connect": true, "bind": true, "sendto": true, "sendmsg": true, "sendmmsg": true}

// network reports sockets other than AF_UNIX and addresses other than the
// lab's socket.
func (a *auditor) network(c *call) {
	switch c.name {
	case "socket", "socketpair":
		if len(c.args) > 0 && c.args[0] != "AF_UNIX" && c.args[0] != "AF_LOCAL" {
			a.add(listNetwork, c, strings.Join(c.args[:min(len(c.args), 2)], " "))
		}
		return
	}
	var addr string
	switch c.name {
	case "connect", "bind":
		if len(c.args) > 1 {
			addr = c.args[1]
		}
	case "sendto":
		if len(c.args) > 4 {
			addr = c.args[4]
		}
	case "sendmsg":
		if len(c.args) > 1 {
			addr, _ = field(c.args[1], "msg_name")
		}
	case "sendmmsg":
		if len(c.args) > 1 {
			// [{msg_hdr={msg_name={...}, ...}, msg_len=N}, ...]: the first
			// message's address.
			m := strings.TrimPrefix(c.args[1], "[")
			if end := skipStruct(m); end > 0 {
				m = m[:end]
			}
			if h, ok := field(m, "msg_hdr"); ok {
				addr, _ = field(h, "msg_name")
			}
		}
	}
	fam, ok := field(addr, "sa_family")
	if !ok || fam == "AF_UNSPEC" {
		return
	}
	if fam == "AF_UNIX" || fam == "AF_LOCAL" {
		sp, _ := field(addr, "sun_path")
		if p, ok := str(sp); ok && p != "" {
			abs := a.resolve(c, -1, p)
			if c.name == "bind" {
				a.path(c, abs, true, true) // bind makes a socket file
				return
			}
			if abs == a.pol.labSocket && a.pol.labSocket != "" {
				return
			}
			if probe(abs) {
				return // the C library asking for nscd
			}
			a.add(listNetwork, c, "unix:"+abs)
			return
		}
		if c.name == "bind" && sp == "" {
			return // autobind
		}
		a.add(listNetwork, c, "unix:"+strings.TrimSuffix(strings.Replace(sp, `@"`, "@", 1), `"`))
		return
	}
	a.add(listNetwork, c, sockaddr(fam, addr))
}

// skipStruct returns the index just past the {...} that starts s, or -1.
func skipStruct(s string) int {
	if !strings.HasPrefix(s, "{") {
		return -1
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			i = skipString(s, i) - 1
		case '{', '[', '(':
			depth++
		case '}', ']', ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

// sockaddr writes an address as host:port where it can.
func sockaddr(fam, addr string) string {
	get := func(name string) string { v, _ := field(addr, name); return v }
	port := func(v string) string {
		v = strings.TrimSuffix(strings.TrimPrefix(v, "htons("), ")")
		if _, err := strconv.Atoi(v); err != nil {
			return "?"
		}
		return v
	}
	switch fam {
	case "AF_INET":
		ip, _ := str(strings.TrimSuffix(strings.TrimPrefix(get("sin_addr"), "inet_addr("), ")"))
		return ip + ":" + port(get("sin_port"))
	case "AF_INET6":
		ip := ""
		if i := strings.Index(addr, `inet_pton(AF_INET6, "`); i >= 0 {
			ip, _ = str(addr[i+len("inet_pton(AF_INET6, "):])
		}
		return "[" + ip + "]:" + port(get("sin6_port"))
	}
	if len(addr) > 160 {
		addr = addr[:160] + "..."
	}
	return fam + " " + addr
}
