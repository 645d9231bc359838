package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// OpenAIConfig configures an OpenAI-compatible backend: OpenAI itself or a
// local server (vLLM, Ollama, llama.cpp) that serves Chat Completions.
type OpenAIConfig struct {
	// APIKey is sent as a bearer token when set (local servers often need
	// none) and never appears in an error. It replaces OPENAI_API_KEY.
	APIKey string
	// BaseURL is the API root including its /v1, for example
	// http://127.0.0.1:8000/v1 (default https://api.openai.com/v1). It
	// replaces OPENAI_BASE_URL.
	BaseURL string
	// HTTPClient makes the requests (default: the SDK's).
	HTTPClient *http.Client
	// Retry says how transient errors are retried.
	Retry RetryPolicy
}

// OpenAI is a Backend that speaks Chat Completions through the official
// OpenAI Go SDK, with the SDK's own retries off and RetryPolicy's on.
// It has no thinking budget (ThinkingBudget is ignored) and no explicit
// prompt cache (servers cache prefixes by themselves; Cache is ignored).
type OpenAI struct {
	cfg    OpenAIConfig
	client openai.Client
}

var _ Backend = (*OpenAI)(nil)

// DefaultOpenAIBaseURL is OpenAI's own API root.
const DefaultOpenAIBaseURL = "https://api.openai.com/v1"

// NewOpenAI returns an OpenAI-compatible backend.
func NewOpenAI(cfg OpenAIConfig) *OpenAI {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultOpenAIBaseURL
	}
	opts := []option.RequestOption{
		option.WithAPIKey(cfg.APIKey),
		option.WithBaseURL(base),
		option.WithMaxRetries(0),
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	return &OpenAI{cfg: cfg, client: openai.NewClient(opts...)}
}

// Name returns "openai".
func (o *OpenAI) Name() string { return "openai" }

// Complete makes one Chat Completions call.
func (o *OpenAI) Complete(ctx context.Context, req Request) (*Response, error) {
	params, err := openaiParams(req)
	if err != nil {
		return nil, fmt.Errorf("openai: request for %s: %w", req.Model, err)
	}
	var cc *openai.ChatCompletion
	attempts, err := o.cfg.Retry.run(ctx, func(ctx context.Context, x *exchange) error {
		var err error
		cc, err = o.client.Chat.Completions.New(ctx, params, option.WithMiddleware(x.capture))
		if err == nil && len(cc.Choices) == 0 {
			err = errNoChoices
		}
		return err
	}, o.classify)
	if err != nil {
		return nil, wrapFinal("openai", err)
	}
	resp := openaiResponse(cc)
	resp.Attempts = attempts
	return resp, nil
}

var errNoChoices = errors.New("the response has no choices")

// classify judges a failed attempt.
func (o *OpenAI) classify(err error, x *exchange) failure {
	var oe *openai.Error
	if !errors.As(err, &oe) {
		return otherFailure("openai", err, x, o.cfg.APIKey)
	}
	typ, msg := oe.Type, oe.Message
	if typ == "" {
		typ = oe.Code
	}
	if typ == "" || msg == "" {
		t, m := parseErrorBody(x.body)
		typ, msg = orElse(typ, t), orElse(msg, m)
	}
	h := x.header
	if oe.Response != nil {
		h = oe.Response.Header
	}
	return httpFailure("openai", oe.StatusCode, typ, msg, h, o.cfg.APIKey)
}

// openaiParams maps a Request to Chat Completions parameters. max_tokens
// (not max_completion_tokens) is what vLLM, Ollama and llama.cpp accept.
func openaiParams(req Request) (openai.ChatCompletionNewParams, error) {
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = DefaultMaxTokens
	}
	p := openai.ChatCompletionNewParams{
		Model:     shared.ChatModel(req.Model),
		MaxTokens: openai.Int(int64(maxTokens)),
	}
	if req.Temperature != nil {
		p.Temperature = openai.Float(*req.Temperature)
	}
	if req.System != "" {
		p.Messages = append(p.Messages, openai.SystemMessage(req.System))
	}
	for i, m := range req.Messages {
		msgs, err := openaiMessages(m)
		if err != nil {
			return p, fmt.Errorf("message %d: %w", i, err)
		}
		p.Messages = append(p.Messages, msgs...)
	}
	for _, t := range req.Tools {
		schema, err := objectSchema(t.Schema)
		if err != nil {
			return p, fmt.Errorf("tool %s: %w", t.Name, err)
		}
		// Top-level keys stay raw so nested key order survives; the top
		// level is written sorted, the same on every call.
		var params map[string]json.RawMessage
		if err := json.Unmarshal(schema, &params); err != nil {
			return p, fmt.Errorf("tool %s: input schema: %w", t.Name, err)
		}
		fp := shared.FunctionParameters{}
		for k, v := range params {
			fp[k] = v
		}
		fd := shared.FunctionDefinitionParam{Name: t.Name, Parameters: fp}
		if t.Description != "" {
			fd.Description = openai.String(t.Description)
		}
		p.Tools = append(p.Tools, openai.ChatCompletionFunctionTool(fd))
	}
	return p, nil
}

// openaiMessages maps one message. A user message's tool results become
// tool messages, placed first so they follow the assistant's calls; the
// wire has no error flag, so a failed result's content starts "ERROR: ".
// Thinking parts are not sent.
func openaiMessages(m Message) ([]openai.ChatCompletionMessageParamUnion, error) {
	var (
		out   []openai.ChatCompletionMessageParamUnion
		texts []string
		calls []openai.ChatCompletionMessageToolCallUnionParam
	)
	for j, part := range m.Parts {
		if !partAllowed(m.Role, part.Kind) {
			return nil, fmt.Errorf("part %d: %s part in a %s message", j, part.Kind, m.Role)
		}
		switch part.Kind {
		case PartText:
			if part.Text != "" {
				texts = append(texts, part.Text)
			}
		case PartThinking:
		case PartToolCall:
			calls = append(calls, openai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
					ID: part.CallID,
					Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{
						Name: part.Name, Arguments: string(echoInput(part)),
					},
				},
			})
		case PartToolResult:
			content := part.Text
			if part.IsError {
				content = "ERROR: " + content
			}
			out = append(out, openai.ToolMessage(content, part.CallID))
		default:
			return nil, fmt.Errorf("part %d: unknown kind %q", j, part.Kind)
		}
	}
	text := strings.Join(texts, "\n")
	switch m.Role {
	case RoleUser:
		if text != "" || len(out) == 0 {
			out = append(out, openai.UserMessage(text))
		}
	case RoleAssistant:
		a := openai.ChatCompletionAssistantMessageParam{ToolCalls: calls}
		if text != "" || len(calls) == 0 {
			a.Content.OfString = openai.String(text)
		}
		out = append(out, openai.ChatCompletionMessageParamUnion{OfAssistant: &a})
	default:
		return nil, fmt.Errorf("unknown role %q", m.Role)
	}
	return out, nil
}

// openaiResponse maps the first choice of a completion to a Response.
func openaiResponse(cc *openai.ChatCompletion) *Response {
	ch := cc.Choices[0]
	u := cc.Usage
	cached := u.PromptTokensDetails.CachedTokens
	written := u.PromptTokensDetails.CacheWriteTokens
	r := &Response{
		Message: Message{Role: RoleAssistant},
		Stop:    openaiStop(ch.FinishReason),
		Model:   cc.Model,
		Usage: Usage{
			InputTokens:      max(u.PromptTokens-cached-written, 0),
			OutputTokens:     u.CompletionTokens,
			CacheReadTokens:  cached,
			CacheWriteTokens: written,
		},
	}
	msg := ch.Message
	if t := reasoningText(msg); t != "" {
		r.Message.Parts = append(r.Message.Parts, Part{Kind: PartThinking, Text: t})
	}
	if msg.Content != "" {
		r.Message.Parts = append(r.Message.Parts, Text(msg.Content))
	}
	if msg.Refusal != "" {
		r.Message.Parts = append(r.Message.Parts, Text(msg.Refusal))
		r.Stop = StopRefusal
	}
	for _, tc := range msg.ToolCalls {
		if tc.Type != "" && tc.Type != "function" {
			continue // custom tools are never offered
		}
		in, bad := toolInput(tc.Function.Arguments)
		r.Message.Parts = append(r.Message.Parts, Part{
			Kind: PartToolCall, CallID: tc.ID, Name: tc.Function.Name, Input: in, InputError: bad,
		})
	}
	if r.Stop == StopEnd && len(r.Message.ToolCalls()) > 0 {
		r.Stop = StopToolUse // some local servers finish tool calls with "stop"
	}
	return r
}

// reasoningText is the reasoning a local server returns beside the
// content: reasoning_content (vLLM, llama.cpp) or reasoning (Ollama).
func reasoningText(m openai.ChatCompletionMessage) string {
	for _, k := range []string{"reasoning_content", "reasoning"} {
		f, ok := m.JSON.ExtraFields[k]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal([]byte(f.Raw()), &s) == nil && s != "" {
			return s
		}
	}
	return ""
}

// openaiStop maps a finish_reason.
func openaiStop(s string) StopReason {
	switch s {
	case "stop":
		return StopEnd
	case "tool_calls", "function_call":
		return StopToolUse
	case "length":
		return StopMaxTokens
	case "content_filter":
		return StopRefusal
	}
	return StopOther
}
