package bwrap

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/sandbox"
)

func TestParseLine(t *testing.T) {
	cases := []struct {
		name string
		line string
		kind lineKind
		want call
	}{
		{"openat failed", `12 openat(AT_FDCWD</workspace>, "/etc/shadow", O_RDONLY) = -1 ENOENT (No such file or directory)`, lineCall,
			call{pid: 12, name: "openat", args: []string{"AT_FDCWD</workspace>", `"/etc/shadow"`, "O_RDONLY"}, ret: "-1", errno: "ENOENT"}},
		{"returned descriptor", `7 openat(AT_FDCWD</>, "/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3</usr/lib/libc.so.6>`, lineCall,
			call{pid: 7, name: "openat", args: []string{"AT_FDCWD</>", `"/lib/libc.so.6"`, "O_RDONLY|O_CLOEXEC"}, ret: "3", retPath: "/usr/lib/libc.so.6"}},
		{"escaped decoration and string", `7  chdir("/w/a>b\"c, d)")        = 0`, lineCall,
			call{pid: 7, name: "chdir", args: []string{`"/w/a>b\"c, d)"`}, ret: "0"}},
		{"clone child in strace's namespace", `5 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 2 /* 16627 in strace's PID NS */`, lineCall,
			call{pid: 5, name: "clone", args: []string{"child_stack=NULL", "flags=CLONE_CHILD_SETTID|SIGCHLD", "child_tidptr=0x7f"}, ret: "2", child: 16627}},
		{"comments dropped", `5 ptrace(PTRACE_ATTACH, 1 /* 99 in strace's PID NS */, NULL, NULL) = -1 EPERM (Operation not permitted)`, lineCall,
			call{pid: 5, name: "ptrace", args: []string{"PTRACE_ATTACH", "1", "NULL", "NULL"}, ret: "-1", errno: "EPERM"}},
		{"no arguments", `5 vfork() = 3`, lineCall, call{pid: 5, name: "vfork", ret: "3"}},
		{"killed in the call", `5 execve("/bin/x", ["x"], 0x1 /* 2 vars */) = ?`, lineCall,
			call{pid: 5, name: "execve", args: []string{`"/bin/x"`, `["x"]`, "0x1"}, ret: "?"}},
		{"unfinished", `5 wait4(-1,  <unfinished ...>`, lineUnfinished, call{pid: 5, name: "wait4"}},
		{"exit", `5 +++ exited with 0 +++`, lineExit, call{pid: 5}},
		{"signal", `5 --- SIGCHLD {si_signo=SIGCHLD} ---`, lineOther, call{pid: 5}},
		{"message", `strace: Process 5 attached`, lineOther, call{}},
		{"garbage", `5 )(= 3`, lineOther, call{pid: 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p lineParser
			got, kind := p.parse(c.line)
			if kind != c.kind || !reflect.DeepEqual(got, c.want) {
				t.Errorf("parse(%q)\n got %v %+v\nwant %v %+v", c.line, kind, got, c.kind, c.want)
			}
		})
	}
}

func TestParseResumed(t *testing.T) {
	var p lineParser
	if _, k := p.parse(`9 connect(4<socket:[1]>, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("10.0.0.1")}, 16 <unfinished ...>`); k != lineUnfinished {
		t.Fatal(k)
	}
	if _, k := p.parse(`8 <... connect resumed>) = 0`); k != lineOther {
		t.Fatalf("another process's resumption joined: %v", k)
	}
	c, k := p.parse(`9 <... connect resumed>) = -1 ENETUNREACH (Network is unreachable)`)
	if k != lineCall || c.name != "connect" || len(c.args) != 3 || c.errno != "ENETUNREACH" {
		t.Fatalf("%v %+v", k, c)
	}
	if got := sockaddr("AF_INET", c.args[1]); got != "10.0.0.1:80" {
		t.Errorf("sockaddr %q", got)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`: "plain", `a\nb`: "a\nb", `q\"q`: `q"q`, `b\\s`: `b\s`, `\x41\x4a`: "AJ", `a\76b`: "a>b", `\0`: "\x00", `\303\251`: "é",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// testPolicy is the policy of a cpu-profile sandbox with every optional
// mount, built from the box's own bubblewrap arguments.
func testPolicy(t *testing.T) *auditPolicy {
	t.Helper()
	s := &box{spec: sandbox.Spec{ID: "p1", Data: "/lab/testbeds/x/public", Shared: "/lab/forum", LabSocket: "/lab/lab.sock", AarBinary: "/usr/local/bin/aar"},
		prof: CPUProfile(), lim: sandbox.Limits{}.WithDefaults(), dir: "/lab/sandboxes/p1", ws: "/lab/sandboxes/p1/workspace"}
	s.base = s.baseArgs()
	for i := 0; i < len(s.base); i++ {
		if a := s.base[i]; strings.HasPrefix(a, "--") {
			n, ok := bwrapArity[a]
			if !ok {
				t.Fatalf("the audit does not know bubblewrap's %s (add it to bwrapArity)", a)
			}
			i += n
		}
	}
	return s.auditPolicy()
}

func TestAuditPolicy(t *testing.T) {
	p := testPolicy(t)
	if p.labSocket != "/run/aar/lab.sock" {
		t.Errorf("lab socket %q", p.labSocket)
	}
	cases := []struct {
		path            string
		write, nofollow bool
		want            verdict
	}{
		{"/", false, false, granted},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", false, false, granted},
		{"/lib/x86_64-linux-gnu/libc.so.6", false, false, granted}, // --symlink usr/lib /lib
		{"/bin/sh", false, false, granted},
		{"/usr/lib/x", true, false, roWrite},
		{"/workspace/a/b", true, false, granted},
		{"/tmp/x", true, false, granted},
		{"/data/test.jsonl", false, false, granted},
		{"/data/test.jsonl", true, false, roWrite},
		{"/shared/post.md", false, false, granted},
		{"/run/aar/lab.sock", false, false, granted},
		{"/run/aar", false, false, granted},
		{"/run/user/0", false, false, outside},
		{"/usr/local/bin/aar", false, false, granted},
		{"/usr/local/bin/other", false, false, granted}, // on PATH
		{"/usr/local/lib/secret", false, false, outside},
		{"/etc", false, false, granted},
		{"/etc/shadow", false, false, outside},
		{"/etc/ld.so.preload", false, false, granted}, // a probe
		{"/etc/passwd", true, false, outside},
		{"/root", false, false, outside},
		{"/home/u/.ssh/id_rsa", false, false, outside},
		{"/var/lib/aar/lab.db", false, false, outside},
		{"/lab/testbeds/x/public/test.jsonl", false, false, outside}, // the host path of /data
		{"/lab/sandboxes/p2/workspace/f", false, false, outside},
		{"/lab/labels.jsonl", false, false, outside},
		{"/usr/lib/google-cloud-sdk/x", true, false, granted}, // a hidden directory is an empty tmpfs
		{"/dev/null", true, false, granted},
		{"/dev/pts/0", true, false, granted},
		{"/dev/sda", false, false, outside},
		{"/dev/core", false, false, outside},
		{"/dev/core", false, true, granted}, // lstat of the link
		{"/dev/fd/3", false, false, granted},
		{"/proc/self/status", false, false, granted},
		{"/proc/42/stat", false, false, granted},
		{"/proc/self/task/42/comm", true, false, granted},
		{"/proc/cpuinfo", false, false, granted},
		{"/proc/sys/kernel/osrelease", false, false, granted},
		{"/proc/sys/kernel/hostname", true, false, roWrite},
		{"/proc/kcore", false, false, outside},
		{"/proc/1/root", false, false, granted},
		{"/proc/1/root/etc/shadow", false, false, outside},
		{"/proc/self/root/usr/lib/x", false, false, granted},
		{"/proc/self/cwd/../../root/x", false, false, outside},
		{"/proc/self/cwd/f", false, false, granted},
		{"/sys/devices/system/cpu/online", false, false, granted},
		{"/sys/fs/cgroup/cpu.max", false, false, granted},
		{"/sys/class/net", false, false, outside},
	}
	for _, c := range cases {
		if got := p.check(c.path, c.write, c.nofollow, "/workspace"); got != c.want {
			t.Errorf("check(%q, write=%v, nofollow=%v) = %v, want %v", c.path, c.write, c.nofollow, got, c.want)
		}
	}
}

// A trace as strace writes it: bubblewrap's setup is not the command's;
// relative paths resolve against each process's directory, inherited over
// fork.
func TestAuditorTrace(t *testing.T) {
	a := newAuditor(testPolicy(t), "/workspace")
	for _, l := range strings.Split(`100 execve("/bin/sh", ["sh", "-c", "exec 2>&4"], 0x1 /* 9 vars */) = 0
100 open("/etc/shadow", O_RDONLY) = 3</etc/shadow>
100 execve("/usr/bin/bwrap", ["bwrap"], 0x1 /* 9 vars */) = 0
101 mount("/oldroot/usr/bin", "/newroot/usr/bin", NULL, MS_BIND|MS_REC, NULL) = 0
101 pivot_root(".", ".") = 0
101 unshare(CLONE_NEWUSER) = 0
101 clone(child_stack=NULL, flags=SIGCHLD) = 2 /* 102 in strace's PID NS */
102 execve("/usr/local/bin/python3", ["python3"], 0x1 /* 5 vars */) = -1 ENOENT (No such file or directory)
102 execve("/usr/bin/python3", ["python3"], 0x1 /* 5 vars */) = 0
102 openat(AT_FDCWD</workspace>, "../etc/passwd-", O_RDONLY) = -1 ENOENT (No such file or directory)
101 mount("x", "/y", "tmpfs", 0, NULL) = -1 EPERM (Operation not permitted)
102 chdir("/usr/lib/python3") = 0
102 vfork( <unfinished ...>
103 execve("./tool", ["./tool"], 0x1 /* 5 vars */ <unfinished ...>
102 <... vfork resumed>) = 3 /* 103 in strace's PID NS */
103 <... execve resumed>) = -1 ENOENT (No such file or directory)
103 open("../../../root/x", O_RDONLY) = -1 ENOENT (No such file or directory)
103 creat("new", 0644) = -1 EROFS (Read-only file system)
103 socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 4<socket:[9]>
103 connect(4<socket:[9]>, {sa_family=AF_UNIX, sun_path="/run/aar/lab.sock"}, 20) = 0
103 sendmsg(4<socket:[9]>, {msg_name={sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("1.1.1.1")}, msg_namelen=16, msg_iov=[{iov_base="{sa_family=AF_UNIX, sun_path=\"x\"}", iov_len=3}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = -1 ENETUNREACH (Network is unreachable)
103 unshare(CLONE_NEWNS|CLONE_NEWUSER) = -1 EPERM (Operation not permitted)
103 setuid(1000) = 0
103 setresuid(0, 0, 0) = -1 EPERM (Operation not permitted)
103 clone3({flags=CLONE_NEWUSER|CLONE_NEWNET, exit_signal=SIGCHLD, stack=NULL, stack_size=0}, 88) = -1 EPERM (Operation not permitted)
103 +++ exited with 0 +++
102 openat(AT_FDCWD</usr/lib/python3>, "/root/x", O_RDONLY) = -1 ENOENT (No such file or directory)
102 openat(AT_FDCWD</usr/lib/python3>, "/root/x", O_RDONLY) = -1 ENOENT (No such file or directory)
102 newfstatat(1<pipe:[5]>, "", {st_mode=S_IFIFO|0600, st_size=0, ...}, AT_EMPTY_PATH) = 0
102 mkdirat(AT_FDCWD</usr/lib/python3>, "../new", 0777) = -1 EROFS (Read-only file system)`, "\n") {
		a.line(l)
	}
	got := a.result()
	ev := func(syscall, target, result string, pid, count int) sandbox.AuditEvent {
		return sandbox.AuditEvent{Syscall: syscall, Target: target, Result: result, PID: pid, Count: count}
	}
	want := &sandbox.Audit{
		OutsidePaths: []sandbox.AuditEvent{
			ev("openat", "/etc/passwd-", "ENOENT", 102, 1),
			ev("open", "/root/x", "ENOENT", 103, 1),
			ev("openat", "/root/x", "ENOENT", 102, 2),
		},
		Network: []sandbox.AuditEvent{
			ev("socket", "AF_INET SOCK_DGRAM|SOCK_CLOEXEC", "ok", 103, 1),
			ev("sendmsg", "1.1.1.1:53", "ENETUNREACH", 103, 1),
		},
		Denied: []sandbox.AuditEvent{
			ev("creat", "/usr/lib/python3/new", "EROFS", 103, 1),
			ev("unshare", "CLONE_NEWNS|CLONE_NEWUSER", "EPERM", 103, 1),
			ev("setresuid", "0 0 0", "EPERM", 103, 1),
			ev("clone3", "CLONE_NEWUSER|CLONE_NEWNET", "EPERM", 103, 1),
			ev("mkdirat", "/usr/lib/new", "EROFS", 102, 1),
		},
		Syscalls: 19,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %s\nwant %s", dump(got), dump(want))
	}
	if _, ok := a.cwd[103]; ok {
		t.Error("an exited process's state is kept")
	}
}

func TestReadLines(t *testing.T) {
	long := "5 execve(\"/x\", [" + strings.Repeat(`"a", `, maxLineHead/4) + `"z"], 0x1) = -1 ENOENT (No such file or directory)`
	var got []string
	readLines(strings.NewReader("a\n"+long+"\nlast"), func(s string) { got = append(got, s) })
	if len(got) != 3 || got[0] != "a" || got[2] != "last" || len(got[1]) > maxLineHead+maxLineTail {
		t.Fatalf("%d lines, the long one %d bytes", len(got), len(got[1]))
	}
	var p lineParser
	c, k := p.parse(got[1])
	if k != lineCall || c.name != "execve" || c.errno != "ENOENT" {
		t.Errorf("a cut line: %v %+v", k, c.errno)
	}
	if s, ok := str(first(c.args)); !ok || s != "/x" {
		t.Errorf("a cut line's first argument %q", first(c.args))
	}
}

// FuzzAuditLine: no line, however made, panics the auditor or grows a
// list past its cap.
func FuzzAuditLine(f *testing.F) {
	for _, s := range []string{
		`102 openat(AT_FDCWD</workspace>, "../etc/passwd-", O_RDONLY) = -1 ENOENT (No such file or directory)`,
		`103 sendmsg(4<socket:[9]>, {msg_name={sa_family=AF_INET, sin_port=htons(53)}, msg_iov=[{iov_base="x"}]}, 0) = 1`,
		`103 sendmmsg(4, [{msg_hdr={msg_name={sa_family=AF_INET6, sin6_port=htons(1), inet_pton(AF_INET6, "::1", &sin6_addr)}}, msg_len=1}], 1, 0) = 1`,
		`102 <... vfork resumed>) = 3 /* 103 in strace's PID NS */`,
		`102 vfork( <unfinished ...>`,
		`5 symlinkat("/etc/shadow", AT_FDCWD</w>, "l") = 0`,
		`5 connect(3, {sa_family=AF_UNIX, sun_path=@"abs"}, 6) = 0`,
		`5 openat2(AT_FDCWD</w>, "x", {flags=O_RDWR|O_CREAT, mode=0600, resolve=0}, 24) = 3</w/x>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		a := newAuditor(testPolicy(t), "/workspace")
		a.line(`1 execve("/bin/sh", [], 0x1) = 0`)
		a.line(`2 execve("/bin/sh", [], 0x1) = 0`)
		for _, l := range strings.Split(line, "\n") {
			a.line(l)
			a.line("2 " + l)
		}
		r := a.result()
		if len(r.OutsidePaths) > sandbox.AuditCap || len(r.Network) > sandbox.AuditCap || len(r.Denied) > sandbox.AuditCap {
			t.Fatal("over the cap")
		}
	})
}
