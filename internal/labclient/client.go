// Package labclient is the Go client of the lab's HTTP API, over TCP or the
// lab's Unix socket. It holds a token and nothing else; it never sees a
// label.
package labclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Client talks to one lab with one token.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// FromEnv builds a client from AAR_LAB (http://host:port or unix:///path)
// and AAR_TOKEN.
func FromEnv() (*Client, error) {
	lab, tok := os.Getenv("AAR_LAB"), os.Getenv("AAR_TOKEN")
	if lab == "" || tok == "" {
		return nil, fmt.Errorf("set AAR_LAB (the lab's URL or unix:///path/to/socket) and AAR_TOKEN (your token)")
	}
	return New(lab, tok)
}

// New builds a client for a lab address: http(s)://host:port or
// unix:///path/to/lab.sock.
func New(lab, token string) (*Client, error) {
	c := &Client{token: token, http: &http.Client{Timeout: 2 * time.Minute}}
	switch {
	case strings.HasPrefix(lab, "unix://"):
		path := strings.TrimPrefix(lab, "unix://")
		c.base = "http://lab"
		c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
	case strings.HasPrefix(lab, "http://"), strings.HasPrefix(lab, "https://"):
		c.base = strings.TrimRight(lab, "/")
	default:
		return nil, fmt.Errorf("lab address %q: use http://host:port or unix:///path", lab)
	}
	return c, nil
}

// Error is an error response from the lab.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("lab: %d %s: %s", e.Status, e.Code, e.Message)
	if e.RetryAfter != "" {
		s += " (retry after " + e.RetryAfter + " s)"
	}
	return s
}

// Do sends a request with a JSON body (nil for none) and decodes the JSON
// answer into out. headers are extra request headers.
func (c *Client) Do(ctx context.Context, method, path string, body, out any, headers map[string]string) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return resp.Header, &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, RetryAfter: resp.Header.Get("Retry-After")}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.Header, fmt.Errorf("lab answer: %w", err)
		}
	}
	return resp.Header, nil
}

// Submission is a submission request body.
type Submission struct {
	Seeds    map[string]json.RawMessage `json:"seeds"`
	Snapshot string                     `json:"snapshot,omitempty"`
	Note     string                     `json:"note,omitempty"`
}

// Submit posts a submission; idemKey (may be empty) makes a retry safe.
func (c *Client) Submit(ctx context.Context, s Submission, idemKey string) (json.RawMessage, error) {
	var out json.RawMessage
	h := map[string]string{}
	if idemKey != "" {
		h["Idempotency-Key"] = idemKey
	}
	_, err := c.Do(ctx, "POST", "/v1/submissions", s, &out, h)
	return out, err
}

// DoRaw sends a request with a raw body of contentType (nil body for none)
// and returns the response body for streaming; the caller closes it.
func (c *Client) DoRaw(ctx context.Context, method, path, contentType string, body io.Reader) (io.ReadCloser, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return nil, resp.Header, &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, RetryAfter: resp.Header.Get("Retry-After")}
	}
	return resp.Body, resp.Header, nil
}
