package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey is the API key the tests configure; no error may contain it.
const testKey = "sk-test-9f8e7d6c5b4a"

// reply is one scripted HTTP answer of a fake provider.
type reply struct {
	status int
	header map[string]string
	body   string
	sse    bool // serve body as text/event-stream
	hangUp bool // close the connection without answering
}

// jsonReply is a 200 JSON answer.
func jsonReply(body string) reply { return reply{status: 200, body: body} }

// errorReply is an error answer with optional headers (name, value, ...).
func errorReply(status int, body string, header ...string) reply {
	r := reply{status: status, body: body, header: map[string]string{}}
	for i := 0; i+1 < len(header); i += 2 {
		r.header[header[i]] = header[i+1]
	}
	return r
}

// sseReply is a 200 event stream made of (event, data) pairs.
func sseReply(events ...string) reply {
	var b strings.Builder
	for i := 0; i+1 < len(events); i += 2 {
		fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", events[i], events[i+1])
	}
	return reply{status: 200, body: b.String(), sse: true}
}

// seen is one request a fake provider received.
type seen struct {
	method, path string
	header       http.Header
	body         []byte
}

// decoded is the request body as generic JSON.
func (s seen) decoded(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(s.body, &m); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, s.body)
	}
	return m
}

// fakeAPI is an in-process provider that answers with its script in order
// and records every request. It fails the test when the script runs out.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	replies []reply // guarded by mu
	reqs    []seen  // guarded by mu
}

func newFakeAPI(t *testing.T, replies ...reply) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, replies: replies}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{r.Method, r.URL.Path, r.Header.Clone(), body})
	if len(f.replies) == 0 {
		f.mu.Unlock()
		f.t.Errorf("unexpected request %d to %s", len(f.reqs), r.URL.Path)
		http.Error(w, `{"error":{"type":"test_error","message":"script exhausted"}}`, http.StatusTeapot)
		return
	}
	rep := f.replies[0]
	f.replies = f.replies[1:]
	f.mu.Unlock()

	if rep.hangUp {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			f.t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

// requests returns what the fake has received so far.
func (f *fakeAPI) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// last returns the last request, failing the test when there is none.
func (f *fakeAPI) last() seen {
	f.t.Helper()
	reqs := f.requests()
	if len(reqs) == 0 {
		f.t.Fatal("no request reached the fake API")
	}
	return reqs[len(reqs)-1]
}

// sleeps records the waits of a RetryPolicy without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration // guarded by mu
}

// policy returns a fast, deterministic retry policy that records its waits
// in s: jitter is always half the backoff.
func (s *sleeps) policy(attempts int) RetryPolicy {
	return RetryPolicy{
		MaxAttempts: attempts,
		Base:        time.Second,
		Max:         60 * time.Second,
		Rand:        func() float64 { return 0.5 },
		Sleep: func(ctx context.Context, d time.Duration) error {
			s.mu.Lock()
			s.d = append(s.d, d)
			s.mu.Unlock()
			return ctx.Err()
		},
	}
}

func (s *sleeps) waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// jsonPath walks decoded JSON by object keys and array indexes.
func jsonPath(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: %T is not an object", k, v)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k < 0 || k >= len(a) {
				t.Fatalf("at [%d]: not an array of that length: %v", k, v)
			}
			v = a[k]
		}
	}
	return v
}

// noKey fails the test when s contains the API key.
func noKey(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, testKey) {
		t.Errorf("%s contains the API key: %s", what, s)
	}
}
