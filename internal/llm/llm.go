// Package llm is aar's provider-neutral view of a chat model with tools:
// messages made of typed parts (text, tool call, tool result, thinking),
// tool definitions, stop reasons and token usage, and the backends that
// speak to real providers (Anthropic's Messages API and OpenAI-compatible
// Chat Completions, each through its official Go SDK) or replay a script.
//
// A backend never sees a label: it is called by the researcher worker,
// which holds only its model key, its lab token and the public view.
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Role is who wrote a message.
type Role string

const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// PartKind is the type of one part of a message.
type PartKind string

const (
	PartText       PartKind = "text"
	PartThinking   PartKind = "thinking"
	PartToolCall   PartKind = "tool_call"
	PartToolResult PartKind = "tool_result"
)

// Part is one typed piece of a message. Which fields are set depends on
// Kind: Text for text and thinking (Signature echoes a provider's thinking
// signature back); CallID, Name and Input for a tool call; CallID, Text
// and IsError for a tool result.
type Part struct {
	Kind      PartKind        `json:"kind"`
	Text      string          `json:"text,omitempty"`
	Signature string          `json:"signature,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	// InputError is set when the model's tool input was not valid JSON;
	// Input then holds the raw text (as a JSON string) and the caller
	// should answer with an error result rather than run the tool.
	InputError string `json:"input_error,omitempty"`
	IsError    bool   `json:"is_error,omitempty"`
	// Redacted marks a thinking part the provider encrypted: Text is
	// empty and Signature holds the opaque data to echo back.
	Redacted bool `json:"redacted,omitempty"`
}

// Text returns a text part.
func Text(s string) Part { return Part{Kind: PartText, Text: s} }

// ToolResult returns a tool result part.
func ToolResult(callID, text string, isError bool) Part {
	return Part{Kind: PartToolResult, CallID: callID, Text: text, IsError: isError}
}

// Message is one turn of a conversation.
type Message struct {
	Role  Role   `json:"role"`
	Parts []Part `json:"parts"`
}

// TextOf joins a message's text parts.
func (m Message) TextOf() string {
	s := ""
	for _, p := range m.Parts {
		if p.Kind == PartText {
			if s != "" {
				s += "\n"
			}
			s += p.Text
		}
	}
	return s
}

// ToolCalls returns a message's tool-call parts in order.
func (m Message) ToolCalls() []Part {
	var out []Part
	for _, p := range m.Parts {
		if p.Kind == PartToolCall {
			out = append(out, p)
		}
	}
	return out
}

// Tool is a tool the model may call: a name, a description and a JSON
// Schema (an object) for its input.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"input_schema"`
}

// StopReason is why the model stopped.
type StopReason string

const (
	StopEnd       StopReason = "end_turn"   // finished its turn
	StopToolUse   StopReason = "tool_use"   // wants tool results
	StopMaxTokens StopReason = "max_tokens" // cut off at the output limit
	StopRefusal   StopReason = "refusal"    // declined (safety or policy)
	StopSequence  StopReason = "stop_sequence"
	StopPause     StopReason = "pause_turn" // provider paused a long turn; continue it
	StopOther     StopReason = "other"
)

// Usage counts tokens of one call. InputTokens excludes cached tokens:
// CacheReadTokens were read from the prompt cache and CacheWriteTokens
// written to it (each priced separately).
type Usage struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens,omitempty"`
	CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
}

// Add returns the sum of two usages.
func (u Usage) Add(v Usage) Usage {
	return Usage{u.InputTokens + v.InputTokens, u.OutputTokens + v.OutputTokens,
		u.CacheReadTokens + v.CacheReadTokens, u.CacheWriteTokens + v.CacheWriteTokens}
}

// Total is every token the call consumed or produced.
func (u Usage) Total() int64 {
	return u.InputTokens + u.OutputTokens + u.CacheReadTokens + u.CacheWriteTokens
}

// Prompt is every input token (fresh, cached and cache-written): how full
// the context was.
func (u Usage) Prompt() int64 { return u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens }

// Request is one model call.
type Request struct {
	Model    string
	System   string
	Messages []Message
	Tools    []Tool
	// MaxTokens bounds the output (required by Anthropic; default 4096).
	MaxTokens int
	// ThinkingBudget > 0 turns on extended thinking with that many tokens
	// (backends without it ignore it).
	ThinkingBudget int
	// Temperature, when set, overrides the provider's default.
	Temperature *float64
	// Cache asks the backend to cache the stable prefix (system prompt and
	// tools, and the conversation up to the last turn) where it can.
	Cache bool
}

// Response is the model's answer to one call.
type Response struct {
	Message Message    `json:"message"` // always RoleAssistant
	Stop    StopReason `json:"stop"`
	Usage   Usage      `json:"usage"`
	Model   string     `json:"model"` // the model that answered
	// Attempts is how many HTTP attempts the call took (retries + 1).
	Attempts int `json:"attempts,omitempty"`
}

// Backend is a model provider.
type Backend interface {
	// Name is the backend's kind ("anthropic", "openai", "scripted").
	Name() string
	// Complete makes one call. Transient provider errors (429, 529, 5xx,
	// connection resets) are retried inside; the error returned is final.
	Complete(ctx context.Context, req Request) (*Response, error)
}

// ErrScriptDone is returned by the scripted backend when its script has no
// more turns.
var ErrScriptDone = errors.New("llm: the script has no more turns")

// APIError is a final error from a provider, with its HTTP status (0 when
// none came back). It never carries the request's key.
type APIError struct {
	Backend string
	Status  int
	Type    string
	Message string
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %s", e.Backend, e.Message)
	}
	return fmt.Sprintf("%s: HTTP %d %s: %s", e.Backend, e.Status, e.Type, e.Message)
}
