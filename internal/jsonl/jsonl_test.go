package jsonl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadGood(t *testing.T) {
	in := "{\"a\":1}\n\n  \n{\"b\":\"x\"}\r\n{\"c\":[1,2]}"
	lines, err := Read("in.jsonl", strings.NewReader(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3", len(lines))
	}
	wantNums := []int{1, 4, 5}
	for i, ln := range lines {
		if ln.Num != wantNums[i] {
			t.Errorf("line %d: Num = %d, want %d", i, ln.Num, wantNums[i])
		}
	}
	if string(lines[2].Fields["c"]) != "[1,2]" {
		t.Errorf("field c = %s", lines[2].Fields["c"])
	}
}

func TestReadBad(t *testing.T) {
	cases := []struct {
		name, in string
		line     int
		want     string
	}{
		{"truncated", "{\"a\":1}\n{\"a\":", 2, "truncated JSON"},
		{"not utf8", "{\"a\":1}\n{\"a\":\"\xff\xfe\"}\n", 2, "not valid UTF-8"},
		{"two values", "{\"a\":1} {\"b\":2}\n", 1, "more than one JSON value"},
		{"trailing junk", "{\"a\":1} x\n", 1, "one JSON object"},
		{"array", "[1,2]\n", 1, "expected a JSON object"},
		{"null", "null\n", 1, "null"},
		{"bare word", "NaN\n", 1, "invalid JSON"},
		{"nan value", "{\"a\":NaN}\n", 1, "invalid JSON"},
		{"string", "\"x\"\n", 1, "expected a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read("f.jsonl", strings.NewReader(tc.in), Limits{})
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an InputError", err)
			}
			if ie.Line != tc.line {
				t.Errorf("line = %d, want %d", ie.Line, tc.line)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "f.jsonl:") || !strings.Contains(err.Error(), "fix:") {
				t.Errorf("error %q lacks %q, the file name or a fix", err, tc.want)
			}
		})
	}
}

func TestLineTooLong(t *testing.T) {
	in := "{\"a\":1}\n{\"a\":\"" + strings.Repeat("x", 200) + "\"}\n"
	_, err := Read("f", strings.NewReader(in), Limits{LineBytes: 100})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Line != 2 || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("err = %v, want line 2 too long", err)
	}
}

func TestInputOverLimit(t *testing.T) {
	in := strings.Repeat("{\"a\":1}\n", 100)
	_, err := Read("f", strings.NewReader(in), Limits{FileBytes: 50})
	if !IsInputError(err) || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("err = %v, want over-limit input error", err)
	}
}

// A 2 GB file is refused from its size alone, before a byte is read (the
// file is sparse, so the test costs nothing).
func TestHugeFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = ReadFile(path, Limits{})
	if !IsInputError(err) || !strings.Contains(err.Error(), "2.0 GiB") || !strings.Contains(err.Error(), "1.0 GiB limit") {
		t.Fatalf("err = %v, want size refusal naming 2.0 GiB and the limit", err)
	}
}

func TestReadFileMissingAndDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(filepath.Join(dir, "nope.jsonl"), Limits{}); !IsInputError(err) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := ReadFile(dir, Limits{}); !IsInputError(err) || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: err = %v", err)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1 << 30: "1.0 GiB", 3 << 29: "1.5 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"{\"a\":1}\n", "{\"id\":\"x\",\"label\":\"A\"}\n{\"id\":2}\n", "{", "\xff", "[1]", "null", "{}\n{}",
		"{\"a\":\"\\u0000\"}", "\n\n\n", "{\"a\":1}\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		lines, err := Read("fuzz", strings.NewReader(in), Limits{LineBytes: 1 << 12, FileBytes: 1 << 16})
		if err != nil {
			if !IsInputError(err) {
				t.Fatalf("error is not an InputError: %v", err)
			}
			return
		}
		for _, ln := range lines {
			if ln.Fields == nil || ln.Num < 1 {
				t.Fatalf("bad line %+v", ln)
			}
		}
	})
}
