package snapshot

import (
	"bytes"
	"errors"
	"fmt"
)

// InputError is a problem with a snapshot's input: an uploaded archive, a
// directory to pack, a tree handed to Canonical or Unpack, or a tree hash. It
// names the entry (slash-separated, "" when the problem is with the whole
// input), what is wrong and how to fix it. Its text is safe to show to whoever
// supplied the input: it never holds file contents.
type InputError struct {
	Path string
	Msg  string
	Fix  string
}

func (e *InputError) Error() string {
	var b bytes.Buffer
	b.WriteString("snapshot")
	if e.Path != "" {
		fmt.Fprintf(&b, " entry %q", e.Path)
	}
	b.WriteString(": ")
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

func inputErrorf(path, fix, format string, args ...any) *InputError {
	return &InputError{Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix}
}

// humanBytes formats n as a short size (KiB, MiB, GiB).
func humanBytes(n int64) string {
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
