package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/lab"
)

// provider is one upstream API.
type provider struct {
	name   string // "anthropic" or "openai"
	key    string // the real key; never shown
	base   string // the API's base URL, without a trailing slash
	keyEnv string // the environment variable the lab reads the key from
}

// request is what the proxy read of a metered request body.
type request struct {
	body  []byte // as forwarded upstream
	model string
	// stream is whether the client asked for a stream; wantsUsage whether
	// it asked for OpenAI's final usage chunk itself.
	stream, wantsUsage bool
}

// serveMetered forwards a Messages or Chat Completions call, streams the
// answer back, and records the call and its priced usage.
func (p *Proxy) serveMetered(w http.ResponseWriter, r *http.Request, c *call) {
	prov := c.route.prov
	body, err := p.readBody(w, r)
	if err != nil {
		p.failErr(w, prov, err)
		return
	}
	req, err := parseRequest(prov.name, body)
	if err != nil {
		p.failErr(w, prov, err)
		return
	}
	if _, ok := p.o.Prices.Lookup(req.model); !ok {
		p.fail(w, prov, http.StatusBadRequest, "unpriced_model", fmt.Sprintf("model %q has no price in this lab, so its calls cannot be metered: the operator adds it to the prices file in AAR_PRICES ({\"%s\": {\"input\": USD/Mtok, \"output\": …}}) and restarts the lab", clip(req.model), clip(req.model)))
		return
	}
	if pe := p.checkBudget(c); pe != nil {
		p.failErr(w, prov, pe)
		return
	}
	// Nothing is forwarded that was not recorded first.
	if err := p.recordRequest(r.Context(), c, req, body); err != nil {
		p.log.Error("proxy: record request", "call", c.id, "campaign", c.who.Campaign, "researcher", c.who.Researcher, "err", p.scrub(err.Error()))
		p.fail(w, prov, http.StatusInternalServerError, "internal", "the lab could not record the call, so it was not made; the operator has the details in the lab's log")
		return
	}

	// The upstream call outlives the client: a caller that hangs up still
	// pays for what the provider generated, so the proxy reads the answer
	// to its end (within Timeout) and meters it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.o.Timeout)
	defer cancel()
	res := &result{status: http.StatusBadGateway}
	m := newMeter(prov.name, req.wantsUsage)
	// finish writes what the client gets only once the call is recorded.
	var finish func()
	resp, err := p.forward(ctx, r, c, req.body)
	switch {
	case err != nil:
		res.err = p.upstreamFailed(w, c, err)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		res.err = p.keyRefused(w, c, resp)
		res.status = resp.StatusCode
	case resp.StatusCode/100 != 2:
		res.status = resp.StatusCode
		res.body, res.err = p.relayError(w, c, resp)
	case isEventStream(resp.Header):
		res.status, res.stream = resp.StatusCode, true
		var held []byte
		res.clientGone, held, res.err = p.relayStream(w, c, resp, m)
		finish = func() { p.writeHeld(w, held, res.clientGone) }
	default:
		res.status = resp.StatusCode
		res.body, res.err = p.readJSON(c, resp, m)
		finish = p.jsonWriter(w, c, resp, res.body, res.err)
	}
	if resp != nil {
		resp.Body.Close()
	}
	res.outcome = m.outcome()
	p.recordResponse(c, req, res)
	if finish != nil {
		finish()
	}
}

// servePassthrough forwards an unmetered call (count_tokens: free, so not
// recorded and not refused at the budget).
func (p *Proxy) servePassthrough(w http.ResponseWriter, r *http.Request, c *call) {
	prov := c.route.prov
	body, err := p.readBody(w, r)
	if err != nil {
		p.failErr(w, prov, err)
		return
	}
	if !json.Valid(body) {
		p.fail(w, prov, http.StatusBadRequest, "invalid_json", "the body is not JSON")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.o.Timeout)
	defer cancel()
	resp, err := p.forward(ctx, r, c, body)
	switch {
	case err != nil:
		_ = p.upstreamFailed(w, c, err)
		return
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		_ = p.keyRefused(w, c, resp)
	case resp.StatusCode/100 != 2:
		_, _ = p.relayError(w, c, resp)
	default:
		b, err := p.readJSON(c, resp, nil)
		p.jsonWriter(w, c, resp, b, err)()
	}
	resp.Body.Close()
}

// readBody reads the request body within MaxBody.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.o.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, &publicError{http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the request body is over the proxy's %d-byte limit", mbe.Limit)}
	case err != nil:
		return nil, &publicError{http.StatusBadRequest, "invalid_request", "the request body could not be read"}
	}
	return body, nil
}

// parseRequest reads the model and the stream flags. For an OpenAI stream
// it asks for the final usage chunk (stream_options.include_usage), which
// the proxy needs to meter; the chunk reaches the client only if it asked
// for it.
func parseRequest(prov string, body []byte) (*request, error) {
	var head struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, &publicError{http.StatusBadRequest, "invalid_json", "the body is not the provider's JSON request object: " + err.Error()}
	}
	if head.Model == "" {
		return nil, &publicError{http.StatusBadRequest, "invalid_request", "the request names no model"}
	}
	req := &request{body: body, model: head.Model, stream: head.Stream}
	if prov != "openai" || !head.Stream {
		return req, nil
	}
	req.wantsUsage = head.StreamOptions != nil && head.StreamOptions.IncludeUsage
	if req.wantsUsage {
		return req, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, &publicError{http.StatusBadRequest, "invalid_json", "the body is not a JSON object"}
	}
	opts := map[string]json.RawMessage{}
	if raw := obj["stream_options"]; len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &opts); err != nil {
			return nil, &publicError{http.StatusBadRequest, "invalid_request", "stream_options must be an object"}
		}
	}
	opts["include_usage"] = json.RawMessage("true")
	var err error
	if obj["stream_options"], err = json.Marshal(opts); err != nil {
		return nil, err
	}
	if req.body, err = json.Marshal(obj); err != nil {
		return nil, err
	}
	return req, nil
}

// forward makes the upstream call with the real key and none of the
// caller's credentials or cookies.
func (p *Proxy) forward(ctx context.Context, r *http.Request, c *call, body []byte) (*http.Response, error) {
	prov := c.route.prov
	u := prov.base + c.route.upstream
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	up, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for _, h := range forwardHeaders {
		if v := r.Header.Values(h); len(v) > 0 {
			up.Header[h] = v
		}
	}
	if up.Header.Get("Content-Type") == "" {
		up.Header.Set("Content-Type", "application/json")
	}
	// Anthropic: the real key goes in the header the caller used for its
	// virtual key (SDK v2: Authorization: Bearer; Claude Code and older
	// SDKs: x-api-key), which matches the anthropic-version it sends.
	if prov.name == "anthropic" && r.Header.Get("Authorization") == "" {
		up.Header.Set("X-Api-Key", prov.key)
	} else {
		up.Header.Set("Authorization", "Bearer "+prov.key)
	}
	return p.o.Client.Do(up)
}

// forwardHeaders are the caller's request headers the proxy passes on
// (canonical form); everything else, credentials and cookies included,
// stays behind.
var forwardHeaders = []string{"Accept", "Anthropic-Beta", "Anthropic-Version", "Content-Type", "Idempotency-Key", "Openai-Beta", "User-Agent"}

// dropResponseHeaders are upstream response headers the caller does not
// get: hop-by-hop ones, a length the proxy may change, and the lab's
// account details.
var dropResponseHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Content-Length": true, "Set-Cookie": true,
	"Anthropic-Organization-Id": true, "Openai-Organization": true, "Openai-Project": true,
}

// copyHeaders copies the upstream's response headers the caller may see.
func (p *Proxy) copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		if dropResponseHeaders[http.CanonicalHeaderKey(k)] {
			continue
		}
		for _, v := range vs {
			dst.Add(k, p.scrub(v))
		}
	}
}

func isEventStream(h http.Header) bool {
	return strings.HasPrefix(strings.TrimSpace(strings.ToLower(h.Get("Content-Type"))), "text/event-stream")
}

// upstreamFailed answers a call the provider never answered: 502, or 504
// for a timeout. The detail (which names the upstream host) is logged.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, c *call, err error) error {
	prov := c.route.prov
	status, why := http.StatusBadGateway, "could not be reached"
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		status, why = http.StatusGatewayTimeout, fmt.Sprintf("did not answer within the proxy's %s timeout", p.o.Timeout)
	}
	p.log.Warn("proxy: upstream call failed", "call", c.id, "provider", prov.name, "err", p.scrub(err.Error()))
	msg := fmt.Sprintf("upstream failure: the %s API %s; try again later", prov.name, why)
	p.fail(w, prov, status, "upstream_unavailable", msg)
	return errors.New(msg)
}

// keyRefused answers an upstream 401 or 403, which means the lab's key is
// wrong, not the caller's: 502, and the operator is told in the log.
func (p *Proxy) keyRefused(w http.ResponseWriter, c *call, resp *http.Response) error {
	prov := c.route.prov
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	p.log.Error("proxy: the upstream refused the lab's key", "call", c.id, "provider", prov.name, "status", resp.StatusCode, "body", p.scrub(string(b)))
	msg := fmt.Sprintf("upstream failure: the %s API refused the lab's key (status %d); the operator checks %s", prov.name, resp.StatusCode, prov.keyEnv)
	p.fail(w, prov, http.StatusBadGateway, "upstream_key_refused", msg)
	return errors.New(msg)
}

// relayError passes an upstream error (400, 404, 413, 429, 5xx, 529)
// through to the caller, scrubbed.
func (p *Proxy) relayError(w http.ResponseWriter, c *call, resp *http.Response) ([]byte, error) {
	if resp.StatusCode/100 == 3 {
		p.log.Error("proxy: the upstream redirected; the proxy follows no redirect", "call", c.id, "provider", c.route.prov.name, "status", resp.StatusCode)
		msg := fmt.Sprintf("upstream failure: the %s API answered with a redirect (status %d), which the proxy does not follow; the operator checks its base URL", c.route.prov.name, resp.StatusCode)
		p.fail(w, c.route.prov, http.StatusBadGateway, "upstream_redirect", msg)
		return nil, errors.New(msg)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	b = []byte(p.scrub(string(b)))
	p.copyHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(b)
	if err != nil {
		return b, fmt.Errorf("upstream error body cut short: %w", err)
	}
	return b, fmt.Errorf("upstream status %d", resp.StatusCode)
}

// readJSON reads a whole response within MaxResponse and meters it.
func (p *Proxy) readJSON(c *call, resp *http.Response, m meter) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, p.o.MaxResponse+1))
	if err == nil && int64(len(b)) > p.o.MaxResponse {
		err = fmt.Errorf("the upstream response is over the proxy's %d-byte limit", p.o.MaxResponse)
	}
	if err != nil {
		p.log.Warn("proxy: upstream response unread", "call", c.id, "err", p.scrub(err.Error()))
		return nil, fmt.Errorf("upstream failure: the %s API's answer could not be read", c.route.prov.name)
	}
	b = []byte(p.scrub(string(b)))
	if m != nil {
		m.whole(b)
	}
	return b, nil
}

// jsonWriter returns what passes a read response on (or the 502 for one
// that could not be read).
func (p *Proxy) jsonWriter(w http.ResponseWriter, c *call, resp *http.Response, b []byte, err error) func() {
	return func() {
		if err != nil {
			p.fail(w, c.route.prov, http.StatusBadGateway, "upstream_unavailable", err.Error())
			return
		}
		p.copyHeaders(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
	}
}

// relayStream passes an event stream on, event by event, flushing each,
// while the meter reads usage and content from it; it returns the events
// held back (the terminal one and any after it). When the client goes
// away the stream is still read to its end and metered.
func (p *Proxy) relayStream(w http.ResponseWriter, c *call, resp *http.Response, m meter) (clientGone bool, held []byte, err error) {
	p.copyHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	sc := newSSEReader(resp.Body, maxEvent)
	for {
		ev, rerr := sc.next()
		if len(ev.raw) > 0 {
			v := pass
			if ev.hasData {
				v = m.event(ev.data)
			}
			switch {
			case v == drop:
			case v == hold || held != nil:
				held = append(held, p.scrub(string(ev.raw))...)
			case !clientGone:
				if _, werr := w.Write([]byte(p.scrub(string(ev.raw)))); werr != nil {
					clientGone = true
				} else if ferr := rc.Flush(); ferr != nil {
					clientGone = true
				}
			}
		}
		if rerr == io.EOF {
			return clientGone, held, nil
		}
		if rerr != nil {
			p.log.Warn("proxy: upstream stream cut short", "call", c.id, "err", p.scrub(rerr.Error()))
			msg := fmt.Sprintf("upstream failure: the %s stream was cut short", c.route.prov.name)
			return clientGone, append(held, streamError(c.route.prov.name, msg)...), errors.New(msg)
		}
	}
}

// writeHeld writes the held end of a stream.
func (p *Proxy) writeHeld(w http.ResponseWriter, held []byte, clientGone bool) {
	if clientGone || len(held) == 0 {
		return
	}
	if _, err := w.Write(held); err == nil {
		_ = http.NewResponseController(w).Flush()
	}
}

// streamError is an error event in the provider's stream format.
func streamError(prov, msg string) []byte {
	if prov == "openai" {
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "server_error", "code": "upstream_unavailable"}})
		return []byte("data: " + string(b) + "\n\n")
	}
	b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": "api_error", "message": msg}})
	return []byte("event: error\ndata: " + string(b) + "\n\n")
}

// result is what came of a metered call.
type result struct {
	status     int
	stream     bool
	body       []byte // a JSON response or an upstream error, as relayed
	err        error  // why the call failed, as the caller was told
	clientGone bool
	outcome    outcome
}

// recordResponse records the model_response event with the metered usage
// and its price. The call has happened, so a failure to record is retried
// and, failing that, logged as an error.
func (p *Proxy) recordResponse(c *call, req *request, res *result) {
	o := res.outcome
	model := o.model
	if model == "" {
		model = req.model
	}
	ev := lab.TranscriptEvent{Session: p.o.Session, Type: EventResponse}
	pricedAs := model
	pr, ok := p.o.Prices.Lookup(model)
	if !ok {
		pricedAs = req.model
		pr, _ = p.o.Prices.Lookup(req.model)
	}
	if o.usage != nil {
		ev.Usage = &lab.Usage{InputTokens: o.usage.InputTokens, OutputTokens: o.usage.OutputTokens, CacheReadTokens: o.usage.CacheReadTokens, CacheWriteTokens: o.usage.CacheWriteTokens}
		ev.CostUSD = pr.Cost(*o.usage)
	} else if res.status/100 == 2 {
		p.log.Warn("proxy: a successful call carried no usage; it is recorded at $0", "call", c.id, "provider", c.route.prov.name, "model", model)
	}
	fields := map[string]any{
		"call": c.id, "provider": c.route.prov.name, "model": model, "status": res.status, "stream": res.stream,
		"duration_ms": time.Since(c.start).Milliseconds(),
	}
	if o.usage != nil {
		fields["usage_upstream"] = o.upstreamUsage
		fields["priced_as"] = pricedAs
		fields["price_per_mtok"] = pr
	}
	if o.stop != "" {
		fields["stop_reason"] = o.stop
	}
	if res.err != nil {
		fields["error"] = res.err.Error()
	}
	if len(o.streamError) > 0 {
		fields["stream_error"] = o.streamError
	}
	if res.clientGone {
		fields["client_gone"] = true
	}
	body, key := res.body, "body"
	if res.stream {
		body, key = o.content, "content"
	}
	ev.Data = p.fitData(fields, key, body)
	ctx := context.Background()
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		if _, err = p.lab.AppendTranscript(ctx, c.who, []lab.TranscriptEvent{ev}); err == nil {
			return
		}
	}
	p.log.Error("proxy: a metered call was not recorded", "call", c.id, "campaign", c.who.Campaign, "researcher", c.who.Researcher,
		"model", model, "cost_usd", ev.CostUSD, "err", p.scrub(err.Error()))
}

// recordRequest records the model_request event.
func (p *Proxy) recordRequest(ctx context.Context, c *call, req *request, body []byte) error {
	fields := map[string]any{"call": c.id, "provider": c.route.prov.name, "path": c.route.upstream, "model": req.model, "stream": req.stream, "bytes": len(body)}
	ev := lab.TranscriptEvent{Session: p.o.Session, Type: EventRequest, Data: p.fitData(fields, "body", body)}
	_, err := p.lab.AppendTranscript(ctx, c.who, []lab.TranscriptEvent{ev})
	return err
}

func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
