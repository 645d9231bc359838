package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
)

// AnthropicConfig configures an Anthropic backend. Nothing is read from
// the environment: the caller passes the key and any base URL.
type AnthropicConfig struct {
	// APIKey is sent with every request and never appears in an error.
	APIKey string
	// BaseURL is the API's host root (default https://api.anthropic.com);
	// set it for tests and proxies.
	BaseURL string
	// HTTPClient makes the requests (default http.DefaultClient).
	HTTPClient *http.Client
	// Retry says how transient errors are retried.
	Retry RetryPolicy
}

// Anthropic is a Backend that speaks Anthropic's Messages API through the
// official Go SDK, with the SDK's own retries off and RetryPolicy's on.
type Anthropic struct {
	cfg    AnthropicConfig
	client anthropic.Client
}

var _ Backend = (*Anthropic)(nil)

// DefaultMaxTokens is the output bound of a request that sets none, in
// every backend.
const DefaultMaxTokens = 4096

// Limits of Anthropic requests.
const (
	// anthropicStreamAbove is the max_tokens above which a call streams;
	// the SDK refuses non-streaming calls that may outlast ten minutes.
	anthropicStreamAbove = 16000
	// minThinkingBudget is the smallest budget_tokens the API accepts.
	minThinkingBudget = 1024
)

// NewAnthropic returns an Anthropic backend.
func NewAnthropic(cfg AnthropicConfig) *Anthropic {
	opts := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithMaxRetries(0),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	return &Anthropic{cfg: cfg, client: anthropic.NewClient(opts...)}
}

// Name returns "anthropic".
func (a *Anthropic) Name() string { return "anthropic" }

// Complete makes one Messages call, streaming it when the output may be
// long (MaxTokens above 16000, or extended thinking on). With thinking on,
// Temperature is not sent (the API refuses it), the budget is at least
// 1024 tokens, and max_tokens grows by the budget when it would not
// exceed it. With Cache, the system prompt, the last tool and the last
// block of the last user turn are marked as cache breakpoints.
func (a *Anthropic) Complete(ctx context.Context, req Request) (*Response, error) {
	params, opts, err := anthropicParams(req)
	if err != nil {
		return nil, fmt.Errorf("anthropic: request for %s: %w", req.Model, err)
	}
	stream := req.ThinkingBudget > 0 || params.MaxTokens > anthropicStreamAbove
	if !stream {
		if _, err := anthropic.CalculateNonStreamingTimeout(int(params.MaxTokens), params.Model, nil); err != nil {
			stream = true // a model with a lower non-streaming limit
		}
	}
	var (
		msg    *anthropic.Message
		inputs map[int64]string
	)
	attempts, err := a.cfg.Retry.run(ctx, func(ctx context.Context, x *exchange) error {
		o := append(slices.Clip(opts), option.WithMiddleware(x.capture))
		var err error
		if stream {
			msg, inputs, err = a.stream(ctx, params, o)
		} else {
			msg, err = a.client.Messages.New(ctx, params, o...)
		}
		return err
	}, a.classify)
	if err != nil {
		return nil, wrapFinal("anthropic", err)
	}
	resp := anthropicResponse(msg, inputs)
	resp.Attempts = attempts
	return resp, nil
}

// stream makes a streaming call and accumulates it into a message. The
// SDK's accumulator replaces a tool input that is not valid JSON with {},
// so the raw input_json_delta text of each block is kept beside it.
func (a *Anthropic) stream(ctx context.Context, params anthropic.MessageNewParams, opts []option.RequestOption) (*anthropic.Message, map[int64]string, error) {
	s := a.client.Messages.NewStreaming(ctx, params, opts...)
	defer s.Close()
	var (
		msg    anthropic.Message
		inputs = map[int64]string{}
		done   bool
	)
	for s.Next() {
		ev := s.Current()
		if err := msg.Accumulate(ev); err != nil {
			return nil, nil, fmt.Errorf("accumulate %s event: %w", ev.Type, err)
		}
		switch ev.Type {
		case "content_block_delta":
			if ev.Delta.Type == "input_json_delta" {
				inputs[ev.Index] += ev.Delta.PartialJSON
			}
		case "message_stop":
			done = true
		}
	}
	if err := s.Err(); err != nil {
		return nil, nil, err
	}
	if !done {
		return nil, nil, errIncompleteStream
	}
	return &msg, inputs, nil
}

// classify judges a failed attempt.
func (a *Anthropic) classify(err error, x *exchange) failure {
	var ae *anthropic.Error
	if !errors.As(err, &ae) {
		return otherFailure("anthropic", err, x, a.cfg.APIKey)
	}
	status, typ, msg := ae.StatusCode, string(ae.Type()), ae.Message
	if typ == "" || msg == "" {
		t, m := parseErrorBody(x.body)
		if len(x.body) == 0 {
			t, m = parseErrorBody([]byte(ae.RawJSON()))
		}
		typ, msg = orElse(typ, t), orElse(msg, m)
	}
	if status < 400 {
		// An error event inside a stream that began with 200.
		status = anthropicStatus[typ]
	}
	h := x.header
	if ae.Response != nil {
		h = ae.Response.Header
	}
	return httpFailure("anthropic", status, typ, msg, h, a.cfg.APIKey)
}

// anthropicStatus is the HTTP status of each Anthropic error type, for
// errors that arrive as stream events.
var anthropicStatus = map[string]int{
	"invalid_request_error": 400,
	"authentication_error":  401,
	"billing_error":         402,
	"permission_error":      403,
	"not_found_error":       404,
	"request_too_large":     413,
	"rate_limit_error":      429,
	"api_error":             500,
	"timeout_error":         504,
	"overloaded_error":      529,
}

// anthropicParams maps a Request to Messages API parameters and the
// per-call options for what the SDK has no field for.
func anthropicParams(req Request) (anthropic.MessageNewParams, []option.RequestOption, error) {
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = DefaultMaxTokens
	}
	p := anthropic.MessageNewParams{Model: anthropic.Model(req.Model)}
	var opts []option.RequestOption
	if req.ThinkingBudget > 0 {
		budget := max(req.ThinkingBudget, minThinkingBudget)
		if maxTokens <= budget { // max_tokens counts the thinking too
			maxTokens += budget
		}
		p.Thinking = anthropic.ThinkingConfigParamOfEnabled(int64(budget))
	} else if req.Temperature != nil {
		// The v2 SDK has no temperature field; the API still takes it.
		opts = append(opts, option.WithJSONSet("temperature", *req.Temperature))
	}
	p.MaxTokens = int64(maxTokens)
	if req.System != "" {
		sys := anthropic.TextBlockParam{Text: req.System}
		if req.Cache {
			sys.CacheControl = anthropic.NewCacheControlEphemeralParam()
		}
		p.System = []anthropic.TextBlockParam{sys}
	}
	for i, t := range req.Tools {
		schema, err := objectSchema(t.Schema)
		if err != nil {
			return p, nil, fmt.Errorf("tool %s: %w", t.Name, err)
		}
		tp := &anthropic.ToolParam{
			Name: t.Name,
			// The raw schema goes out byte for byte: the SDK writes extra
			// schema keys in map order, which would break the cached prefix.
			InputSchema: param.Override[anthropic.ToolInputSchemaParam](schema),
		}
		if t.Description != "" {
			tp.Description = anthropic.String(t.Description)
		}
		if req.Cache && i == len(req.Tools)-1 {
			tp.CacheControl = anthropic.NewCacheControlEphemeralParam()
		}
		p.Tools = append(p.Tools, anthropic.ToolUnionParam{OfTool: tp})
	}
	lastUser := -1
	for i, m := range req.Messages {
		blocks, err := anthropicBlocks(m)
		if err != nil {
			return p, nil, fmt.Errorf("message %d: %w", i, err)
		}
		if len(blocks) == 0 {
			continue
		}
		switch m.Role {
		case RoleUser:
			lastUser = len(p.Messages)
			p.Messages = append(p.Messages, anthropic.NewUserMessage(blocks...))
		case RoleAssistant:
			p.Messages = append(p.Messages, anthropic.NewAssistantMessage(blocks...))
		default:
			return p, nil, fmt.Errorf("message %d: unknown role %q", i, m.Role)
		}
	}
	if req.Cache && lastUser >= 0 {
		blocks := p.Messages[lastUser].OfUser.Content
		if cc := blocks[len(blocks)-1].GetCacheControl(); cc != nil {
			*cc = anthropic.NewCacheControlEphemeralParam()
		}
	}
	return p, opts, nil
}

// anthropicBlocks maps a message's parts to content blocks. Empty text is
// dropped (the API refuses it).
func anthropicBlocks(m Message) ([]anthropic.ContentBlockParamUnion, error) {
	var out []anthropic.ContentBlockParamUnion
	for j, part := range m.Parts {
		if ok := partAllowed(m.Role, part.Kind); !ok {
			return nil, fmt.Errorf("part %d: %s part in a %s message", j, part.Kind, m.Role)
		}
		switch part.Kind {
		case PartText:
			if part.Text != "" {
				out = append(out, anthropic.NewTextBlock(part.Text))
			}
		case PartThinking:
			if part.Redacted {
				out = append(out, anthropic.NewRedactedThinkingBlock(part.Signature))
			} else {
				out = append(out, anthropic.NewThinkingBlock(part.Signature, part.Text))
			}
		case PartToolCall:
			out = append(out, anthropic.ContentBlockParamUnion{OfToolUse: &anthropic.ToolUseBlockParam{
				ID: part.CallID, Name: part.Name, Input: echoInput(part),
			}})
		case PartToolResult:
			tr := &anthropic.ToolResultBlockParam{ToolUseID: part.CallID}
			if part.Text != "" {
				tr.Content = []anthropic.ToolResultBlockParamContentUnion{{OfText: &anthropic.TextBlockParam{Text: part.Text}}}
			}
			if part.IsError {
				tr.IsError = anthropic.Bool(true)
			}
			out = append(out, anthropic.ContentBlockParamUnion{OfToolResult: tr})
		default:
			return nil, fmt.Errorf("part %d: unknown kind %q", j, part.Kind)
		}
	}
	return out, nil
}

// partAllowed reports whether a part of kind k may appear in a message of
// role r: results from the user, calls and thinking from the assistant.
func partAllowed(r Role, k PartKind) bool {
	switch k {
	case PartToolResult:
		return r == RoleUser
	case PartToolCall, PartThinking:
		return r == RoleAssistant
	}
	return true
}

// echoInput is a tool call's input as sent back to a provider: {} when the
// model's input was not a JSON object, since the wire takes only objects.
func echoInput(p Part) json.RawMessage {
	if p.InputError != "" || !isObject(p.Input) {
		return json.RawMessage(`{}`)
	}
	return p.Input
}

// objectSchema checks that a tool's schema is a JSON object ({"type":
// "object"} when empty) and returns it compacted.
func objectSchema(s json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(s)) == 0 {
		return json.RawMessage(`{"type":"object"}`), nil
	}
	if !isObject(s) {
		return nil, errors.New("input schema is not a JSON object")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, s); err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	return b.Bytes(), nil
}

// isObject reports whether raw is a valid JSON object.
func isObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}

// toolInput checks a model's tool input: a valid JSON object passes as it
// is; anything else comes back as a JSON string of the raw text with the
// reason in InputError.
func toolInput(raw string) (json.RawMessage, string) {
	trimmed := strings.TrimSpace(raw)
	if trimmed == "" {
		return json.RawMessage(`{}`), ""
	}
	if isObject([]byte(trimmed)) {
		return json.RawMessage(trimmed), ""
	}
	quoted, _ := json.Marshal(raw)
	if json.Valid([]byte(trimmed)) {
		return quoted, "tool input is JSON but not an object"
	}
	var v any
	err := json.Unmarshal([]byte(trimmed), &v)
	return quoted, "tool input is not valid JSON: " + err.Error()
}

// anthropicResponse maps a message to a Response. inputs holds the raw
// streamed input of tool_use blocks by index (nil when not streamed).
func anthropicResponse(m *anthropic.Message, inputs map[int64]string) *Response {
	r := &Response{
		Message: Message{Role: RoleAssistant},
		Stop:    anthropicStop(m.StopReason),
		Model:   string(m.Model),
		Usage: Usage{
			InputTokens:      m.Usage.InputTokens,
			OutputTokens:     m.Usage.OutputTokens,
			CacheReadTokens:  m.Usage.CacheReadInputTokens,
			CacheWriteTokens: m.Usage.CacheCreationInputTokens,
		},
	}
	for i, b := range m.Content {
		switch b.Type {
		case "text":
			r.Message.Parts = append(r.Message.Parts, Text(b.Text))
		case "thinking":
			r.Message.Parts = append(r.Message.Parts, Part{Kind: PartThinking, Text: b.Thinking, Signature: b.Signature})
		case "redacted_thinking":
			r.Message.Parts = append(r.Message.Parts, Part{Kind: PartThinking, Signature: b.Data, Redacted: true})
		case "tool_use":
			raw, streamed := inputs[int64(i)]
			if !streamed {
				raw = string(b.Input)
			}
			in, bad := toolInput(raw)
			r.Message.Parts = append(r.Message.Parts, Part{Kind: PartToolCall, CallID: b.ID, Name: b.Name, Input: in, InputError: bad})
		}
	}
	return r
}

// anthropicStop maps a stop_reason.
func anthropicStop(s anthropic.StopReason) StopReason {
	switch s {
	case anthropic.StopReasonEndTurn:
		return StopEnd
	case anthropic.StopReasonToolUse:
		return StopToolUse
	case anthropic.StopReasonMaxTokens, anthropic.StopReasonModelContextWindowExceeded:
		return StopMaxTokens
	case anthropic.StopReasonStopSequence:
		return StopSequence
	case anthropic.StopReasonRefusal:
		return StopRefusal
	case anthropic.StopReasonPauseTurn:
		return StopPause
	}
	return StopOther
}

// wrapFinal names the backend on a final error that is not an APIError
// (the caller's context ending), keeping it matchable with errors.Is.
func wrapFinal(backend string, err error) error {
	var ae *APIError
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("%s: %w", backend, err)
}

// orElse returns a unless it is empty, else b.
func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
