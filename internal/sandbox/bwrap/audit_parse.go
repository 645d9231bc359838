package bwrap

import (
	"strconv"
	"strings"
)

// This file reads the lines `strace -f -y --decode-pids=pidns` writes:
//
//	PID name(arg, arg, ...) = RET [ERRNO (text)] [/* N in strace's PID NS */]
//	PID name(arg, ... <unfinished ...>
//	PID <... name resumed>..., arg) = RET
//	PID +++ exited with 0 +++
//
// Everything the traced program controls (paths, buffers) reaches a line
// only inside a quoted, escaped string or a descriptor's <path> (where strace
// escapes '<', '>' and '"'), so a program cannot forge a line or an argument.

// call is one finished system call.
type call struct {
	pid     int
	name    string
	args    []string // top-level arguments as printed
	ret     string   // the return value as printed ("0", "-1", "3", "?")
	errno   string   // "ENOENT" when the call failed
	retPath string   // the path -y printed for a returned descriptor
	child   int      // the pid (in strace's namespace) a fork-like call returned
}

// result is how an event records a call's outcome.
func (c *call) result() string {
	switch {
	case c.errno != "":
		return c.errno
	case c.ret == "?":
		return "?"
	}
	return "ok"
}

type lineKind int

const (
	lineOther      lineKind = iota // a signal, a message, or nothing we read
	lineCall                       // a finished call
	lineUnfinished                 // a call that continues on a later line
	lineExit                       // a process ended
)

// maxPending bounds the unfinished calls kept (one per process).
const maxPending = 1 << 16

// lineParser joins unfinished calls with their resumption.
type lineParser struct {
	pending map[int]string // pid → the call's first part
}

// parse reads one line. For lineUnfinished, c.pid and c.name are set.
func (p *lineParser) parse(line string) (c call, kind lineKind) {
	pid, body, ok := cutPID(line)
	if !ok {
		return c, lineOther
	}
	c.pid = pid
	switch {
	case strings.HasPrefix(body, "+++ "):
		delete(p.pending, pid)
		if strings.Contains(body, "exited with") || strings.Contains(body, "killed by") {
			return c, lineExit
		}
		return c, lineOther
	case strings.HasPrefix(body, "--- "):
		return c, lineOther
	case strings.HasPrefix(body, "<... "):
		i := strings.Index(body, " resumed>")
		first, ok := p.pending[pid]
		if i < 0 || !ok {
			return c, lineOther
		}
		delete(p.pending, pid)
		body = first + body[i+len(" resumed>"):]
	}
	if rest, ok := strings.CutSuffix(body, " <unfinished ...>"); ok {
		if p.pending == nil {
			p.pending = map[int]string{}
		}
		if len(p.pending) < maxPending {
			p.pending[pid] = rest
		}
		c.name, _, _ = strings.Cut(rest, "(")
		return c, lineUnfinished
	}
	open := strings.IndexByte(body, '(')
	if open <= 0 || !isName(body[:open]) {
		return c, lineOther
	}
	c.name = body[:open]
	args, end, ok := splitArgs(body, open+1)
	c.args = args
	if !ok {
		// A line cut short (see lineReader): what is left after the last
		// ") = " is the return value.
		i := strings.LastIndex(body, ") = ")
		if i < 0 {
			return c, lineOther
		}
		end = i
	}
	rest := strings.TrimLeft(body[end+1:], " ")
	ret, ok := strings.CutPrefix(rest, "= ")
	if !ok {
		return c, lineOther
	}
	c.parseRet(ret)
	return c, lineCall
}

func cutPID(line string) (int, string, bool) {
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	if i == 0 || i > 10 || i >= len(line) || line[i] != ' ' {
		return 0, "", false
	}
	pid, err := strconv.Atoi(line[:i])
	if err != nil {
		return 0, "", false
	}
	return pid, strings.TrimLeft(line[i:], " "), true
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// splitArgs splits the arguments that start at s[i] (just after the
// call's '(') at top-level commas, up to the matching ')', whose index it
// returns. Strings, descriptor decorations and comments are skipped whole.
func splitArgs(s string, i int) (args []string, end int, ok bool) {
	depth, start := 0, i
	for i < len(s) {
		switch c := s[i]; c {
		case '"':
			i = skipString(s, i)
			continue
		case '<':
			if i > 0 && isDecorated(s[i-1]) {
				if j := strings.IndexByte(s[i:], '>'); j >= 0 {
					i += j + 1
					continue
				}
				return args, i, false
			}
		case '/':
			if strings.HasPrefix(s[i:], "/*") {
				if j := strings.Index(s[i:], "*/"); j >= 0 {
					i += j + 2
					continue
				}
				return args, i, false
			}
		case '(', '[', '{':
			depth++
		case ']', '}':
			depth--
		case ')':
			if depth == 0 {
				if a := cleanArg(s[start:i]); a != "" || len(args) > 0 {
					args = append(args, a)
				}
				return args, i, true
			}
			depth--
		case ',':
			if depth == 0 {
				args = append(args, cleanArg(s[start:i]))
				start = i + 1
			}
		}
		i++
	}
	return args, i, false
}

// cleanArg trims an argument and drops strace's comments from it
// ("3 /* 123 in strace's PID NS */", "0x7ff0 /* 5 vars */").
func cleanArg(a string) string {
	a = strings.TrimSpace(a)
	if !strings.Contains(a, "/*") {
		return a
	}
	var b strings.Builder
	for i := 0; i < len(a); {
		switch {
		case a[i] == '"':
			j := skipString(a, i)
			b.WriteString(a[i:j])
			i = j
		case strings.HasPrefix(a[i:], "/*"):
			j := strings.Index(a[i:], "*/")
			if j < 0 {
				return strings.TrimSpace(b.String())
			}
			i += j + 2
		default:
			b.WriteByte(a[i])
			i++
		}
	}
	return strings.TrimSpace(b.String())
}

// isDecorated tells whether a '<' after c opens a -y decoration ("3</x>",
// "AT_FDCWD</x>").
func isDecorated(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z'
}

// skipString returns the index just past the string that opens at s[i].
func skipString(s string, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(s)
}

func (c *call) parseRet(s string) {
	tok := s
	if i := strings.IndexAny(s, " <"); i >= 0 {
		tok = s[:i]
	}
	c.ret = tok
	s = s[len(tok):]
	if strings.HasPrefix(s, "<") {
		if j := strings.IndexByte(s, '>'); j > 0 {
			c.retPath = unescape(s[1:j])
			s = s[j+1:]
		}
	}
	s = strings.TrimLeft(s, " ")
	if strings.HasPrefix(s, "E") && (tok == "?" || strings.HasPrefix(tok, "-")) {
		c.errno, _, _ = strings.Cut(s, " ")
		return
	}
	if rest, ok := strings.CutPrefix(s, "/* "); ok {
		if n, _, ok := strings.Cut(rest, " in strace's PID NS"); ok {
			c.child, _ = strconv.Atoi(n)
		}
	}
}

// str reads a string argument: `"..."`, optionally cut with `...`.
func str(arg string) (string, bool) {
	if len(arg) < 2 || arg[0] != '"' {
		return "", false
	}
	end := skipString(arg, 0)
	if end < 2 || arg[end-1] != '"' {
		return "", false
	}
	return unescape(arg[1 : end-1]), true
}

// fdPath reads a descriptor argument: "AT_FDCWD</dir>", "3</dir>",
// "AT_FDCWD" (cwd true, no path known) or "3<socket:[1]>" (not a path).
func fdPath(arg string) (p string, cwd, ok bool) {
	name, deco, found := strings.Cut(arg, "<")
	cwd = name == "AT_FDCWD"
	if !found || !strings.HasSuffix(deco, ">") {
		return "", cwd, false
	}
	p = unescape(strings.TrimSuffix(deco, ">"))
	p = strings.TrimSuffix(p, " (deleted)")
	if !strings.HasPrefix(p, "/") {
		return "", cwd, false
	}
	return p, cwd, true
}

// unescape undoes strace's C-style escapes (\n, \", \\, \x41, \101).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch e := s[i]; e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'v':
			b.WriteByte('\v')
		case 'f':
			b.WriteByte('\f')
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'x':
			n, j := 0, i+1
			for ; j < len(s) && j < i+3 && isHex(s[j]); j++ {
				n = n*16 + hexVal(s[j])
			}
			if j == i+1 {
				b.WriteByte('x')
				continue
			}
			b.WriteByte(byte(n))
			i = j - 1
		case '0', '1', '2', '3', '4', '5', '6', '7':
			n, j := 0, i
			for ; j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7'; j++ {
				n = n*8 + int(s[j]-'0')
			}
			b.WriteByte(byte(n))
			i = j - 1
		default:
			b.WriteByte(e)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// field finds `name=` at the top level of a struct argument ("{a=1, b={...}}")
// and returns its value as printed.
func field(arg, name string) (string, bool) {
	if len(arg) < 2 || arg[0] != '{' || arg[len(arg)-1] != '}' {
		return "", false
	}
	parts, _, _ := splitArgs(arg[1:len(arg)-1]+")", 0)
	for _, p := range parts {
		if v, ok := strings.CutPrefix(p, name+"="); ok {
			return v, true
		}
	}
	return "", false
}
