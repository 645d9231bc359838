package snapshot

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pmezard/go-difflib/difflib"
)

// Files larger than this (either side) are reported as differing without a
// line diff: difflib's matching is quadratic in the worst case.
const maxDiffBytes = 1 << 20

// Diff returns a unified diff (go-difflib, 3 lines of context, headers
// a/PATH b/PATH) of every file that differs between two trees (Data loaded),
// in path order: added and removed files are diffed against empty. A file
// that is not valid UTF-8 or holds a NUL byte in either tree is reported as
// "Binary files a/PATH and b/PATH differ". Some changes have no lines to
// show and get one line each: "Empty file b/PATH added", "Empty file a/PATH
// removed", "Mode of PATH changed from 644 to 755", and "Files a/PATH and
// b/PATH differ (too large to diff)" when either side is over 1 MiB or its
// Data is not loaded. A missing line end shows as git shows it, "\ No
// newline at end of file". Equal trees give "".
func Diff(a, b *Tree) string {
	var out strings.Builder
	var as, bs []File
	if a != nil {
		as = a.Files
	}
	if b != nil {
		bs = b.Files
	}
	i, j := 0, 0
	for i < len(as) || j < len(bs) {
		switch {
		case j == len(bs) || i < len(as) && as[i].Path < bs[j].Path:
			diffFile(&out, &as[i], nil)
			i++
		case i == len(as) || bs[j].Path < as[i].Path:
			diffFile(&out, nil, &bs[j])
			j++
		default:
			diffFile(&out, &as[i], &bs[j])
			i++
			j++
		}
	}
	return out.String()
}

// diffFile writes the diff of one path; fa or fb is nil when the file is
// absent on that side.
func diffFile(out *strings.Builder, fa, fb *File) {
	var p string
	var da, db []byte
	if fa != nil {
		p, da = fa.Path, fa.Data
	}
	if fb != nil {
		p, db = fb.Path, fb.Data
	}
	if fa != nil && fb != nil && fa.SHA256 == fb.SHA256 {
		if fa.Mode != fb.Mode {
			fmt.Fprintf(out, "Mode of %s changed from %o to %o\n", p, fa.Mode, fb.Mode)
		}
		return
	}
	switch {
	case !loaded(fa) || !loaded(fb) || len(da) > maxDiffBytes || len(db) > maxDiffBytes:
		fmt.Fprintf(out, "Files a/%s and b/%s differ (too large to diff)\n", p, p)
		return
	case isBinary(da) || isBinary(db):
		fmt.Fprintf(out, "Binary files a/%s and b/%s differ\n", p, p)
		return
	case fa == nil && len(db) == 0:
		fmt.Fprintf(out, "Empty file b/%s added\n", p)
		return
	case fb == nil && len(da) == 0:
		fmt.Fprintf(out, "Empty file a/%s removed\n", p)
		return
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        splitLines(da),
		B:        splitLines(db),
		FromFile: "a/" + p,
		ToFile:   "b/" + p,
		Context:  3,
	})
	if err != nil { // only a failing writer; a strings.Builder never fails
		fmt.Fprintf(out, "Files a/%s and b/%s differ\n", p, p)
		return
	}
	out.WriteString(text)
	if fa != nil && fb != nil && fa.Mode != fb.Mode {
		fmt.Fprintf(out, "Mode of %s changed from %o to %o\n", p, fa.Mode, fb.Mode)
	}
}

// loaded reports whether f's content is at hand; an absent file counts as
// loaded (it is empty).
func loaded(f *File) bool {
	return f == nil || int64(len(f.Data)) == f.Size
}

func isBinary(b []byte) bool {
	return bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(b)
}

// splitLines splits b into lines that keep their "\n"; a last line without
// one carries git's marker instead, so "x" and "x\n" differ visibly.
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if last := lines[len(lines)-1]; last == "" {
		lines = lines[:len(lines)-1]
	} else {
		lines[len(lines)-1] = last + "\n\\ No newline at end of file\n"
	}
	return lines
}
