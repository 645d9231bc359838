package llm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// newTestOpenAI points a backend at f under the /v1 prefix, as vLLM,
// Ollama and llama.cpp serve it.
func newTestOpenAI(f *fakeAPI, key string, retry RetryPolicy) *OpenAI {
	return NewOpenAI(OpenAIConfig{APIKey: key, BaseURL: f.srv.URL + "/v1", HTTPClient: f.srv.Client(), Retry: retry})
}

// chatCompletion is a Chat Completions response with one choice.
func chatCompletion(message, finish, usage string) string {
	return `{"id":"chatcmpl-1","object":"chat.completion","created":1764000000,"model":"qwen3-32b",` +
		`"choices":[{"index":0,"message":` + message + `,"logprobs":null,"finish_reason":"` + finish + `"}],` +
		`"usage":` + usage + `}`
}

const openaiUsage = `{"prompt_tokens":30,"completion_tokens":9,"total_tokens":39}`

func TestOpenAIText(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "env-key-must-not-be-sent")
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	f := newFakeAPI(t, jsonReply(chatCompletion(`{"role":"assistant","content":"Hello.","refusal":null}`, "stop", openaiUsage)))
	resp, err := newTestOpenAI(f, "", RetryPolicy{}).Complete(context.Background(), Request{
		Model:    "qwen3-32b",
		Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Say hello.")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.TextOf() != "Hello." || resp.Stop != StopEnd || resp.Attempts != 1 || resp.Model != "qwen3-32b" {
		t.Errorf("response = %+v", resp)
	}
	if resp.Usage != (Usage{InputTokens: 30, OutputTokens: 9}) {
		t.Errorf("usage = %+v", resp.Usage)
	}
	req := f.last()
	if req.path != "/v1/chat/completions" {
		t.Errorf("path = %s, want the /v1 prefix kept", req.path)
	}
	if h := req.header.Get("Authorization"); h != "" {
		t.Errorf("Authorization = %q with no key configured", h)
	}
	body := req.decoded(t)
	if body["max_tokens"] != float64(DefaultMaxTokens) || body["model"] != "qwen3-32b" {
		t.Errorf("max_tokens %v model %v", body["max_tokens"], body["model"])
	}
	for _, k := range []string{"tools", "temperature", "max_completion_tokens", "stream"} {
		if _, ok := body[k]; ok {
			t.Errorf("%s sent for a plain request", k)
		}
	}
}

func TestOpenAIToolRoundTrip(t *testing.T) {
	f := newFakeAPI(t, jsonReply(chatCompletion(
		`{"role":"assistant","content":null,"refusal":null,"tool_calls":[`+
			`{"id":"call_2","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"notes.md\",\"limit\":10}"}},`+
			`{"id":"call_3","type":"function","function":{"name":"list_files","arguments":""}}]}`,
		"tool_calls",
		`{"prompt_tokens":1200,"completion_tokens":40,"total_tokens":1240,"prompt_tokens_details":{"cached_tokens":1024}}`)))
	temp := 0.3
	schema := `{"type":"object","properties":{"path":{"type":"string"},"limit":{"type":"integer"}},"required":["path"]}`
	resp, err := newTestOpenAI(f, testKey, RetryPolicy{}).Complete(context.Background(), Request{
		Model:  "qwen3-32b",
		System: "You are a careful researcher.",
		Tools:  []Tool{{Name: "read_file", Description: "Read a file.", Schema: json.RawMessage(schema)}},
		Messages: []Message{
			{Role: RoleUser, Parts: []Part{Text("Read the notes.")}},
			{Role: RoleAssistant, Parts: []Part{
				{Kind: PartThinking, Text: "hidden"},
				Text("Looking."),
				{Kind: PartToolCall, CallID: "call_1", Name: "read_file", Input: json.RawMessage(`{"path":"missing.md"}`)},
				{Kind: PartToolCall, CallID: "call_0", Name: "read_file", Input: json.RawMessage(`"{oops"`), InputError: "bad"},
			}},
			{Role: RoleUser, Parts: []Part{
				ToolResult("call_1", "no such file", true),
				ToolResult("call_0", "fine", false),
				Text("Try notes.md."),
			}},
		},
		MaxTokens:   800,
		Temperature: &temp,
		Cache:       true,
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.Message.ToolCalls()
	if len(calls) != 2 || calls[0].CallID != "call_2" || calls[0].Name != "read_file" || calls[0].InputError != "" {
		t.Fatalf("calls = %+v", calls)
	}
	var in map[string]any
	if err := json.Unmarshal(calls[0].Input, &in); err != nil || in["path"] != "notes.md" || in["limit"] != float64(10) {
		t.Errorf("input = %s (%v)", calls[0].Input, err)
	}
	if string(calls[1].Input) != `{}` || calls[1].InputError != "" {
		t.Errorf("empty arguments = %s %q, want {}", calls[1].Input, calls[1].InputError)
	}
	if resp.Stop != StopToolUse {
		t.Errorf("stop = %q", resp.Stop)
	}
	if want := (Usage{InputTokens: 176, OutputTokens: 40, CacheReadTokens: 1024}); resp.Usage != want {
		t.Errorf("usage = %+v, want %+v", resp.Usage, want)
	}

	sent := f.last()
	if sent.header.Get("Authorization") != "Bearer "+testKey {
		t.Errorf("Authorization = %q", sent.header.Get("Authorization"))
	}
	body := sent.decoded(t)
	if body["max_tokens"] != float64(800) || body["temperature"] != 0.3 {
		t.Errorf("max_tokens %v temperature %v", body["max_tokens"], body["temperature"])
	}
	msgs := body["messages"].([]any)
	roles := []string{"system", "user", "assistant", "tool", "tool", "user"}
	if len(msgs) != len(roles) {
		t.Fatalf("messages = %v", msgs)
	}
	for i, r := range roles {
		if got := jsonPath(t, msgs, i, "role"); got != r {
			t.Errorf("message %d role = %v, want %s", i, got, r)
		}
	}
	if jsonPath(t, msgs, 0, "content") != "You are a careful researcher." {
		t.Errorf("system = %v", msgs[0])
	}
	if jsonPath(t, msgs, 2, "content") != "Looking." {
		t.Errorf("assistant content = %v (thinking must not be sent)", jsonPath(t, msgs, 2, "content"))
	}
	if jsonPath(t, msgs, 2, "tool_calls", 0, "id") != "call_1" ||
		jsonPath(t, msgs, 2, "tool_calls", 0, "type") != "function" ||
		jsonPath(t, msgs, 2, "tool_calls", 0, "function", "name") != "read_file" ||
		jsonPath(t, msgs, 2, "tool_calls", 0, "function", "arguments") != `{"path":"missing.md"}` {
		t.Errorf("tool call = %v", jsonPath(t, msgs, 2, "tool_calls", 0))
	}
	if got := jsonPath(t, msgs, 2, "tool_calls", 1, "function", "arguments"); got != `{}` {
		t.Errorf("bad arguments echoed as %v, want {}", got)
	}
	if jsonPath(t, msgs, 3, "tool_call_id") != "call_1" || jsonPath(t, msgs, 3, "content") != "ERROR: no such file" {
		t.Errorf("failed result = %v", msgs[3])
	}
	if jsonPath(t, msgs, 4, "content") != "fine" || jsonPath(t, msgs, 5, "content") != "Try notes.md." {
		t.Errorf("result and text = %v %v", msgs[4], msgs[5])
	}
	if jsonPath(t, body, "tools", 0, "type") != "function" ||
		jsonPath(t, body, "tools", 0, "function", "name") != "read_file" ||
		jsonPath(t, body, "tools", 0, "function", "description") != "Read a file." ||
		jsonPath(t, body, "tools", 0, "function", "parameters", "required", 0) != "path" ||
		jsonPath(t, body, "tools", 0, "function", "parameters", "properties", "limit", "type") != "integer" {
		t.Errorf("tool = %v", jsonPath(t, body, "tools", 0))
	}
	// Nested schema keys keep their order.
	if !strings.Contains(string(sent.body), `"properties":{"path":{"type":"string"},"limit":{"type":"integer"}}`) {
		t.Errorf("schema properties reordered:\n%s", sent.body)
	}
}

func TestOpenAIMalformedArguments(t *testing.T) {
	f := newFakeAPI(t, jsonReply(chatCompletion(
		`{"role":"assistant","content":"","tool_calls":[{"id":"call_9","type":"function","function":{"name":"read_file","arguments":"{\"path\": \"notes.md\""}}]}`,
		"tool_calls", openaiUsage)))
	resp, err := newTestOpenAI(f, testKey, RetryPolicy{}).Complete(context.Background(), Request{
		Model: "qwen3-32b", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Read.")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.Message.ToolCalls()
	if len(calls) != 1 || calls[0].InputError == "" {
		t.Fatalf("calls = %+v, want an input error", calls)
	}
	var raw string
	if err := json.Unmarshal(calls[0].Input, &raw); err != nil || raw != `{"path": "notes.md"` {
		t.Errorf("input = %s, want the raw arguments as a JSON string", calls[0].Input)
	}
}

func TestOpenAIFinishReasons(t *testing.T) {
	for _, tc := range []struct {
		name, message, finish string
		want                  StopReason
		text                  string
	}{
		{"length", `{"role":"assistant","content":"The answer is"}`, "length", StopMaxTokens, "The answer is"},
		{"content filter", `{"role":"assistant","content":""}`, "content_filter", StopRefusal, ""},
		{"refusal field", `{"role":"assistant","content":null,"refusal":"I can't help with that."}`, "stop", StopRefusal, "I can't help with that."},
		{"tool calls finished with stop", `{"role":"assistant","content":"","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}`, "stop", StopToolUse, ""},
		{"unknown", `{"role":"assistant","content":"x"}`, "abort", StopOther, "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, jsonReply(chatCompletion(tc.message, tc.finish, openaiUsage)))
			resp, err := newTestOpenAI(f, testKey, RetryPolicy{}).Complete(context.Background(), Request{
				Model: "qwen3-32b", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Go.")}}},
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

func TestOpenAIReasoningContent(t *testing.T) {
	f := newFakeAPI(t, jsonReply(chatCompletion(
		`{"role":"assistant","content":"42","reasoning_content":"Six times seven."}`, "stop", openaiUsage)))
	resp, err := newTestOpenAI(f, "", RetryPolicy{}).Complete(context.Background(), Request{
		Model: "qwen3-32b", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("6*7?")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Message.Parts
	if len(p) != 2 || p[0].Kind != PartThinking || p[0].Text != "Six times seven." || p[1].Text != "42" {
		t.Errorf("parts = %+v", p)
	}
}

func TestOpenAIErrorStorm(t *testing.T) {
	f := newFakeAPI(t,
		errorReply(429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			"Retry-After", "4"),
		errorReply(503, `{"error":{"message":"The server is overloaded","type":"server_error"}}`,
			"Retry-After", time.Now().Add(time.Hour).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")),
		errorReply(502, `bad gateway`),
		jsonReply(chatCompletion(`{"role":"assistant","content":"ok"}`, "stop", openaiUsage)),
	)
	var s sleeps
	resp, err := newTestOpenAI(f, testKey, s.policy(6)).Complete(context.Background(), Request{
		Model: "gpt-5", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Hi.")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Attempts != 4 || len(f.requests()) != 4 {
		t.Errorf("attempts %d requests %d", resp.Attempts, len(f.requests()))
	}
	w := s.waits()
	if len(w) != 3 || w[0] != 4*time.Second || w[1] != MaxRetryAfter || w[2] != 2*time.Second {
		t.Errorf("waits = %v, want [4s %v 2s]", w, MaxRetryAfter)
	}
}

func TestOpenAIFinalErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply reply
		want  APIError
	}{
		{
			name:  "openai 400",
			reply: errorReply(400, `{"error":{"message":"Invalid 'messages': empty array.","type":"invalid_request_error","param":"messages","code":"empty_array"}}`),
			want:  APIError{Backend: "openai", Status: 400, Type: "invalid_request_error", Message: "Invalid 'messages': empty array."},
		},
		{
			name:  "vllm top-level error",
			reply: errorReply(400, `{"object":"error","message":"This model's maximum context length is 32768 tokens.","type":"BadRequestError","param":null,"code":400}`),
			want:  APIError{Backend: "openai", Status: 400, Type: "BadRequestError", Message: "This model's maximum context length is 32768 tokens."},
		},
		{
			name:  "ollama string error",
			reply: errorReply(404, `{"error":"model \"llama9\" not found, try pulling it first"}`),
			want:  APIError{Backend: "openai", Status: 404, Type: "not_found", Message: `model "llama9" not found, try pulling it first`},
		},
		{
			name:  "401 echoing the key",
			reply: errorReply(401, `{"error":{"message":"Incorrect API key provided: `+testKey+`.","type":"invalid_request_error","code":"invalid_api_key"}}`),
			want:  APIError{Backend: "openai", Status: 401, Type: "invalid_request_error", Message: "Incorrect API key provided: [REDACTED]."},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, tc.reply)
			var s sleeps
			_, err := newTestOpenAI(f, testKey, s.policy(3)).Complete(context.Background(), Request{
				Model: "m", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Hi.")}}},
			})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if *ae != tc.want {
				t.Errorf("error = %+v, want %+v", *ae, tc.want)
			}
			if n := len(f.requests()); n != 1 || len(s.waits()) != 0 {
				t.Errorf("requests %d waits %v: a final error was retried", n, s.waits())
			}
			noKey(t, "error", err.Error())
		})
	}
}

func TestOpenAINoChoices(t *testing.T) {
	f := newFakeAPI(t, jsonReply(`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[]}`))
	_, err := newTestOpenAI(f, testKey, RetryPolicy{}).Complete(context.Background(), Request{
		Model: "m", Messages: []Message{{Role: RoleUser, Parts: []Part{Text("Hi.")}}},
	})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 200 || ae.Type != "invalid_response" {
		t.Errorf("err = %v, want an invalid_response APIError", err)
	}
}
