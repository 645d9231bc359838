// Package proxy owns the lab's metering model proxy: it lets an agent CLI in
// a sandbox call Anthropic's Messages API or OpenAI's Chat Completions with
// its lab researcher token as the API key (a virtual key), forwards the call
// with the lab's real key, meters the tokens the provider reports, prices
// them and records request and response as the researcher's transcript
// events, and refuses a researcher whose dollar budget is spent.
//
// It must never let the real key reach a response, a log line, an error or
// a transcript, and never forward a call it could not record first.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/llm"
)

// Lab is what the proxy needs of the lab: who a token is, the researcher's
// budget, spend and control state, and its transcript.
type Lab interface {
	Authenticate(token string) *lab.Identity
	ResearcherBudgetUSD(campaign, researcher string) (float64, bool)
	SpendOf(id *lab.Identity, campaign, researcher string) (*lab.Spend, error)
	MyControl(id *lab.Identity, since int64) (*lab.ControlState, error)
	AppendTranscript(ctx context.Context, id *lab.Identity, events []lab.TranscriptEvent) (*lab.TranscriptAck, error)
}

var _ Lab = (*lab.Lab)(nil)

// Defaults of Options.
const (
	DefaultAnthropicURL = "https://api.anthropic.com"
	DefaultOpenAIURL    = "https://api.openai.com/v1"
	DefaultMaxBody      = 32 << 20
	DefaultMaxResponse  = 64 << 20
	DefaultTimeout      = 30 * time.Minute
	DefaultMaxRecord    = 64 << 10
	DefaultSession      = "proxy"
	// maxRecordLimit keeps a recorded event under the lab's 256 KiB limit
	// with room for the fields around the body.
	maxRecordLimit = 192 << 10
)

// Transcript event types the proxy records.
const (
	EventRequest  = "model_request"
	EventResponse = "model_response"
)

// Options configure a Proxy. The keys are the real provider keys; a
// provider without one answers 503.
type Options struct {
	AnthropicKey string
	AnthropicURL string // the API's root; default DefaultAnthropicURL
	OpenAIKey    string
	OpenAIURL    string // ends in /v1; default DefaultOpenAIURL
	// Prices price the metered tokens; nil means llm.DefaultPrices(). A
	// call for a model without a price is refused.
	Prices llm.Prices
	// Models is what GET /v1/proxy/openai/v1/models lists; nil means every
	// model (or prefix) with a price.
	Models []string
	// MaxBody bounds a request body (default 32 MiB), MaxResponse a
	// non-streamed response (default 64 MiB).
	MaxBody, MaxResponse int64
	// Timeout bounds one upstream call, a stream to its end included
	// (default 30 min: long generations stream for more than 10).
	Timeout time.Duration
	// MaxRecord bounds the request or response body kept in one
	// transcript event (default 64 KiB, at most 192 KiB); a longer one is
	// kept as its head and tail with its size and SHA-256.
	MaxRecord int
	// Session is the transcript session of the proxy's events (default
	// "proxy").
	Session string
	// Client makes the upstream calls (default: a client over a clone of
	// http.DefaultTransport that follows no redirect, so the key goes to
	// the configured host only).
	Client *http.Client
	Logger *slog.Logger
}

// withDefaults fills the zero fields.
func (o Options) withDefaults() Options {
	if o.AnthropicURL == "" {
		o.AnthropicURL = DefaultAnthropicURL
	}
	if o.OpenAIURL == "" {
		o.OpenAIURL = DefaultOpenAIURL
	}
	if o.Prices == nil {
		o.Prices = llm.DefaultPrices()
	}
	if o.Models == nil {
		for _, m := range o.Prices.Models() {
			if m != "scripted" && m != "builtin" {
				o.Models = append(o.Models, m)
			}
		}
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxResponse <= 0 {
		o.MaxResponse = DefaultMaxResponse
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRecord <= 0 {
		o.MaxRecord = DefaultMaxRecord
	}
	if o.Session == "" {
		o.Session = DefaultSession
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate says which field is wrong and why. It never quotes a key.
func (o Options) Validate() error {
	for _, u := range []struct{ name, v string }{{"AnthropicURL", o.AnthropicURL}, {"OpenAIURL", o.OpenAIURL}} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
			return fmt.Errorf("proxy: %s must be an http(s) URL with a host and no user info", u.name)
		}
	}
	for name, v := range o.Prices {
		for _, f := range []float64{v.Input, v.Output, v.CacheRead, v.CacheWrite} {
			if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("proxy: Prices[%q] has a negative or non-finite price", name)
			}
		}
	}
	if o.MaxRecord > maxRecordLimit {
		return fmt.Errorf("proxy: MaxRecord %d is over %d bytes (a transcript event holds at most 256 KiB)", o.MaxRecord, maxRecordLimit)
	}
	return nil
}

// Proxy is the metering model proxy, an http.Handler for the paths under
// /v1/proxy/.
type Proxy struct {
	lab  Lab
	o    Options
	log  *slog.Logger
	anth *provider
	oai  *provider
	// routes is the route table: method and path under /v1/proxy/.
	routes map[string]route
}

// route is one entry of the route table.
type route struct {
	method string
	prov   *provider
	// upstream is the path appended to the provider's base URL.
	upstream string
	serve    func(p *Proxy, w http.ResponseWriter, r *http.Request, c *call)
}

// New returns a proxy over l.
func New(l Lab, o Options) (*Proxy, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{lab: l, o: o, log: o.Logger}
	p.anth = &provider{name: "anthropic", key: o.AnthropicKey, base: strings.TrimRight(o.AnthropicURL, "/"), keyEnv: "ANTHROPIC_API_KEY"}
	p.oai = &provider{name: "openai", key: o.OpenAIKey, base: strings.TrimRight(o.OpenAIURL, "/"), keyEnv: "OPENAI_API_KEY"}
	p.routes = map[string]route{
		"/v1/proxy/anthropic/v1/messages":              {http.MethodPost, p.anth, "/v1/messages", (*Proxy).serveMetered},
		"/v1/proxy/anthropic/v1/messages/count_tokens": {http.MethodPost, p.anth, "/v1/messages/count_tokens", (*Proxy).servePassthrough},
		"/v1/proxy/openai/v1/chat/completions":         {http.MethodPost, p.oai, "/chat/completions", (*Proxy).serveMetered},
		"/v1/proxy/openai/v1/models":                   {http.MethodGet, p.oai, "", (*Proxy).serveModels},
	}
	return p, nil
}

// call is one request's state as it passes through the proxy.
type call struct {
	id    string // px_…, links the request and response events
	who   *lab.Identity
	route route
	start time.Time
}

// ServeHTTP authenticates the virtual key, checks that the researcher may
// spend, and serves the route.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimRight(r.URL.Path, "/")
	prov := p.providerOf(path)
	rt, ok := p.routes[path]
	if !ok {
		p.fail(w, prov, http.StatusNotFound, "not_found", fmt.Sprintf("the proxy has no route %s %s: it serves POST /v1/proxy/anthropic/v1/messages (and /count_tokens), POST /v1/proxy/openai/v1/chat/completions and GET /v1/proxy/openai/v1/models", r.Method, r.URL.Path))
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		p.fail(w, prov, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s takes %s", r.URL.Path, rt.method))
		return
	}
	who := p.lab.Authenticate(callerKey(r, prov))
	switch {
	case who == nil:
		how := "Authorization: Bearer <token>"
		if prov == p.anth {
			how = "x-api-key: <token> or " + how
		}
		p.fail(w, prov, http.StatusUnauthorized, "unauthorized", "missing, unknown or revoked key: the proxy's API key is your lab researcher token ("+how+")")
		return
	case who.Role != lab.RoleResearcher:
		p.fail(w, prov, http.StatusForbidden, "forbidden", "the model proxy meters researchers: use a researcher token as the API key")
		return
	}
	if rt.upstream != "" && rt.prov.key == "" {
		p.fail(w, prov, http.StatusServiceUnavailable, "not_configured", fmt.Sprintf("the lab has no %s key: the operator starts the lab with %s set", prov.name, prov.keyEnv))
		return
	}
	if st, err := p.lab.MyControl(who, math.MaxInt64); err != nil {
		p.failErr(w, prov, err)
		return
	} else if st.CampaignStopped || st.State == lab.StateStopped {
		p.fail(w, prov, http.StatusForbidden, "researcher_stopped", fmt.Sprintf("researcher %s is stopped (campaign %s): the lab makes no more model calls for it", who.Researcher, who.Campaign))
		return
	} else if st.State == lab.StatePaused {
		p.fail(w, prov, http.StatusForbidden, "researcher_paused", fmt.Sprintf("researcher %s is paused by the operator: wait until GET /v1/control says running", who.Researcher))
		return
	}
	c := &call{id: newCallID(), who: who, route: rt, start: time.Now()}
	w.Header().Set("X-Aar-Proxy-Call", c.id)
	rt.serve(p, w, r, c)
}

// providerOf says whose error shape a path gets.
func (p *Proxy) providerOf(path string) *provider {
	if strings.HasPrefix(path, "/v1/proxy/openai") {
		return p.oai
	}
	return p.anth
}

// callerKey is the virtual key the caller sent: Authorization: Bearer, or
// (Anthropic) x-api-key.
func callerKey(r *http.Request, prov *provider) string {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	if prov.name == "anthropic" {
		return strings.TrimSpace(r.Header.Get("X-Api-Key"))
	}
	return ""
}

// checkBudget refuses a researcher whose spend has reached its budget.
func (p *Proxy) checkBudget(c *call) *publicError {
	budget, ok := p.lab.ResearcherBudgetUSD(c.who.Campaign, c.who.Researcher)
	if !ok {
		return nil
	}
	s, err := p.lab.SpendOf(c.who, "", "")
	if err != nil {
		p.log.Error("proxy: read spend", "campaign", c.who.Campaign, "researcher", c.who.Researcher, "err", err)
		return &publicError{http.StatusInternalServerError, "internal", "the lab could not read your spend; the operator has the details in the lab's log"}
	}
	if s.CostUSD >= budget {
		return &publicError{http.StatusPaymentRequired, "budget_exhausted", fmt.Sprintf("budget exhausted: $%.6g of $%.6g spent", s.CostUSD, budget)}
	}
	return nil
}

// serveModels answers the configured model list in OpenAI's shape.
func (p *Proxy) serveModels(w http.ResponseWriter, _ *http.Request, _ *call) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	out := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range p.o.Models {
		out.Data = append(out.Data, model{ID: m, Object: "model", OwnedBy: "aar-lab"})
	}
	writeJSON(w, http.StatusOK, out)
}

// publicError is an error whose message a researcher may see.
type publicError struct {
	status  int
	code    string
	message string
}

func (e *publicError) Error() string { return e.code + ": " + e.message }

// failErr answers err: a lab.PublicError as it is, anything else as an
// opaque 500 (logged in full).
func (p *Proxy) failErr(w http.ResponseWriter, prov *provider, err error) {
	var pe *publicError
	var le *lab.PublicError
	switch {
	case errors.As(err, &pe):
		p.fail(w, prov, pe.status, pe.code, pe.message)
	case errors.As(err, &le):
		p.fail(w, prov, le.Status, le.Code, le.Message)
	default:
		p.log.Error("proxy: request failed", "err", p.scrub(err.Error()))
		p.fail(w, prov, http.StatusInternalServerError, "internal", "the proxy failed to handle the request; the operator has the details in the lab's log")
	}
}

// fail writes an error in the provider's shape, scrubbed.
func (p *Proxy) fail(w http.ResponseWriter, prov *provider, status int, code, msg string) {
	writeError(w, prov.name, status, code, p.scrub(msg))
}

// writeError writes an error in the provider's shape. Clients are told not
// to retry what a retry cannot fix.
func writeError(w http.ResponseWriter, prov string, status int, code, msg string) {
	if status < 500 || status == http.StatusServiceUnavailable {
		w.Header().Set("X-Should-Retry", "false")
	}
	if prov == "openai" {
		writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": openaiErrorType(status), "param": nil, "code": code}})
		return
	}
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]string{"type": anthropicErrorType(status), "message": msg}})
}

// anthropicErrorType is the Messages API's error type for a status.
func anthropicErrorType(status int) string {
	switch status {
	case 400, 405:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	}
	return "api_error"
}

// openaiErrorType is the OpenAI API's error type for a status.
func openaiErrorType(status int) string {
	switch {
	case status == 402:
		return "insufficient_quota"
	case status == 403:
		return "permission_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// scrub removes the real keys from s.
func (p *Proxy) scrub(s string) string {
	for _, k := range []string{p.o.AnthropicKey, p.o.OpenAIKey} {
		if k != "" {
			s = strings.ReplaceAll(s, k, "[redacted]")
		}
	}
	return s
}

func newCallID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "px_" + hex.EncodeToString(b)
}
