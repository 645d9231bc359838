package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RetryPolicy says how a backend retries transient provider errors: 408,
// 409, 429, 500, 502, 503, 504, 529 and connection failures. It waits
// what the provider asks for (retry-after-ms, retry-after in seconds or as
// an HTTP date) and otherwise backs off exponentially with full jitter:
// a random wait in [0, min(Max, Base·2^(n-1))) before attempt n+1. Other
// 4xx are final. The zero value is the default policy.
type RetryPolicy struct {
	// MaxAttempts bounds the HTTP attempts of one call, the first
	// included (default 6).
	MaxAttempts int
	// Base is the backoff before the second attempt (default 1s).
	Base time.Duration
	// Max caps the jittered backoff (default 60s). A provider's
	// retry-after is honoured above it, up to MaxRetryAfter.
	Max time.Duration
	// Sleep waits d or until ctx is done (default: a timer). Tests inject
	// one that records the waits and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the jitter (default
	// math/rand/v2.Float64).
	Rand func() float64
}

// MaxRetryAfter caps how long a provider's retry-after can make a call
// wait between attempts, so a wrong header cannot park a worker for hours.
const MaxRetryAfter = 5 * time.Minute

// withDefaults returns p with every zero field set to its default.
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 6
	}
	if p.Base <= 0 {
		p.Base = time.Second
	}
	if p.Max <= 0 {
		p.Max = 60 * time.Second
	}
	if p.Sleep == nil {
		p.Sleep = sleepContext
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

// backoff is the jittered wait after failed attempt n (1-based).
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return time.Duration(p.Rand() * float64(d))
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// failure is what a backend makes of one failed attempt.
type failure struct {
	err   error         // returned when the call gives up
	retry bool          // whether another attempt may succeed
	after time.Duration // the wait the provider asked for; 0 if none
}

// run calls call until it succeeds, fails finally, the attempts are spent
// or ctx is done, and returns how many attempts it made. Each attempt gets
// a fresh exchange for the SDK middleware to fill; classify judges the
// attempt's error with it.
func (p RetryPolicy) run(ctx context.Context, call func(context.Context, *exchange) error, classify func(error, *exchange) failure) (int, error) {
	p = p.withDefaults()
	for n := 1; ; n++ {
		x := &exchange{}
		err := call(ctx, x)
		if err == nil {
			return n, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return n, cerr
		}
		f := classify(err, x)
		if !f.retry || n >= p.MaxAttempts {
			return n, f.err
		}
		wait := f.after
		if wait <= 0 {
			wait = p.backoff(n)
		}
		wait = min(wait, MaxRetryAfter)
		if err := p.Sleep(ctx, wait); err != nil {
			return n, err
		}
	}
}

// retryableStatus reports whether an HTTP status is worth another attempt.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout, 529:
		return true
	}
	return false
}

// retryAfter reads the wait a response asks for: retry-after-ms, then
// retry-after as seconds or as an HTTP date (relative to now).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if h == nil {
		return 0, false
	}
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && ms < float64(24*time.Hour/time.Millisecond) {
			return time.Duration(ms * float64(time.Millisecond)), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 || s > (24*time.Hour).Seconds() {
			return 0, false
		}
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// httpFailure judges an HTTP error response.
func httpFailure(backend string, status int, typ, msg string, h http.Header, key string) failure {
	if typ == "" {
		typ = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	f := failure{
		err:   &APIError{Backend: backend, Status: status, Type: redact(typ, key), Message: redact(msg, key)},
		retry: retryableStatus(status),
	}
	if f.retry {
		f.after, _ = retryAfter(h, time.Now())
	}
	return f
}

// otherFailure judges an error that carries no provider error body: a
// connection failure (retried) or anything else, such as a response that
// did not decode (final).
func otherFailure(backend string, err error, x *exchange, key string) failure {
	if x.status >= 400 {
		typ, msg := parseErrorBody(x.body)
		return httpFailure(backend, x.status, typ, msg, x.header, key)
	}
	if transient(err) {
		return failure{
			err:   &APIError{Backend: backend, Type: "connection_error", Message: redact(err.Error(), key)},
			retry: true,
		}
	}
	typ := "client_error"
	if x.status != 0 {
		typ = "invalid_response"
	}
	return failure{err: &APIError{Backend: backend, Status: x.status, Type: typ, Message: redact(err.Error(), key)}}
}

// errIncompleteStream is a stream that ended before its final event.
var errIncompleteStream = errors.New("stream ended before the message was complete")

// transient reports whether err is a connection-level failure that another
// attempt may not meet. The caller has already ruled out its own context.
func transient(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return true
		}
		err = ue.Err // "unsupported protocol scheme" and the like stay final
	}
	switch {
	case errors.Is(err, errIncompleteStream),
		errors.Is(err, context.DeadlineExceeded), // the SDK's per-attempt timeout
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// maxErrorBody bounds how much of an error response is kept.
const maxErrorBody = 64 << 10

// exchange is what one HTTP attempt got back, as an SDK middleware saw
// it: the status and headers of every response, and the body of an error
// response (which it puts back for the SDK to read). It lets a backend
// judge errors the SDK could not parse, such as a local server's
// non-standard error body.
type exchange struct {
	status int
	header http.Header
	body   []byte
}

// capture is an SDK middleware that fills x.
func (x *exchange) capture(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	res, err := next(req)
	if res == nil {
		return res, err
	}
	x.status, x.header = res.StatusCode, res.Header.Clone()
	if res.StatusCode >= 400 && res.Body != nil {
		body, rerr := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
		res.Body.Close()
		x.body = body
		res.Body = io.NopCloser(bytes.NewReader(body))
		if rerr != nil && err == nil {
			err = rerr
		}
	}
	return res, err
}

// parseErrorBody pulls an error type and message out of the error bodies
// that providers and local servers send: {"error":{"type","message"}}
// (Anthropic, OpenAI, Ollama, llama.cpp), {"object":"error","type",
// "message"} (vLLM) and {"error":"message"}. Anything else becomes the
// start of the body as the message.
func parseErrorBody(body []byte) (typ, msg string) {
	var v struct {
		Type    string          `json:"type"`
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", truncate(strings.TrimSpace(string(body)), 512)
	}
	if len(v.Error) > 0 {
		var inner struct {
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Error, &s) == nil:
			return v.Type, s
		case json.Unmarshal(v.Error, &inner) == nil:
			typ = inner.Type
			if typ == "" {
				var code string
				if json.Unmarshal(inner.Code, &code) == nil {
					typ = code
				}
			}
			return typ, inner.Message
		}
	}
	if v.Type == "error" { // Anthropic's envelope without a usable error object
		v.Type = ""
	}
	return v.Type, v.Message
}

// redact removes the API key from text bound for an error.
func redact(s, key string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, "[REDACTED]")
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
