package sandbox

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBound(t *testing.T) {
	l := Limits{CommandTimeout: time.Minute, Lifetime: time.Hour}
	now := time.Now()
	for _, tc := range []struct {
		req     time.Duration
		created time.Time
		want    time.Duration
	}{
		{0, now, time.Minute},                                                 // the limit when none is asked
		{time.Hour, now, time.Minute},                                         // never above the limit
		{30 * time.Second, now, 30 * time.Second},                             // the request below it
		{time.Minute, now.Add(-time.Hour + 10*time.Second), 10 * time.Second}, // never past the lifetime
	} {
		got, err := l.Bound("b", tc.req, tc.created)
		if err != nil || got > tc.want || got < tc.want-time.Second {
			t.Errorf("Bound(%s, created %s ago) = %s, %v; want %s", tc.req, time.Since(tc.created).Round(time.Second), got, err, tc.want)
		}
	}
	if _, err := l.Bound("b", time.Minute, now.Add(-2*time.Hour)); err == nil || !strings.Contains(err.Error(), "outlived its 1h0m0s lifetime") {
		t.Errorf("after the lifetime: %v", err)
	}
}

func TestCappedAndFinish(t *testing.T) {
	out, errw := &Capped{Max: 5}, &Capped{Max: 100}
	out.Write([]byte("abc"))
	out.Write([]byte("defgh"))
	errw.Write([]byte("oops"))
	res := &ExecResult{}
	Finish(res, out, errw, true, time.Second)
	if string(res.Stdout) != "abcde\n[aar: 3 more bytes of stdout dropped]\n" || res.StdoutDropped != 3 || !res.TimedOut ||
		!strings.Contains(string(res.Stderr), "oops\n[aar: killed after the 1s command timeout]") {
		t.Errorf("%q %q %+v", res.Stdout, res.Stderr, res)
	}
	var w Warned
	w.Warn("limit %s", "x")
	if got := w.Warnings(); len(got) != 1 || got[0] != "limit x" {
		t.Errorf("warnings %q", got)
	}
}

func TestReadTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./a.txt", Typeflag: tar.TypeReg, Mode: 0o100644, Size: 2},
		{Name: "./l", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		{Name: "./p", Typeflag: tar.TypeFifo},
	} {
		tw.WriteHeader(h)
		if h.Size > 0 {
			tw.Write([]byte("hi"))
		}
	}
	tw.Close()
	files, err := ReadTar(&buf)
	if err != nil || len(files) != 1 || files[0].Path != "a.txt" || files[0].Mode != 0o644 || string(files[0].Data) != "hi" {
		t.Fatalf("%+v %v", files, err)
	}
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../../etc/x", Typeflag: tar.TypeReg, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	if _, err := ReadTar(&buf); err == nil || !strings.Contains(err.Error(), "leaves the workspace") {
		t.Errorf("escaping path: %v", err)
	}
}
