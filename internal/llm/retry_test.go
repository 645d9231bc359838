package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   time.Duration
		ok     bool
	}{
		{"none", nil, 0, false},
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second, true},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond, true},
		{"milliseconds win", map[string]string{"Retry-After-Ms": "250", "Retry-After": "9"}, 250 * time.Millisecond, true},
		{"bad milliseconds fall back", map[string]string{"Retry-After-Ms": "soon", "Retry-After": "2"}, 2 * time.Second, true},
		{"http date", map[string]string{"Retry-After": "Sat, 28 Nov 2026 12:00:30 GMT"}, 30 * time.Second, true},
		{"date in the past", map[string]string{"Retry-After": "Sat, 28 Nov 2026 11:00:00 GMT"}, 0, true},
		{"negative", map[string]string{"Retry-After": "-3"}, 0, false},
		{"absurd", map[string]string{"Retry-After": "1e12"}, 0, false},
		{"garbage", map[string]string{"Retry-After": "later"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			got, ok := retryAfter(h, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("retryAfter = %v %v, want %v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{Base: time.Second, Max: 10 * time.Second, Rand: func() float64 { return 0.999 }}.withDefaults()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		// Full jitter: just under the cap of each step.
		if got := p.backoff(i + 1); got > w || got < w*99/100 {
			t.Errorf("backoff(%d) = %v, want just under %v", i+1, got, w)
		}
	}
	if got := p.backoff(200); got <= 0 || got > p.Max { // no overflow on long runs
		t.Errorf("backoff(200) = %v", got)
	}
	p.Rand = func() float64 { return 0 }
	if got := p.backoff(3); got != 0 {
		t.Errorf("backoff with zero jitter = %v", got)
	}
}

func TestRetryPolicyDefaults(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	if p.MaxAttempts != 6 || p.Base != time.Second || p.Max != time.Minute || p.Sleep == nil || p.Rand == nil {
		t.Errorf("defaults = %+v", p)
	}
}

func TestRunStopsAtFinalError(t *testing.T) {
	var s sleeps
	calls := 0
	final := &APIError{Backend: "x", Status: 400}
	n, err := s.policy(5).run(context.Background(),
		func(context.Context, *exchange) error { calls++; return errors.New("boom") },
		func(error, *exchange) failure { return failure{err: final} })
	if n != 1 || calls != 1 || err != final || len(s.waits()) != 0 {
		t.Errorf("n %d calls %d err %v waits %v", n, calls, err, s.waits())
	}
}

func TestRetryableStatus(t *testing.T) {
	for _, s := range []int{408, 409, 429, 500, 502, 503, 504, 529} {
		if !retryableStatus(s) {
			t.Errorf("%d not retried", s)
		}
	}
	for _, s := range []int{200, 400, 401, 402, 403, 404, 413, 422, 501} {
		if retryableStatus(s) {
			t.Errorf("%d retried", s)
		}
	}
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&url.Error{Op: "Post", URL: "http://x", Err: io.EOF}, true},
		{&url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{io.ErrUnexpectedEOF, true},
		{errIncompleteStream, true},
		{&url.Error{Op: "Post", URL: "ftp://x", Err: errors.New(`unsupported protocol scheme "ftp"`)}, false},
		{errors.New("error parsing response json"), false},
		{errNoChoices, false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestParseErrorBody(t *testing.T) {
	for _, tc := range []struct{ body, typ, msg string }{
		{`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "overloaded_error", "Overloaded"},
		{`{"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}}`, "requests", "Rate limit"},
		{`{"error":{"message":"no type","code":"model_not_found"}}`, "model_not_found", "no type"},
		{`{"error":{"code":500,"message":"llama.cpp failed","type":"server_error"}}`, "server_error", "llama.cpp failed"},
		{`{"object":"error","message":"too long","type":"BadRequestError","code":400}`, "BadRequestError", "too long"},
		{`{"error":"model not found"}`, "", "model not found"},
		{`<html>502 Bad Gateway</html>`, "", "<html>502 Bad Gateway</html>"},
		{``, "", ""},
	} {
		typ, msg := parseErrorBody([]byte(tc.body))
		if typ != tc.typ || msg != tc.msg {
			t.Errorf("parseErrorBody(%s) = %q %q, want %q %q", tc.body, typ, msg, tc.typ, tc.msg)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := redact("key "+testKey+" and "+testKey, testKey); got != "key [REDACTED] and [REDACTED]" {
		t.Errorf("redact = %q", got)
	}
	if got := redact("nothing", ""); got != "nothing" {
		t.Errorf("redact with no key = %q", got)
	}
}

func TestToolInput(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
		bad       bool
	}{
		{`{"a":1}`, `{"a":1}`, false},
		{` {"a":1} `, `{"a":1}`, false},
		{``, `{}`, false},
		{`{"a":`, `"{\"a\":"`, true},
		{`[1,2]`, `"[1,2]"`, true},
		{`null`, `"null"`, true},
	} {
		in, bad := toolInput(tc.raw)
		if string(in) != tc.want || (bad != "") != tc.bad {
			t.Errorf("toolInput(%q) = %s %q, want %s bad=%v", tc.raw, in, bad, tc.want, tc.bad)
		}
	}
}

// FuzzToolInput checks that whatever a model writes, the part carries
// valid JSON, and that only a JSON object passes without an error.
func FuzzToolInput(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":`, `[]`, `"x"`, "", "\xff", `{"a":"\u00"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		in, bad := toolInput(raw)
		if !json.Valid(in) {
			t.Fatalf("toolInput(%q) gave invalid JSON %q", raw, in)
		}
		if bad == "" && !isObject(in) {
			t.Fatalf("toolInput(%q) passed a non-object %s", raw, in)
		}
	})
}

// FuzzParseErrorBody checks that no error body makes the parser panic or
// return an unbounded message for non-JSON input.
func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{`{"error":{"type":"x","message":"y"}}`, `{"error":"s"}`, `{"error":7}`, `<html>`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, msg := parseErrorBody(body)
		if !json.Valid(body) && len(msg) > 512+len("…") {
			t.Fatalf("message of %d bytes from a non-JSON body", len(msg))
		}
	})
}
