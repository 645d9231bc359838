package llm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func newTestAnthropic(f *fakeAPI, retry RetryPolicy) *Anthropic {
	return NewAnthropic(AnthropicConfig{APIKey: testKey, BaseURL: f.srv.URL, HTTPClient: f.srv.Client(), Retry: retry})
}

// anthropicMessage is a Messages API response with the given content
// blocks, stop reason and usage.
func anthropicMessage(content, stop, usage string) string {
	return `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",` +
		`"content":[` + content + `],"stop_reason":"` + stop + `","stop_sequence":null,` +
		`"usage":` + usage + `}`
}

const anthropicUsage = `{"input_tokens":12,"output_tokens":7,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}`

func TestAnthropicText(t *testing.T) {
	f := newFakeAPI(t, jsonReply(anthropicMessage(`{"type":"text","text":"Hello, world."}`, "end_turn", anthropicUsage)))
	var s sleeps
	resp, err := newTestAnthropic(f, s.policy(3)).Complete(context.Background(), Request{
		Model:    "claude-sonnet-4-5",
		Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Say hello.")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Message.TextOf(); got != "Hello, world." {
		t.Errorf("text = %q", got)
	}
	if resp.Stop != StopEnd || resp.Attempts != 1 || resp.Model != "claude-sonnet-4-5-20250929" {
		t.Errorf("stop %q attempts %d model %q", resp.Stop, resp.Attempts, resp.Model)
	}
	if resp.Usage != (Usage{InputTokens: 12, OutputTokens: 7}) {
		t.Errorf("usage = %+v", resp.Usage)
	}

	req := f.last()
	if req.method != "POST" || req.path != "/v1/messages" {
		t.Errorf("request %s %s", req.method, req.path)
	}
	if req.header.Get("Authorization") != "Bearer "+testKey && req.header.Get("X-Api-Key") != testKey {
		t.Errorf("no credential in the request: %v", req.header)
	}
	if req.header.Get("Anthropic-Version") == "" {
		t.Error("no anthropic-version header")
	}
	body := req.decoded(t)
	if got := jsonPath(t, body, "max_tokens"); got != float64(DefaultMaxTokens) {
		t.Errorf("max_tokens = %v, want the default", got)
	}
	for _, k := range []string{"system", "tools", "thinking", "temperature", "stream"} {
		if _, ok := body[k]; ok {
			t.Errorf("%s sent for a plain request: %s", k, req.body)
		}
	}
	if got := jsonPath(t, body, "messages", 0, "content", 0, "text"); got != "Say hello." {
		t.Errorf("user text = %v", got)
	}
	if len(s.waits()) != 0 {
		t.Errorf("slept %v on success", s.waits())
	}
}

// TestAnthropicToolRoundTrip sends a conversation with a thinking block, a
// tool call and two results (one failed) under prompt caching, and reads
// back a tool call.
func TestAnthropicToolRoundTrip(t *testing.T) {
	f := newFakeAPI(t, jsonReply(anthropicMessage(
		`{"type":"text","text":"Let me read it."},`+
			`{"type":"tool_use","id":"toolu_02","name":"read_file","input":{"path":"notes.md","limit":10}}`,
		"tool_use",
		`{"input_tokens":20,"output_tokens":30,"cache_creation_input_tokens":100,"cache_read_input_tokens":900}`)))
	temp := 0.2
	schema := `{"type":"object","properties":{"path":{"type":"string"},"limit":{"type":"integer"}},"required":["path"],"additionalProperties":false}`
	req := Request{
		Model:  "claude-sonnet-4-5",
		System: "You are a careful researcher.",
		Tools: []Tool{
			{Name: "list_files", Description: "List files.", Schema: json.RawMessage(`{"type":"object"}`)},
			{Name: "read_file", Description: "Read a file.", Schema: json.RawMessage(schema)},
		},
		Messages: []Message{
			{Role: RoleUser, Parts: []Part{Text("Read the notes.")}},
			{Role: RoleAssistant, Parts: []Part{
				{Kind: PartThinking, Text: "The notes are in a file.", Signature: "sig-abc"},
				{Kind: PartThinking, Signature: "opaque-redacted", Redacted: true},
				Text("I will look."),
				{Kind: PartToolCall, CallID: "toolu_01", Name: "read_file", Input: json.RawMessage(`{"path":"missing.md"}`)},
				{Kind: PartToolCall, CallID: "toolu_00", Name: "list_files", Input: json.RawMessage(`"bad"`), InputError: "not an object"},
			}},
			{Role: RoleUser, Parts: []Part{
				ToolResult("toolu_01", "no such file", true),
				ToolResult("toolu_00", "notes.md", false),
			}},
		},
		MaxTokens:   1000,
		Temperature: &temp,
		Cache:       true,
	}
	resp, err := newTestAnthropic(f, RetryPolicy{}).Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}

	calls := resp.Message.ToolCalls()
	if len(calls) != 1 || calls[0].CallID != "toolu_02" || calls[0].Name != "read_file" || calls[0].InputError != "" {
		t.Fatalf("tool calls = %+v", calls)
	}
	var in struct {
		Path  string
		Limit int
	}
	if err := json.Unmarshal(calls[0].Input, &in); err != nil || in.Path != "notes.md" || in.Limit != 10 {
		t.Errorf("input = %s (%v)", calls[0].Input, err)
	}
	if resp.Stop != StopToolUse {
		t.Errorf("stop = %q", resp.Stop)
	}
	if want := (Usage{InputTokens: 20, OutputTokens: 30, CacheReadTokens: 900, CacheWriteTokens: 100}); resp.Usage != want {
		t.Errorf("usage = %+v, want %+v", resp.Usage, want)
	}

	sent := f.last()
	body := sent.decoded(t)
	// Cache breakpoints: system, last tool, last block of the last user turn.
	if got := jsonPath(t, body, "system", 0, "cache_control", "type"); got != "ephemeral" {
		t.Errorf("system cache_control = %v", got)
	}
	if got := jsonPath(t, body, "system", 0, "text"); got != req.System {
		t.Errorf("system = %v", got)
	}
	if got := jsonPath(t, body, "tools", 0, "cache_control"); got != nil {
		t.Errorf("first tool has cache_control %v", got)
	}
	if got := jsonPath(t, body, "tools", 1, "cache_control", "type"); got != "ephemeral" {
		t.Errorf("last tool cache_control = %v", got)
	}
	if got := jsonPath(t, body, "messages", 0, "content", 0, "cache_control"); got != nil {
		t.Errorf("first user turn has cache_control %v", got)
	}
	if got := jsonPath(t, body, "messages", 2, "content", 0, "cache_control"); got != nil {
		t.Errorf("first result has cache_control %v", got)
	}
	if got := jsonPath(t, body, "messages", 2, "content", 1, "cache_control", "type"); got != "ephemeral" {
		t.Errorf("last user block cache_control = %v", got)
	}
	// The schema goes out byte for byte, so the cached prefix is stable.
	if !strings.Contains(string(sent.body), `"input_schema":`+schema) {
		t.Errorf("schema not sent verbatim:\n%s", sent.body)
	}
	if got := jsonPath(t, body, "tools", 1, "description"); got != "Read a file." {
		t.Errorf("description = %v", got)
	}
	// The assistant turn: thinking echoed with its signature, redacted
	// thinking, text, tool calls (a bad input echoed as {}).
	asst := jsonPath(t, body, "messages", 1, "content").([]any)
	wantTypes := []string{"thinking", "redacted_thinking", "text", "tool_use", "tool_use"}
	for i, w := range wantTypes {
		if got := jsonPath(t, asst, i, "type"); got != w {
			t.Errorf("assistant block %d type = %v, want %s", i, got, w)
		}
	}
	if jsonPath(t, asst, 0, "signature") != "sig-abc" || jsonPath(t, asst, 0, "thinking") != "The notes are in a file." {
		t.Errorf("thinking block = %v", asst[0])
	}
	if jsonPath(t, asst, 1, "data") != "opaque-redacted" {
		t.Errorf("redacted thinking block = %v", asst[1])
	}
	if jsonPath(t, asst, 3, "input", "path") != "missing.md" || jsonPath(t, asst, 3, "id") != "toolu_01" {
		t.Errorf("tool_use block = %v", asst[3])
	}
	if in, _ := jsonPath(t, asst, 4, "input").(map[string]any); in == nil || len(in) != 0 {
		t.Errorf("bad input echoed as %v, want {}", jsonPath(t, asst, 4, "input"))
	}
	// Results: is_error only on the failed one.
	if jsonPath(t, body, "messages", 2, "content", 0, "type") != "tool_result" ||
		jsonPath(t, body, "messages", 2, "content", 0, "tool_use_id") != "toolu_01" ||
		jsonPath(t, body, "messages", 2, "content", 0, "is_error") != true ||
		jsonPath(t, body, "messages", 2, "content", 0, "content", 0, "text") != "no such file" {
		t.Errorf("failed result = %v", jsonPath(t, body, "messages", 2, "content", 0))
	}
	if got := jsonPath(t, body, "messages", 2, "content", 1, "is_error"); got != nil {
		t.Errorf("successful result has is_error %v", got)
	}
	if jsonPath(t, body, "temperature") != 0.2 || jsonPath(t, body, "max_tokens") != float64(1000) {
		t.Errorf("temperature %v max_tokens %v", body["temperature"], body["max_tokens"])
	}
	if _, ok := body["thinking"]; ok {
		t.Error("thinking sent without a budget")
	}
}

// anthropicStreamTool is a streamed answer with thinking, text and a tool
// call whose input arrives in pieces; input is the pieces.
func anthropicStreamTool(stop string, input ...string) reply {
	ev := []string{
		"message_start", `{"type":"message_start","message":{"id":"msg_s1","type":"message","role":"assistant","model":"claude-opus-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":50,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":40}}}`,
		"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
		"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"I should list "}}`,
		"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"the files."}}`,
		"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}`,
		"content_block_stop", `{"type":"content_block_stop","index":0}`,
		"ping", `{"type":"ping"}`,
		"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
		"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Listing."}}`,
		"content_block_stop", `{"type":"content_block_stop","index":1}`,
		"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_s1","name":"list_files","input":{}}}`,
	}
	for _, in := range input {
		b, _ := json.Marshal(in)
		ev = append(ev, "content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":`+string(b)+`}}`)
	}
	ev = append(ev,
		"content_block_stop", `{"type":"content_block_stop","index":2}`,
		"message_delta", `{"type":"message_delta","delta":{"stop_reason":"`+stop+`","stop_sequence":null},"usage":{"output_tokens":88}}`,
		"message_stop", `{"type":"message_stop"}`,
	)
	return sseReply(ev...)
}

func TestAnthropicStreamingThinkingAndTool(t *testing.T) {
	f := newFakeAPI(t, anthropicStreamTool("tool_use", `{"dir": `, `"src", "depth"`, `: 2}`))
	temp := 0.7
	resp, err := newTestAnthropic(f, RetryPolicy{}).Complete(context.Background(), Request{
		Model:          "claude-opus-4-5",
		Messages:       []Message{{Role: RoleUser, Parts: []Part{Text("What is in src?")}}},
		MaxTokens:      1000,
		ThinkingBudget: 2000,
		Temperature:    &temp,
	})
	if err != nil {
		t.Fatal(err)
	}
	body := f.last().decoded(t)
	if body["stream"] != true {
		t.Errorf("stream = %v, want true", body["stream"])
	}
	if jsonPath(t, body, "thinking", "type") != "enabled" || jsonPath(t, body, "thinking", "budget_tokens") != float64(2000) {
		t.Errorf("thinking = %v", body["thinking"])
	}
	if got := jsonPath(t, body, "max_tokens"); got != float64(3000) {
		t.Errorf("max_tokens = %v, want budget + MaxTokens", got)
	}
	if _, ok := body["temperature"]; ok {
		t.Error("temperature sent with thinking on")
	}

	parts := resp.Message.Parts
	if len(parts) != 3 {
		t.Fatalf("parts = %+v", parts)
	}
	if parts[0].Kind != PartThinking || parts[0].Text != "I should list the files." || parts[0].Signature != "EqQBCgIYAhIM" {
		t.Errorf("thinking = %+v", parts[0])
	}
	if parts[1].Kind != PartText || parts[1].Text != "Listing." {
		t.Errorf("text = %+v", parts[1])
	}
	call := parts[2]
	if call.Kind != PartToolCall || call.CallID != "toolu_s1" || call.Name != "list_files" || call.InputError != "" {
		t.Errorf("call = %+v", call)
	}
	var in map[string]any
	if err := json.Unmarshal(call.Input, &in); err != nil || in["dir"] != "src" || in["depth"] != float64(2) {
		t.Errorf("input = %s (%v)", call.Input, err)
	}
	if resp.Stop != StopToolUse {
		t.Errorf("stop = %q", resp.Stop)
	}
	if want := (Usage{InputTokens: 50, OutputTokens: 88, CacheReadTokens: 40}); resp.Usage != want {
		t.Errorf("usage = %+v, want %+v", resp.Usage, want)
	}
}

func TestAnthropicStreamsLongOutput(t *testing.T) {
	f := newFakeAPI(t, anthropicStreamTool("end_turn"))
	_, err := newTestAnthropic(f, RetryPolicy{}).Complete(context.Background(), Request{
		Model:     "claude-sonnet-4-5",
		Messages:  []Message{{Role: RoleUser, Parts: []Part{Text("Write a lot.")}}},
		MaxTokens: 32000,
	})
	if err != nil {
		t.Fatal(err)
	}
	body := f.last().decoded(t)
	if body["stream"] != true || body["max_tokens"] != float64(32000) {
		t.Errorf("stream %v max_tokens %v", body["stream"], body["max_tokens"])
	}
}

// TestAnthropicMalformedToolInput covers a streamed input cut off by
// max_tokens and a non-object input in a plain answer.
func TestAnthropicMalformedToolInput(t *testing.T) {
	t.Run("streamed", func(t *testing.T) {
		f := newFakeAPI(t, anthropicStreamTool("max_tokens", `{"dir": "sr`))
		resp, err := newTestAnthropic(f, RetryPolicy{}).Complete(context.Background(), Request{
			Model: "claude-opus-4-5", ThinkingBudget: 1024,
			Messages: []Message{{Role: RoleUser, Parts: []Part{Text("List.")}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		calls := resp.Message.ToolCalls()
		if len(calls) != 1 || calls[0].InputError == "" {
			t.Fatalf("calls = %+v, want an input error", calls)
		}
		var raw string
		if err := json.Unmarshal(calls[0].Input, &raw); err != nil || raw != `{"dir": "sr` {
			t.Errorf("input = %s, want the raw text as a JSON string", calls[0].Input)
		}
		if resp.Stop != StopMaxTokens {
			t.Errorf("stop = %q", resp.Stop)
		}
	})
	t.Run("plain", func(t *testing.T) {
		f := newFakeAPI(t, jsonReply(anthropicMessage(
			`{"type":"tool_use","id":"toolu_9","name":"read_file","input":"{\"path\": notes"}`, "tool_use", anthropicUsage)))
		resp, err := newTestAnthropic(f, RetryPolicy{}).Complete(context.Background(), Request{
			Model: "claude-sonnet-4-5", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Read.")}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		calls := resp.Message.ToolCalls()
		if len(calls) != 1 || calls[0].InputError == "" || !json.Valid(calls[0].Input) {
			t.Fatalf("calls = %+v, want an input error with valid JSON input", calls)
		}
	})
}

func TestAnthropicStopReasons(t *testing.T) {
	for _, tc := range []struct {
		name, content, stop string
		want                StopReason
		text                string
	}{
		{"refusal", ``, "refusal", StopRefusal, ""},
		{"refusal after text", `{"type":"text","text":"I can"}`, "refusal", StopRefusal, "I can"},
		{"max tokens", `{"type":"text","text":"The answer is"}`, "max_tokens", StopMaxTokens, "The answer is"},
		{"stop sequence", `{"type":"text","text":"done"}`, "stop_sequence", StopSequence, "done"},
		{"pause", `{"type":"text","text":"searching"}`, "pause_turn", StopPause, "searching"},
		{"context window", `{"type":"text","text":"x"}`, "model_context_window_exceeded", StopMaxTokens, "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := anthropicMessage(tc.content, tc.stop, anthropicUsage)
			if tc.stop == "refusal" {
				body = strings.Replace(body, `"stop_sequence":null`,
					`"stop_sequence":null,"stop_details":{"type":"refusal","category":"cyber","explanation":"declined"}`, 1)
			}
			f := newFakeAPI(t, jsonReply(body))
			resp, err := newTestAnthropic(f, RetryPolicy{}).Complete(context.Background(), Request{
				Model: "claude-sonnet-4-5", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Go.")}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Stop != tc.want || resp.Message.TextOf() != tc.text {
				t.Errorf("stop %q text %q, want %q %q", resp.Stop, resp.Message.TextOf(), tc.want, tc.text)
			}
		})
	}
}

// TestAnthropicErrorStorm answers 529, 429 and 503 before succeeding: the
// call must wait what each response asked for and count four attempts.
func TestAnthropicErrorStorm(t *testing.T) {
	overloaded := `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}`
	f := newFakeAPI(t,
		errorReply(529, overloaded, "Retry-After", "3"),
		errorReply(429, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, "Retry-After-Ms", "1500", "Retry-After", "2"),
		errorReply(503, `<html>upstream unavailable</html>`),
		jsonReply(anthropicMessage(`{"type":"text","text":"finally"}`, "end_turn", anthropicUsage)),
	)
	var s sleeps
	resp, err := newTestAnthropic(f, s.policy(6)).Complete(context.Background(), Request{
		Model: "claude-sonnet-4-5", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Hi.")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Attempts != 4 || len(f.requests()) != 4 || resp.Message.TextOf() != "finally" {
		t.Errorf("attempts %d, requests %d, text %q", resp.Attempts, len(f.requests()), resp.Message.TextOf())
	}
	// retry-after: 3 s; retry-after-ms wins over retry-after; then the
	// jittered backoff of the third attempt: 0.5 × 4 s.
	want := []time.Duration{3 * time.Second, 1500 * time.Millisecond, 2 * time.Second}
	if got := s.waits(); !equalDurations(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

func TestAnthropicStreamErrorEventRetried(t *testing.T) {
	f := newFakeAPI(t,
		sseReply(
			"message_start", `{"type":"message_start","message":{"id":"msg_x","type":"message","role":"assistant","model":"claude-opus-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}`,
			"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		),
		anthropicStreamTool("end_turn"),
	)
	var s sleeps
	resp, err := newTestAnthropic(f, s.policy(3)).Complete(context.Background(), Request{
		Model: "claude-opus-4-5", ThinkingBudget: 2048,
		Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Go.")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Attempts != 2 || len(s.waits()) != 1 {
		t.Errorf("attempts %d waits %v", resp.Attempts, s.waits())
	}
}

func TestAnthropicTruncatedStreamRetried(t *testing.T) {
	f := newFakeAPI(t,
		sseReply("message_start", `{"type":"message_start","message":{"id":"msg_x","type":"message","role":"assistant","model":"claude-opus-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}`),
		anthropicStreamTool("end_turn"),
	)
	var s sleeps
	resp, err := newTestAnthropic(f, s.policy(3)).Complete(context.Background(), Request{
		Model: "claude-opus-4-5", ThinkingBudget: 2048,
		Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Go.")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Attempts != 2 {
		t.Errorf("attempts = %d, want 2", resp.Attempts)
	}
}

func TestAnthropicConnectionErrorRetried(t *testing.T) {
	f := newFakeAPI(t,
		reply{hangUp: true},
		jsonReply(anthropicMessage(`{"type":"text","text":"back"}`, "end_turn", anthropicUsage)),
	)
	var s sleeps
	resp, err := newTestAnthropic(f, s.policy(3)).Complete(context.Background(), Request{
		Model: "claude-sonnet-4-5", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Hi.")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Attempts != 2 || resp.Message.TextOf() != "back" {
		t.Errorf("attempts %d text %q", resp.Attempts, resp.Message.TextOf())
	}
	if w := s.waits(); len(w) != 1 || w[0] != 500*time.Millisecond {
		t.Errorf("waits = %v, want one jittered 0.5 s", w)
	}
}

func TestAnthropicFinalErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replies  []reply
		attempts int
		want     APIError
	}{
		{
			name: "400 not retried",
			replies: []reply{errorReply(400,
				`{"type":"error","error":{"type":"invalid_request_error","message":"messages.0: field required"},"request_id":"req_011"}`)},
			attempts: 1,
			want:     APIError{Backend: "anthropic", Status: 400, Type: "invalid_request_error", Message: "messages.0: field required"},
		},
		{
			name: "401 echoing the key",
			replies: []reply{errorReply(401,
				`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key `+testKey+`"}}`)},
			attempts: 1,
			want:     APIError{Backend: "anthropic", Status: 401, Type: "authentication_error", Message: "invalid x-api-key [REDACTED]"},
		},
		{
			name: "500 until the attempts run out",
			replies: []reply{
				errorReply(500, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`),
				errorReply(500, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`),
				errorReply(500, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`),
			},
			attempts: 3,
			want:     APIError{Backend: "anthropic", Status: 500, Type: "api_error", Message: "Internal server error"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, tc.replies...)
			var s sleeps
			_, err := newTestAnthropic(f, s.policy(3)).Complete(context.Background(), Request{
				Model: "claude-sonnet-4-5", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Hi.")}}},
			})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if *ae != tc.want {
				t.Errorf("error = %+v, want %+v", *ae, tc.want)
			}
			if n := len(f.requests()); n != tc.attempts {
				t.Errorf("requests = %d, want %d", n, tc.attempts)
			}
			if len(f.requests()) > 0 && f.requests()[0].header.Get("Authorization") == "" {
				t.Error("the request carried no credential")
			}
			noKey(t, "error", err.Error())
			noKey(t, "error fields", ae.Type+ae.Message)
		})
	}
}

func TestAnthropicContextCanceledDuringBackoff(t *testing.T) {
	f := newFakeAPI(t, errorReply(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	ctx, cancel := context.WithCancel(context.Background())
	retry := RetryPolicy{Sleep: func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }}
	_, err := newTestAnthropic(f, retry).Complete(ctx, Request{
		Model: "claude-sonnet-4-5", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Hi.")}}},
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestAnthropicRejectsBadRequests(t *testing.T) {
	a := NewAnthropic(AnthropicConfig{APIKey: testKey, BaseURL: "http://127.0.0.1:1"})
	for name, req := range map[string]Request{
		"schema not an object": {Model: "m", Tools: []Tool{{Name: "t", Schema: json.RawMessage(`[1]`)}}},
		"call in a user turn":  {Model: "m", Messages: []Message{{Role: RoleUser, Parts: []Part{{Kind: PartToolCall, CallID: "c"}}}}},
		"unknown role":         {Model: "m", Messages: []Message{{Role: "system", Parts: []Part{Text("x")}}}},
	} {
		if _, err := a.Complete(context.Background(), req); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
