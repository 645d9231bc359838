package launch

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLocal: a local worker gets its token and the spec's environment, a
// proxied one no model key even from the parent's environment; its log
// goes to the writer and its stdout comes back as the summary.
func TestLocal(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "sk-parent")
	t.Setenv("AAR_TOKEN", "aar_parent_token")
	script := `echo "log line" >&2; printf '{"reason":"done","token":"%s","key":"%s","extra":"%s"}' "$AAR_TOKEN" "$ANTHROPIC_API_KEY" "$EXTRA"`
	for _, tc := range []struct {
		proxied bool
		want    string
	}{
		{false, `{"reason":"done","token":"aar_worker","key":"sk-parent","extra":"x"}`},
		{true, `{"reason":"done","token":"aar_worker","key":"","extra":"x"}`},
	} {
		var log syncBuf
		w, err := Local{Exe: "/bin/sh"}.Launch(context.Background(), Spec{Researcher: "r", Args: []string{"-c", script}, Env: []string{"EXTRA=x"}, Token: "aar_worker", Proxied: tc.proxied}, &log)
		if err != nil {
			t.Fatal(err)
		}
		if w.Describe()["pid"] == nil {
			t.Errorf("describe: %v", w.Describe())
		}
		sum, err := w.Wait()
		if err != nil || string(sum) != tc.want || !strings.Contains(log.String(), "log line") {
			t.Errorf("proxied=%v: summary %s, err %v, log %q", tc.proxied, sum, err, log.String())
		}
	}
}

// TestLocalStop: Stop sends SIGTERM (the worker finishes its call), Kill
// ends it at once; a failed exit is an error.
func TestLocalStop(t *testing.T) {
	var log syncBuf
	w, err := Local{Exe: "/bin/sh"}.Launch(context.Background(), Spec{Args: []string{"-c", `trap 'echo stopping >&2; exit 3' TERM; echo ready >&2; while :; do sleep 0.05; done`}}, &log)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(log.String(), "ready") {
		time.Sleep(10 * time.Millisecond)
	}
	w.Stop()
	if _, err := w.Wait(); err == nil || !strings.Contains(log.String(), "stopping") {
		t.Errorf("stop: %v, log %q", err, log.String())
	}
	w2, err := Local{Exe: "/bin/sh"}.Launch(context.Background(), Spec{Args: []string{"-c", `trap '' TERM; sleep 30`}}, &log)
	if err != nil {
		t.Fatal(err)
	}
	w2.Kill()
	if _, err := w2.Wait(); err == nil {
		t.Error("a killed worker ended without an error")
	}
	if _, err := (Local{Exe: "/nonexistent/aar"}).Launch(context.Background(), Spec{Researcher: "r"}, &log); err == nil || !strings.Contains(err.Error(), "start worker r") {
		t.Errorf("missing binary: %v", err)
	}
}
