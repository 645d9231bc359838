// Package jsonl reads line-delimited JSON that comes from outside the lab
// (testbed files, prediction files) with hard limits and errors that name the
// file, the line and the fix.
//
// It owns only the mechanics of reading: byte limits, UTF-8, one JSON value per
// line, positions in errors. It never interprets fields; callers do that and
// report problems through InputError so every message has the same shape. It
// must never echo a row's content into an error: rows may hold labels.
package jsonl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Default limits. A testbed file or a prediction file larger than MaxFileBytes
// is refused before it is read; a single line longer than MaxLineBytes is
// refused where it stands.
const (
	MaxFileBytes = 1 << 30 // 1 GiB
	MaxLineBytes = 8 << 20 // 8 MiB
)

// InputError is a problem with outside input: which file, which line (1-based,
// 0 when the problem is with the whole file), which field, what is wrong and
// how to fix it. Its text is safe to show to whoever supplied the file: it
// never contains row content.
type InputError struct {
	File  string
	Line  int
	Field string
	Msg   string
	Fix   string
}

func (e *InputError) Error() string {
	var b bytes.Buffer
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString(" (fix: ")
		b.WriteString(e.Fix)
		b.WriteString(")")
	}
	return b.String()
}

// IsInputError reports whether err is, or wraps, an *InputError.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// Errorf builds an InputError.
func Errorf(file string, line int, field, fix, format string, args ...any) *InputError {
	return &InputError{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...), Fix: fix}
}

// Limits bounds what a Reader accepts. Zero fields take the defaults.
type Limits struct {
	FileBytes int64
	LineBytes int
}

func (l Limits) withDefaults() Limits {
	if l.FileBytes <= 0 {
		l.FileBytes = MaxFileBytes
	}
	if l.LineBytes <= 0 {
		l.LineBytes = MaxLineBytes
	}
	return l
}

// Line is one non-blank line of a JSONL file, already checked to be valid
// UTF-8 and a single JSON object.
type Line struct {
	Num    int                        // 1-based line number in the file
	Fields map[string]json.RawMessage // the object's members
}

// ReadFile reads every object line of the file at path. Blank lines are
// skipped. The whole file is checked before anything is returned, so a caller
// that gets an error has nothing half-read.
func ReadFile(path string, lim Limits) ([]Line, error) {
	lim = lim.withDefaults()
	f, err := os.Open(path)
	if err != nil {
		return nil, openError(path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, Errorf(path, 0, "", "give the path of a .jsonl file", "is a directory, not a JSONL file")
	}
	if st.Size() > lim.FileBytes {
		return nil, Errorf(path, 0, "", "split the data or raise the limit",
			"file is %s, over the %s limit", HumanBytes(st.Size()), HumanBytes(lim.FileBytes))
	}
	return Read(path, f, lim)
}

// Read reads every object line from r; name is used in errors.
func Read(name string, r io.Reader, lim Limits) ([]Line, error) {
	lim = lim.withDefaults()
	br := bufio.NewReaderSize(io.LimitReader(r, lim.FileBytes+1), 64<<10)
	var (
		out   []Line
		total int64
		num   int
	)
	for {
		raw, err := readLine(br, lim.LineBytes)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				return nil, Errorf(name, num+1, "", "put one JSON object per line",
					"line is longer than %s", HumanBytes(int64(lim.LineBytes)))
			}
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if len(raw) == 0 && errors.Is(err, io.EOF) {
			break
		}
		num++
		total += int64(len(raw))
		if total > lim.FileBytes {
			return nil, Errorf(name, num, "", "split the data or raise the limit",
				"input is over the %s limit", HumanBytes(lim.FileBytes))
		}
		line := bytes.TrimRight(raw, "\r\n")
		if len(bytes.TrimSpace(line)) > 0 {
			obj, perr := parseObject(name, num, line)
			if perr != nil {
				return nil, perr
			}
			out = append(out, Line{Num: num, Fields: obj})
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return out, nil
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line including its newline, or what is left at
// EOF. It refuses lines longer than max without buffering them whole.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > max+2 {
			return nil, errLineTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return buf, err
	}
}

func parseObject(name string, num int, line []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(line) {
		return nil, Errorf(name, num, "", "re-encode the file as UTF-8", "line is not valid UTF-8")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return nil, Errorf(name, num, "", "put exactly one JSON object on each line", "%s", describeJSONError(err))
	}
	if obj == nil {
		return nil, Errorf(name, num, "", "put exactly one JSON object on each line", "line is JSON null, not an object")
	}
	return obj, nil
}

// describeJSONError turns a decoder error into a message that carries no
// content from the input (a syntax error quotes at most one character).
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "unexpected end of JSON input"):
		return "truncated JSON (the line ends inside a value)"
	case errors.As(err, &se) && strings.Contains(se.Error(), "after top-level value"):
		return "more than one JSON value on the line"
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		return fmt.Sprintf("expected a JSON object, found %s", te.Value)
	default:
		return "invalid JSON: " + err.Error()
	}
}

func openError(path string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return Errorf(path, 0, "", "check the path", "file does not exist")
	}
	if errors.Is(err, os.ErrPermission) {
		return Errorf(path, 0, "", "check the file's permissions", "permission denied")
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// HumanBytes formats n as a short size (KiB, MiB, GiB).
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
