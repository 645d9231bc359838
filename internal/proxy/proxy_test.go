package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/llm"
	"github.com/aar-lab/aar/internal/store/sqlite"
	"github.com/aar-lab/aar/internal/testbed"
)

// The real keys the lab holds; nothing a researcher sees may contain them.
const (
	anthKey = "sk-ant-REAL-5b0c1d2e3f4a"
	oaiKey  = "sk-proj-REAL-9a8b7c6d5e4f"
)

// Prices of the tests' models (USD per million tokens).
var testPrices = llm.Prices{
	"claude-sonnet-4-5": {Input: 3, Output: 15},
	"gpt-test":          {Input: 1.25, Output: 10, CacheRead: 0.125},
}

// reply is one scripted answer of the fake provider.
type reply struct {
	status int
	body   string   // a JSON answer
	events []string // or an event stream, one write and flush per event
	// hold, when set, is waited on after the first event.
	hold   chan struct{}
	header map[string]string
}

// seen is a request the fake provider received.
type seen struct {
	path   string
	header http.Header
	body   []byte
}

// upstream is a fake Anthropic and OpenAI provider that checks the real key
// arrived and none of the researcher's credentials did.
type upstream struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	replies []reply // guarded by mu
	reqs    []seen  // guarded by mu
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{t: t}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) script(rs ...reply) {
	u.mu.Lock()
	u.replies = append(u.replies, rs...)
	u.mu.Unlock()
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	want := "Bearer " + oaiKey
	if strings.HasPrefix(r.URL.Path, "/anth/") {
		want = "Bearer " + anthKey
		if r.Header.Get("Authorization") == "" {
			want = ""
			if r.Header.Get("X-Api-Key") != anthKey {
				u.t.Errorf("upstream %s: x-api-key is not the lab's key", r.URL.Path)
			}
		} else if r.Header.Get("X-Api-Key") != "" {
			u.t.Errorf("upstream %s: both Authorization and x-api-key", r.URL.Path)
		}
	}
	if want != "" && r.Header.Get("Authorization") != want {
		u.t.Errorf("upstream %s: Authorization is not the lab's key", r.URL.Path)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, "aar_") {
				u.t.Errorf("upstream %s: header %s carries a lab token", r.URL.Path, k)
			}
		}
	}
	u.mu.Lock()
	u.reqs = append(u.reqs, seen{r.URL.Path, r.Header.Clone(), body})
	if len(u.replies) == 0 {
		u.mu.Unlock()
		u.t.Errorf("unexpected upstream request to %s", r.URL.Path)
		http.Error(w, `{"error":{"type":"test_error","message":"script exhausted"}}`, http.StatusTeapot)
		return
	}
	rep := u.replies[0]
	u.replies = u.replies[1:]
	u.mu.Unlock()

	w.Header().Set("Request-Id", "req_upstream_1")
	w.Header().Set("Anthropic-Organization-Id", "org-of-the-lab")
	w.Header().Set("Openai-Organization", "org-of-the-lab")
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.events == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for i, ev := range rep.events {
		io.WriteString(w, ev)
		w.(http.Flusher).Flush()
		if i == 0 && rep.hold != nil {
			<-rep.hold
		}
	}
}

// env is a lab with campaign c1 (alice has a budget of $0.025, bob none),
// served on TCP and a Unix socket with the proxy mounted, and a fake
// upstream behind the proxy.
type env struct {
	t                   *testing.T
	lab                 *lab.Lab
	up                  *upstream
	base, socket        string
	alice, bob, admin   string
	logs                *syncBuffer
	anthropic, openaiRt string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const aliceBudget = 0.025

func newEnv(t *testing.T, tweak func(*Options)) *env {
	t.Helper()
	for _, k := range []string{"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	tbs, err := testbed.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(7)
	study := filepath.Join("..", "testbed", "testdata", "study")
	if _, err := tbs.Import(filepath.Join(study, "labeled_data", "chat"), testbed.ImportOptions{Name: "chat", Cache: filepath.Join(study, "cache_results"), SplitSeed: &seed}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	l, admin, err := lab.New(ctx, lab.Config{DataDir: dir, Ledger: db})
	if err != nil {
		t.Fatal(err)
	}
	spec := json.RawMessage(fmt.Sprintf(`{"researchers": [{"name": "alice", "budget_usd": %g}, {"name": "bob"}]}`, aliceBudget))
	if _, err := l.CreateCampaign(ctx, lab.Campaign{ID: "c1", Testbed: "chat", Spec: spec}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, lab: l, admin: admin, logs: &syncBuffer{}}
	if e.alice, err = l.CreateToken(ctx, "alice", "c1"); err != nil {
		t.Fatal(err)
	}
	if e.bob, err = l.CreateToken(ctx, "bob", "c1"); err != nil {
		t.Fatal(err)
	}
	e.up = newUpstream(t)
	o := Options{
		AnthropicKey: anthKey, AnthropicURL: e.up.srv.URL + "/anth",
		OpenAIKey: oaiKey, OpenAIURL: e.up.srv.URL + "/oai/v1",
		Prices: testPrices, Timeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&o)
	}
	p, err := New(l, o)
	if err != nil {
		t.Fatal(err)
	}
	l.SetProxy(p)

	// A short socket path: sun_path holds 108 bytes.
	sockDir, err := os.MkdirTemp("", "px")
	if err != nil {
		t.Fatal(err)
	}
	e.socket = filepath.Join(sockDir, "lab.sock")
	sctx, cancel := context.WithCancel(ctx)
	addrc, done := make(chan net.Addr, 1), make(chan error, 1)
	go func() { done <- l.Serve(sctx, "127.0.0.1:0", e.socket, func(a net.Addr) { addrc <- a }) }()
	select {
	case a := <-addrc:
		e.base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("the lab did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		db.Close()
		os.RemoveAll(sockDir)
		noKey(t, "the lab's log", e.logs.String())
	})
	e.anthropic, e.openaiRt = e.base+"/v1/proxy/anthropic", e.base+"/v1/proxy/openai/v1"
	return e
}

func (e *env) anthropicClient(tok string, opts ...aoption.RequestOption) *anthropic.Client {
	c := anthropic.NewClient(append([]aoption.RequestOption{aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL(e.anthropic),
		aoption.WithAPIKey(tok), aoption.WithMaxRetries(0)}, opts...)...)
	return &c
}

func (e *env) openaiClient(tok string) *openai.Client {
	c := openai.NewClient(ooption.WithBaseURL(e.openaiRt), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
	return &c
}

// transcript returns a researcher's transcript, checking it holds no key.
func (e *env) transcript(tok string) []lab.TranscriptEntry {
	e.t.Helper()
	page, err := e.lab.Transcript(context.Background(), e.lab.Authenticate(tok), lab.TranscriptQuery{After: -1, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(page)
	noKey(e.t, "the transcript", string(b))
	return page.Events
}

func (e *env) spend(tok string) *lab.Spend {
	e.t.Helper()
	s, err := e.lab.SpendOf(e.lab.Authenticate(tok), "", "")
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// noKey fails the test when s holds a real key.
func noKey(t *testing.T, what, s string) {
	t.Helper()
	for _, k := range []string{anthKey, oaiKey, "REAL-"} {
		if strings.Contains(s, k) {
			t.Errorf("%s holds the lab's real key: %.400s", what, s)
		}
	}
}

// Canned provider answers.

const anthropicJSON = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",` +
	`"content":[{"type":"text","text":"Hello <b>world</b> & co."}],"stop_reason":"end_turn","stop_sequence":null,` +
	`"usage":{"input_tokens":1200,"output_tokens":345,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000}}`

// anthWant is the usage of anthropicJSON and anthropicStream.
var anthWant = llm.Usage{InputTokens: 1200, OutputTokens: 345, CacheWriteTokens: 100, CacheReadTokens: 2000}

func sse(event, data string) string { return "event: " + event + "\ndata: " + data + "\n\n" }

var anthropicStream = []string{
	sse("message_start", `{"type":"message_start","message":{"id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"output_tokens":1,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000}}}`),
	sse("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
	sse("ping", `{"type": "ping"}`),
	sse("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}`),
	sse("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"look."}}`),
	sse("content_block_stop", `{"type":"content_block_stop","index":0}`),
	sse("content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"bash","input":{}}}`),
	sse("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"command\": \"ls"}}`),
	sse("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" /data\"}"}}`),
	sse("content_block_stop", `{"type":"content_block_stop","index":1}`),
	sse("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":345}}`),
	sse("message_stop", `{"type":"message_stop"}`),
}

const openaiJSON = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-test-2026",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hi <there> & bye.","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":1000,"completion_tokens":50,"total_tokens":1050,"prompt_tokens_details":{"cached_tokens":400}}}`

// oaiWant is the usage of openaiJSON and openaiStream, as the lab
// counts it (input excludes the cached tokens).
var oaiWant = llm.Usage{InputTokens: 600, OutputTokens: 50, CacheReadTokens: 400}

func chunk(s string) string { return "data: " + s + "\n\n" }

var openaiStream = []string{
	chunk(`{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-test-2026","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}`),
	chunk(`{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-test-2026","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}`),
	chunk(`{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-test-2026","choices":[{"index":0,"delta":{"content":"lo."},"finish_reason":null}],"usage":null}`),
	chunk(`{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-test-2026","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"bash","arguments":""}}]},"finish_reason":null}],"usage":null}`),
	chunk(`{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-test-2026","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"command\":\"ls\"}"}}]},"finish_reason":null}],"usage":null}`),
	chunk(`{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-test-2026","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null}`),
	chunk(`{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-test-2026","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":50,"total_tokens":1050,"prompt_tokens_details":{"cached_tokens":400}}}`),
	chunk(`[DONE]`),
}

func anthropicParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 1024,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("List /data."))}}
}

func openaiParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("List /data.")}}
}

// checkMetered checks that ev is a model_response event with exactly the
// usage u priced at the model's price.
func checkMetered(t *testing.T, ev lab.TranscriptEntry, model string, u llm.Usage) {
	t.Helper()
	if ev.Type != EventResponse || ev.Session != DefaultSession {
		t.Fatalf("event %d is %s/%s, want %s/%s", ev.Pos, ev.Session, ev.Type, DefaultSession, EventResponse)
	}
	want := lab.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CacheReadTokens: u.CacheReadTokens, CacheWriteTokens: u.CacheWriteTokens}
	if ev.Usage == nil || *ev.Usage != want {
		t.Errorf("metered usage %+v, want the upstream's %+v", ev.Usage, want)
	}
	pr, _ := testPrices.Lookup(model)
	if ev.CostUSD != pr.Cost(u) || ev.CostUSD <= 0 {
		t.Errorf("cost %v, want %v", ev.CostUSD, pr.Cost(u))
	}
}

// data decodes an event's data.
func data(t *testing.T, ev lab.TranscriptEntry) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Data, &m); err != nil {
		t.Fatalf("event %d data: %v", ev.Pos, err)
	}
	return m
}

func TestAnthropicMessages(t *testing.T) {
	e := newEnv(t, nil)
	e.up.script(reply{status: 200, body: anthropicJSON})
	var raw *http.Response
	msg, err := e.anthropicClient(e.bob).Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5"), aoption.WithResponseInto(&raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "Hello <b>world</b> & co." || msg.StopReason != "end_turn" {
		t.Errorf("message not intact: %s", msg.RawJSON())
	}
	if msg.Usage.InputTokens != 1200 || msg.Usage.OutputTokens != 345 {
		t.Errorf("usage not intact: %s", msg.RawJSON())
	}
	if raw.Header.Get("Request-Id") != "req_upstream_1" || raw.Header.Get("X-Aar-Proxy-Call") == "" {
		t.Errorf("headers: %v", raw.Header)
	}
	if raw.Header.Get("Anthropic-Organization-Id") != "" {
		t.Error("the lab's organisation reached the researcher")
	}
	noKey(t, "the response", msg.RawJSON())

	got := e.up.requests()[0]
	if got.path != "/anth/v1/messages" || got.header.Get("Anthropic-Version") == "" {
		t.Errorf("upstream got %s with %v", got.path, got.header)
	}
	var sent map[string]any
	if json.Unmarshal(got.body, &sent) != nil || sent["model"] != "claude-sonnet-4-5" {
		t.Errorf("upstream body: %s", got.body)
	}

	evs := e.transcript(e.bob)
	if len(evs) != 2 || evs[0].Type != EventRequest {
		t.Fatalf("transcript: %+v", evs)
	}
	req, resp := data(t, evs[0]), data(t, evs[1])
	if req["call"] != resp["call"] || req["call"] != raw.Header.Get("X-Aar-Proxy-Call") {
		t.Errorf("request and response are not linked: %v %v", req["call"], resp["call"])
	}
	if req["model"] != "claude-sonnet-4-5" || req["body"].(map[string]any)["max_tokens"] != 1024.0 {
		t.Errorf("request event: %v", req)
	}
	checkMetered(t, evs[1], "claude-sonnet-4-5", anthWant)
	if resp["status"] != 200.0 || resp["priced_as"] != "claude-sonnet-4-5-20250929" || resp["stop_reason"] != "end_turn" {
		t.Errorf("response event: %v", resp)
	}
	if body := resp["body"].(map[string]any); body["content"].([]any)[0].(map[string]any)["text"] != "Hello <b>world</b> & co." {
		t.Errorf("response body not recorded: %v", body)
	}
	if up, _ := json.Marshal(resp["usage_upstream"]); !strings.Contains(string(up), `"cache_read_input_tokens":2000`) {
		t.Errorf("upstream usage not recorded as sent: %s", up)
	}
	s := e.spend(e.bob)
	if s.InputTokens != 1200 || s.OutputTokens != 345 || s.CacheReadTokens != 2000 || s.CacheWriteTokens != 100 || s.CostUSD != evs[1].CostUSD {
		t.Errorf("spend %+v", s)
	}
}

func TestAnthropicStreaming(t *testing.T) {
	e := newEnv(t, nil)
	e.up.script(reply{events: anthropicStream})
	stream := e.anthropicClient(e.bob).Messages.NewStreaming(context.Background(), anthropicParams("claude-sonnet-4-5"))
	var (
		acc   anthropic.Message
		types []string
	)
	for stream.Next() {
		ev := stream.Current()
		types = append(types, string(ev.Type))
		if err := acc.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	// The SDK skips pings (TestStreamBytes sees them pass).
	want := []string{"message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("events in order:\n got %v\nwant %v", types, want)
	}
	if len(acc.Content) != 2 || acc.Content[0].Text != "Let me look." || acc.Content[1].Name != "bash" || string(acc.Content[1].Input) != `{"command": "ls /data"}` {
		t.Errorf("accumulated message: %s", acc.RawJSON())
	}
	if acc.Usage.OutputTokens != 345 || acc.StopReason != "tool_use" {
		t.Errorf("accumulated usage %+v stop %s", acc.Usage, acc.StopReason)
	}

	evs := e.transcript(e.bob)
	if len(evs) != 2 {
		t.Fatalf("transcript: %+v", evs)
	}
	checkMetered(t, evs[1], "claude-sonnet-4-5", anthWant)
	d := data(t, evs[1])
	content, _ := json.Marshal(d["content"])
	for _, s := range []string{`"text":"Let me look."`, `"name":"bash"`, `"input":{"command":"ls /data"}`, `"stop_reason":"tool_use"`} {
		if !strings.Contains(string(content), s) {
			t.Errorf("assembled content lacks %s: %s", s, content)
		}
	}
	if d["stream"] != true {
		t.Errorf("response event: %v", d)
	}
}

// TestAnthropicAPIKeyHeader calls as Claude Code does, with x-api-key: the
// real key goes upstream in x-api-key too.
func TestAnthropicAPIKeyHeader(t *testing.T) {
	e := newEnv(t, nil)
	e.up.script(reply{status: 200, body: anthropicJSON})
	req, _ := http.NewRequest("POST", e.anthropic+"/v1/messages?beta=true", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("x-api-key", e.bob)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("anthropic-beta", "prompt-caching-2024-07-31")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", "session=secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != anthropicJSON {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	got := e.up.requests()[0]
	if got.header.Get("X-Api-Key") != anthKey || got.header.Get("Authorization") != "" || got.header.Get("Cookie") != "" {
		t.Errorf("upstream headers: %v", got.header)
	}
	if got.header.Get("Anthropic-Beta") != "prompt-caching-2024-07-31" || got.header.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("anthropic headers not forwarded: %v", got.header)
	}
	checkMetered(t, e.transcript(e.bob)[1], "claude-sonnet-4-5", anthWant)
}

func TestOpenAIChatCompletions(t *testing.T) {
	e := newEnv(t, nil)
	e.up.script(reply{status: 200, body: openaiJSON})
	cc, err := e.openaiClient(e.bob).Chat.Completions.New(context.Background(), openaiParams("gpt-test"))
	if err != nil {
		t.Fatal(err)
	}
	if cc.Choices[0].Message.Content != "Hi <there> & bye." || cc.Usage.PromptTokens != 1000 || cc.Usage.PromptTokensDetails.CachedTokens != 400 {
		t.Errorf("completion not intact: %s", cc.RawJSON())
	}
	noKey(t, "the response", cc.RawJSON())
	got := e.up.requests()[0]
	if got.path != "/oai/v1/chat/completions" {
		t.Errorf("upstream path %s", got.path)
	}
	if bytes.Contains(got.body, []byte("stream_options")) {
		t.Errorf("a non-streamed request was changed: %s", got.body)
	}
	evs := e.transcript(e.bob)
	checkMetered(t, evs[1], "gpt-test", oaiWant)
	if u := evs[1].Usage; u.InputTokens+u.CacheReadTokens != 1000 || u.OutputTokens != 50 {
		t.Errorf("tokens %+v do not add up to the upstream's 1000 prompt and 50 completion tokens", u)
	}
}

func TestOpenAIStreaming(t *testing.T) {
	for _, asked := range []bool{false, true} {
		t.Run(fmt.Sprintf("include_usage=%v", asked), func(t *testing.T) {
			e := newEnv(t, nil)
			e.up.script(reply{events: openaiStream})
			params := openaiParams("gpt-test")
			if asked {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := e.openaiClient(e.bob).Chat.Completions.NewStreaming(context.Background(), params)
			var (
				acc       openai.ChatCompletionAccumulator
				chunks    int
				usageSeen bool
			)
			for stream.Next() {
				ch := stream.Current()
				chunks++
				if ch.Usage.PromptTokens > 0 {
					usageSeen = true
				}
				acc.AddChunk(ch)
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			wantChunks := 6
			if asked {
				wantChunks = 7
			}
			if chunks != wantChunks || usageSeen != asked {
				t.Errorf("%d chunks, usage chunk seen %v; want %d and %v", chunks, usageSeen, wantChunks, asked)
			}
			if m := acc.Choices[0].Message; m.Content != "Hello." || len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Arguments != `{"command":"ls"}` {
				t.Errorf("accumulated: %+v", m)
			}
			var sent struct {
				Stream        bool `json:"stream"`
				StreamOptions struct {
					IncludeUsage bool `json:"include_usage"`
				} `json:"stream_options"`
			}
			if err := json.Unmarshal(e.up.requests()[0].body, &sent); err != nil || !sent.Stream || !sent.StreamOptions.IncludeUsage {
				t.Errorf("upstream request did not ask for usage: %s", e.up.requests()[0].body)
			}
			evs := e.transcript(e.bob)
			checkMetered(t, evs[1], "gpt-test", oaiWant)
			content, _ := json.Marshal(data(t, evs[1])["content"])
			for _, s := range []string{`"content":"Hello."`, `"arguments":"{\"command\":\"ls\"}"`, `"finish_reason":"tool_calls"`} {
				if !strings.Contains(string(content), s) {
					t.Errorf("assembled content lacks %s: %s", s, content)
				}
			}
		})
	}
}

func TestOpenAIModels(t *testing.T) {
	e := newEnv(t, nil)
	page, err := e.openaiClient(e.bob).Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "claude-sonnet-4-5,gpt-test" {
		t.Errorf("models %v", ids)
	}
	if len(e.up.requests()) != 0 {
		t.Error("the model list went upstream")
	}
}

// TestBudget calls until alice's budget is reached: the call that crosses
// it completes and is metered, the next is refused with 402 (in each
// provider's shape), and bob, without a budget, goes on.
func TestBudget(t *testing.T) {
	e := newEnv(t, nil)
	pr, _ := testPrices.Lookup("claude-sonnet-4-5")
	per := pr.Cost(anthWant)
	c := e.anthropicClient(e.alice)
	var calls int
	for ; calls < 10; calls++ {
		e.up.script(reply{status: 200, body: anthropicJSON})
		before := e.spend(e.alice).CostUSD
		_, err := c.Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5"))
		if err == nil {
			if before >= aliceBudget {
				t.Fatalf("call %d was made with $%v spent of $%v", calls+1, before, aliceBudget)
			}
			continue
		}
		var ae *anthropic.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusPaymentRequired || ae.Type() != "billing_error" {
			t.Fatalf("call %d: %v", calls+1, err)
		}
		want := fmt.Sprintf("budget exhausted: $%.6g of $%.6g spent", e.spend(e.alice).CostUSD, aliceBudget)
		if ae.Message != want {
			t.Errorf("402 says %q, want %q", ae.Message, want)
		}
		noKey(t, "the error", err.Error())
		break
	}
	if calls != 3 {
		t.Errorf("%d calls before the 402, want 3 (each costs $%v of $%v)", calls, per, aliceBudget)
	}
	s := e.spend(e.alice)
	if s.CostUSD <= aliceBudget || s.OutputTokens != 3*anthWant.OutputTokens {
		t.Errorf("the crossing call was not metered: %+v", s)
	}
	// The refused call reached nobody and recorded nothing.
	if n := len(e.up.requests()); n != 3 {
		t.Errorf("%d upstream calls, want 3", n)
	}
	if n := len(e.transcript(e.alice)); n != 6 {
		t.Errorf("%d transcript events, want 6", n)
	}
	e.up.mu.Lock()
	e.up.replies = nil
	e.up.mu.Unlock()

	_, err := e.openaiClient(e.alice).Chat.Completions.New(context.Background(), openaiParams("gpt-test"))
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != http.StatusPaymentRequired || oe.Code != "budget_exhausted" || !strings.Contains(oe.Message, "budget exhausted") {
		t.Errorf("openai: %v", err)
	}

	e.up.script(reply{status: 200, body: anthropicJSON})
	if _, err := e.anthropicClient(e.bob).Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5")); err != nil {
		t.Errorf("bob has no budget: %v", err)
	}
}

// TestBudgetInFlight: calls in flight when the budget is crossed complete
// and are metered; the next one is refused.
func TestBudgetInFlight(t *testing.T) {
	e := newEnv(t, nil)
	c := e.anthropicClient(e.alice)
	for range 2 {
		e.up.script(reply{status: 200, body: anthropicJSON})
		if _, err := c.Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5")); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	e.up.script(reply{events: anthropicStream, hold: release}, reply{events: anthropicStream, hold: release})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			stream := c.Messages.NewStreaming(context.Background(), anthropicParams("claude-sonnet-4-5"))
			var acc anthropic.Message
			for stream.Next() {
				acc.Accumulate(stream.Current())
			}
			if err := stream.Err(); err != nil {
				errs <- err
			} else if acc.Usage.OutputTokens != 345 {
				errs <- fmt.Errorf("stream cut: %s", acc.RawJSON())
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(e.up.requests()) < 4 {
		if time.Now().After(deadline) {
			t.Fatal("the two calls did not both start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	pr, _ := testPrices.Lookup("claude-sonnet-4-5")
	if s := e.spend(e.alice); s.OutputTokens != 4*anthWant.OutputTokens || s.CostUSD < 4*pr.Cost(anthWant)-1e-12 || s.CostUSD <= aliceBudget {
		t.Errorf("in-flight calls not metered: %+v", s)
	}
	_, err := c.Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5"))
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusPaymentRequired {
		t.Errorf("after the budget: %v", err)
	}
}

func TestRefused(t *testing.T) {
	e := newEnv(t, nil)
	revoked, err := e.lab.CreateToken(context.Background(), "carol", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.lab.RevokeToken(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key string
		status    int
		anthType  string
	}{
		{"wrong key", "aar_not-a-token", 401, "authentication_error"},
		{"real key", anthKey, 401, "authentication_error"},
		{"revoked token", revoked, 401, "authentication_error"},
		{"admin token", e.admin, 403, "permission_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.anthropicClient(tc.key).Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5"))
			var ae *anthropic.Error
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || string(ae.Type()) != tc.anthType {
				t.Errorf("anthropic: %v", err)
			}
			_, err = e.openaiClient(tc.key).Chat.Completions.New(context.Background(), openaiParams("gpt-test"))
			var oe *openai.Error
			if !errors.As(err, &oe) || oe.StatusCode != tc.status {
				t.Errorf("openai: %v", err)
			}
		})
	}
	// No key at all.
	resp, err := http.Post(e.anthropic+"/v1/messages", "application/json", strings.NewReader(`{"model":"claude-sonnet-4-5"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(b), `"type":"authentication_error"`) || !strings.Contains(string(b), "x-api-key") {
		t.Errorf("%d %s", resp.StatusCode, b)
	}

	// A model without a price, and a body over the limit.
	_, err = e.anthropicClient(e.bob).Messages.New(context.Background(), anthropicParams("claude-mystery-1"))
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 400 || !strings.Contains(ae.Message, "AAR_PRICES") {
		t.Errorf("unpriced model: %v", err)
	}
	// Paused and stopped researchers.
	if _, err := e.lab.Control(context.Background(), "c1", lab.ControlRequest{Action: lab.ControlPause, Researcher: "bob"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.openaiClient(e.bob).Chat.Completions.New(context.Background(), openaiParams("gpt-test"))
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 403 || oe.Code != "researcher_paused" {
		t.Errorf("paused: %v", err)
	}
	if _, err := e.lab.Control(context.Background(), "c1", lab.ControlRequest{Action: lab.ControlStop}); err != nil {
		t.Fatal(err)
	}
	_, err = e.anthropicClient(e.alice).Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5"))
	if !errors.As(err, &ae) || ae.StatusCode != 403 || !strings.Contains(ae.Message, "stopped") {
		t.Errorf("stopped: %v", err)
	}
	if n := len(e.up.requests()); n != 0 {
		t.Errorf("%d refused calls went upstream", n)
	}
	if n := len(e.transcript(e.bob)) + len(e.transcript(e.alice)); n != 0 {
		t.Errorf("refused calls recorded %d events", n)
	}
}

func TestLimitsAndRoutes(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBody = 4 << 10; o.OpenAIKey = "" })
	big := anthropicParams("claude-sonnet-4-5")
	big.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(strings.Repeat("x", 8<<10)))}
	_, err := e.anthropicClient(e.bob).Messages.New(context.Background(), big)
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 413 || string(ae.Type()) != "request_too_large" {
		t.Errorf("big body: %v", err)
	}
	_, err = e.openaiClient(e.bob).Chat.Completions.New(context.Background(), openaiParams("gpt-test"))
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 503 || !strings.Contains(oe.Message, "OPENAI_API_KEY") {
		t.Errorf("no OpenAI key: %v", err)
	}
	for _, tc := range []struct{ method, path, auth string }{
		{"POST", "/v1/proxy/anthropic/v1/complete", e.bob},
		{"GET", "/v1/proxy/anthropic/v1/messages", e.bob},
		{"POST", "/v1/proxy/nope", ""},
	} {
		req, _ := http.NewRequest(tc.method, e.base+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+tc.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 && resp.StatusCode != 405 || !strings.Contains(string(b), `"type":"error"`) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, b)
		}
	}
	if n := len(e.up.requests()); n != 0 {
		t.Errorf("%d refused calls went upstream", n)
	}
}

// TestUpstreamFailures: an unreachable provider, one that times out, one
// that refuses the lab's key, and one whose error echoes the key.
func TestUpstreamFailures(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	t.Run("unreachable", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.AnthropicURL = dead.URL })
		_, err := e.anthropicClient(e.bob).Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5"))
		var ae *anthropic.Error
		if !errors.As(err, &ae) || ae.StatusCode != 502 || !strings.Contains(ae.Message, "could not be reached") {
			t.Errorf("%v", err)
		}
		evs := e.transcript(e.bob)
		if len(evs) != 2 || evs[1].Usage != nil || data(t, evs[1])["error"] == nil {
			t.Errorf("transcript: %+v", evs)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // so the server notices the proxy hanging up
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		defer slow.Close()
		e := newEnv(t, func(o *Options) { o.OpenAIURL = slow.URL + "/v1"; o.Timeout = 200 * time.Millisecond })
		_, err := e.openaiClient(e.bob).Chat.Completions.New(context.Background(), openaiParams("gpt-test"))
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.StatusCode != 504 || !strings.Contains(oe.Message, "timeout") {
			t.Errorf("%v", err)
		}
	})
	t.Run("key refused", func(t *testing.T) {
		e := newEnv(t, nil)
		e.up.script(reply{status: 401, body: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key ` + anthKey + `"}}`})
		_, err := e.anthropicClient(e.bob).Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5"))
		var ae *anthropic.Error
		if !errors.As(err, &ae) || ae.StatusCode != 502 || !strings.Contains(ae.Message, "ANTHROPIC_API_KEY") {
			t.Errorf("%v", err)
		}
		noKey(t, "the error", err.Error())
		if !strings.Contains(e.logs.String(), "refused the lab's key") {
			t.Errorf("the operator was not told: %s", e.logs.String())
		}
	})
	t.Run("redirect", func(t *testing.T) {
		e := newEnv(t, nil)
		e.up.script(reply{status: 307, header: map[string]string{"Location": e.up.srv.URL + "/elsewhere"}})
		_, err := e.anthropicClient(e.bob).Messages.New(context.Background(), anthropicParams("claude-sonnet-4-5"))
		var ae *anthropic.Error
		if !errors.As(err, &ae) || ae.StatusCode != 502 || !strings.Contains(ae.Message, "redirect") {
			t.Errorf("%v", err)
		}
		if n := len(e.up.requests()); n != 1 {
			t.Errorf("the redirect was followed: %d upstream requests", n)
		}
	})
	t.Run("error echoes the key", func(t *testing.T) {
		e := newEnv(t, nil)
		e.up.script(reply{status: 400, body: `{"error":{"message":"bad request for key ` + oaiKey + `","type":"invalid_request_error","param":null,"code":null}}`})
		_, err := e.openaiClient(e.bob).Chat.Completions.New(context.Background(), openaiParams("gpt-test"))
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.StatusCode != 400 || !strings.Contains(oe.Message, "[redacted]") {
			t.Errorf("%v", err)
		}
		noKey(t, "the error", err.Error()+oe.RawJSON())
	})
}

// TestClientHangsUp: a streaming caller that goes away after the first
// event is still metered for the whole answer.
func TestClientHangsUp(t *testing.T) {
	e := newEnv(t, nil)
	hold := make(chan struct{})
	e.up.script(reply{events: anthropicStream, hold: hold})
	ctx, cancel := context.WithCancel(context.Background())
	stream := e.anthropicClient(e.bob).Messages.NewStreaming(ctx, anthropicParams("claude-sonnet-4-5"))
	if !stream.Next() || stream.Current().Type != "message_start" {
		t.Fatalf("first event: %v", stream.Err())
	}
	cancel()
	stream.Close()
	close(hold)
	deadline := time.Now().Add(10 * time.Second)
	for len(e.transcript(e.bob)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the call was never recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkMetered(t, e.transcript(e.bob)[1], "claude-sonnet-4-5", anthWant)
}

// TestUnixSocket drives the proxy over the lab's Unix socket, as a sandbox
// without a network does, with the official SDK.
func TestUnixSocket(t *testing.T) {
	e := newEnv(t, nil)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.socket)
	}}}
	e.up.script(reply{events: anthropicStream})
	c := anthropic.NewClient(aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL("http://lab/v1/proxy/anthropic"),
		aoption.WithAPIKey(e.bob), aoption.WithMaxRetries(0), aoption.WithHTTPClient(hc))
	stream := c.Messages.NewStreaming(context.Background(), anthropicParams("claude-sonnet-4-5"))
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Content) != 2 || acc.Content[0].Text != "Let me look." {
		t.Errorf("accumulated: %s", acc.RawJSON())
	}
	checkMetered(t, e.transcript(e.bob)[1], "claude-sonnet-4-5", anthWant)

	resp, err := hc.Post("http://lab/v1/proxy/openai/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no key over the socket: %d", resp.StatusCode)
	}
}

// TestStreamBytes: a stream reaches the client byte for byte (pings
// included), but for the usage chunk the proxy asked for on its behalf.
func TestStreamBytes(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		path, body string
		events     []string
		want       string
	}{
		{"/v1/proxy/anthropic/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			anthropicStream, strings.Join(anthropicStream, "")},
		{"/v1/proxy/openai/v1/chat/completions", `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			openaiStream, strings.Join(openaiStream, "")},
		{"/v1/proxy/openai/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			openaiStream, strings.Join(openaiStream[:6], "") + openaiStream[7]},
	} {
		e.up.script(reply{events: tc.events})
		req, _ := http.NewRequest("POST", e.base+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+e.bob)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || string(b) != tc.want {
			t.Errorf("%s: %d %s\n%s\nwant\n%s", tc.path, resp.StatusCode, resp.Header, b, tc.want)
		}
	}
	if s := e.spend(e.bob); s.OutputTokens != anthWant.OutputTokens+2*oaiWant.OutputTokens {
		t.Errorf("spend %+v", s)
	}
}

// TestCountTokens passes count_tokens through without metering it.
func TestCountTokens(t *testing.T) {
	e := newEnv(t, nil)
	e.up.script(reply{status: 200, body: `{"input_tokens":42}`})
	n, err := e.anthropicClient(e.bob).Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model: "claude-sonnet-4-5", Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
	if err != nil {
		t.Fatal(err)
	}
	if n.InputTokens != 42 || e.up.requests()[0].path != "/anth/v1/messages/count_tokens" {
		t.Errorf("%+v %s", n, e.up.requests()[0].path)
	}
	if evs := e.transcript(e.bob); len(evs) != 0 {
		t.Errorf("count_tokens recorded %d events", len(evs))
	}
}

// TestLargeRequestClipped: a request over MaxRecord is forwarded whole and
// recorded as its head and tail.
func TestLargeRequestClipped(t *testing.T) {
	e := newEnv(t, nil)
	e.up.script(reply{status: 200, body: anthropicJSON})
	p := anthropicParams("claude-sonnet-4-5")
	p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(strings.Repeat("<&>", 100<<10) + "THE END"))}
	if _, err := e.anthropicClient(e.bob).Messages.New(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if n := len(e.up.requests()[0].body); n < 300<<10 {
		t.Errorf("upstream got %d bytes", n)
	}
	evs := e.transcript(e.bob)
	body := data(t, evs[0])["body"].(map[string]any)
	if body["clipped"] != true || !strings.Contains(body["tail"].(string), "THE END") || body["sha256"] == nil {
		t.Errorf("request event body: %.300v", body)
	}
	checkMetered(t, evs[1], "claude-sonnet-4-5", anthWant)
}

func TestOptionsFromEnv(t *testing.T) {
	prices := filepath.Join(t.TempDir(), "prices.json")
	os.WriteFile(prices, []byte(`{"qwen3": {"input": 0, "output": 0}}`), 0o600)
	env := map[string]string{EnvAnthropicKey: anthKey, EnvOpenAIURL: "http://127.0.0.1:8000/v1", EnvPrices: prices}
	o, err := OptionsFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.AnthropicKey != anthKey || o.OpenAIKey != "" || o.OpenAIURL != "http://127.0.0.1:8000/v1" {
		t.Errorf("%+v", o)
	}
	if _, ok := o.Prices.Lookup("qwen3-32b"); !ok {
		t.Error("AAR_PRICES not read")
	}
	if _, ok := o.Prices.Lookup("claude-sonnet-4-5"); !ok {
		t.Error("default prices lost")
	}
	env[EnvPrices] = filepath.Join(t.TempDir(), "missing.json")
	if _, err := OptionsFromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), EnvPrices) {
		t.Errorf("missing prices file: %v", err)
	}
	var logs syncBuffer
	h := FromEnv(nil, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(&logs, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/proxy/openai/v1/chat/completions", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"code":"not_configured"`) || !strings.Contains(logs.String(), EnvPrices) {
		t.Errorf("%d %s / %s", rec.Code, rec.Body, logs.String())
	}
	if _, err := New(nil, Options{AnthropicURL: "https://user:" + anthKey + "@example.com"}); err == nil || strings.Contains(err.Error(), anthKey) {
		t.Errorf("user info in a URL: %v", err)
	}
}
