package proxy

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/aar-lab/aar/internal/llm"
)

// meter reads a response's model, usage and content, from a whole JSON
// body or from a stream's events.
type meter interface {
	// whole reads a complete JSON response.
	whole(body []byte)
	// event reads one stream event's data and says what becomes of it.
	event(data []byte) verdict
	outcome() outcome
}

// verdict is what becomes of a stream event.
type verdict int

const (
	pass verdict = iota // to the client now
	drop                // not to the client
	// hold: the stream's terminal event (Anthropic message_stop, OpenAI
	// [DONE]) reaches the client after the call is recorded, so a client
	// that has its answer finds it in its spend.
	hold
)

// outcome is what a meter read.
type outcome struct {
	model string
	// usage is nil when the response carried none; upstreamUsage is the
	// provider's usage object(s) as sent.
	usage         *llm.Usage
	upstreamUsage json.RawMessage
	stop          string
	// content is a stream's response, assembled (JSON); streamError an
	// error event in the stream.
	content     json.RawMessage
	streamError json.RawMessage
}

func newMeter(prov string, clientWantsUsage bool) meter {
	if prov == "openai" {
		return &openaiMeter{wantsUsage: clientWantsUsage, choices: map[int]*openaiChoice{}}
	}
	return &anthropicMeter{blocks: map[int]*anthropicBlock{}}
}

func marshal(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return nil
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// Anthropic Messages.

// anthropicUsage is the Messages API's usage; a field the provider left out
// is nil, so a message_delta's cumulative counts replace message_start's
// field by field.
type anthropicUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
}

func (u *anthropicUsage) merge(v anthropicUsage) {
	if v.InputTokens != nil {
		u.InputTokens = v.InputTokens
	}
	if v.OutputTokens != nil {
		u.OutputTokens = v.OutputTokens
	}
	if v.CacheCreationInputTokens != nil {
		u.CacheCreationInputTokens = v.CacheCreationInputTokens
	}
	if v.CacheReadInputTokens != nil {
		u.CacheReadInputTokens = v.CacheReadInputTokens
	}
}

func (u anthropicUsage) usage() llm.Usage {
	n := func(p *int64) int64 {
		if p == nil || *p < 0 {
			return 0
		}
		return *p
	}
	return llm.Usage{InputTokens: n(u.InputTokens), OutputTokens: n(u.OutputTokens), CacheReadTokens: n(u.CacheReadInputTokens), CacheWriteTokens: n(u.CacheCreationInputTokens)}
}

// anthropicBlock is one content block of a streamed message.
type anthropicBlock struct {
	start    json.RawMessage // the content_block of content_block_start
	typ      string
	id, name string
	text     strings.Builder // text, thinking
	input    strings.Builder // a tool_use's partial_json
}

type anthropicMeter struct {
	id, model, stop string
	usage           anthropicUsage
	seen            bool
	upstream        map[string]json.RawMessage
	blocks          map[int]*anthropicBlock
	streamErr       json.RawMessage
	streamed        bool
}

func (m *anthropicMeter) whole(body []byte) {
	var msg struct {
		Model      string          `json:"model"`
		StopReason string          `json:"stop_reason"`
		Usage      json.RawMessage `json:"usage"`
	}
	if json.Unmarshal(body, &msg) != nil {
		return
	}
	m.model, m.stop = msg.Model, msg.StopReason
	m.readUsage("usage", msg.Usage)
}

// readUsage merges a usage object (under name in the upstream record).
func (m *anthropicMeter) readUsage(name string, raw json.RawMessage) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return
	}
	var u anthropicUsage
	if json.Unmarshal(raw, &u) != nil {
		return
	}
	m.usage.merge(u)
	m.seen = true
	if m.upstream == nil {
		m.upstream = map[string]json.RawMessage{}
	}
	m.upstream[name] = raw
}

func (m *anthropicMeter) event(data []byte) verdict {
	m.streamed = true
	var ev struct {
		Type    string `json:"type"`
		Message struct {
			ID    string          `json:"id"`
			Model string          `json:"model"`
			Usage json.RawMessage `json:"usage"`
		} `json:"message"`
		Index        int             `json:"index"`
		ContentBlock json.RawMessage `json:"content_block"`
		Delta        struct {
			Type        string `json:"type"`
			Text        string `json:"text"`
			Thinking    string `json:"thinking"`
			PartialJSON string `json:"partial_json"`
			StopReason  string `json:"stop_reason"`
		} `json:"delta"`
		Usage json.RawMessage `json:"usage"`
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return pass
	}
	switch ev.Type {
	case "message_start":
		m.id, m.model = ev.Message.ID, ev.Message.Model
		m.readUsage("message_start", ev.Message.Usage)
	case "content_block_start":
		var cb struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Name string `json:"name"`
			Text string `json:"text"`
		}
		_ = json.Unmarshal(ev.ContentBlock, &cb)
		b := &anthropicBlock{start: ev.ContentBlock, typ: cb.Type, id: cb.ID, name: cb.Name}
		b.text.WriteString(cb.Text)
		m.blocks[ev.Index] = b
	case "content_block_delta":
		b := m.blocks[ev.Index]
		if b == nil {
			b = &anthropicBlock{}
			m.blocks[ev.Index] = b
		}
		switch ev.Delta.Type {
		case "text_delta":
			b.text.WriteString(ev.Delta.Text)
		case "thinking_delta":
			b.text.WriteString(ev.Delta.Thinking)
		case "input_json_delta":
			b.input.WriteString(ev.Delta.PartialJSON)
		}
	case "message_delta":
		if ev.Delta.StopReason != "" {
			m.stop = ev.Delta.StopReason
		}
		m.readUsage("message_delta", ev.Usage)
	case "message_stop":
		return hold
	case "error":
		m.streamErr = ev.Error
	}
	return pass
}

func (m *anthropicMeter) outcome() outcome {
	o := outcome{model: m.model, stop: m.stop, streamError: m.streamErr}
	if m.seen {
		u := m.usage.usage()
		o.usage = &u
		if raw, ok := m.upstream["usage"]; ok && len(m.upstream) == 1 {
			o.upstreamUsage = raw
		} else {
			o.upstreamUsage = marshal(m.upstream)
		}
	}
	if m.streamed {
		idx := slices.Sorted(maps.Keys(m.blocks))
		content := make([]any, 0, len(idx))
		for _, i := range idx {
			b := m.blocks[i]
			switch b.typ {
			case "text":
				content = append(content, map[string]any{"type": "text", "text": b.text.String()})
			case "thinking":
				content = append(content, map[string]any{"type": "thinking", "thinking": b.text.String()})
			case "tool_use", "server_tool_use":
				in := any(b.input.String())
				if s := b.input.String(); s == "" {
					in = map[string]any{}
				} else if json.Valid([]byte(s)) {
					in = json.RawMessage(s)
				}
				content = append(content, map[string]any{"type": b.typ, "id": b.id, "name": b.name, "input": in})
			default:
				if len(b.start) > 0 {
					content = append(content, json.RawMessage(b.start))
				}
			}
		}
		o.content = marshal(map[string]any{"id": m.id, "model": m.model, "content": content, "stop_reason": m.stop})
	}
	return o
}

// OpenAI Chat Completions.

// openaiUsage is Chat Completions' usage. prompt_tokens counts cached and
// cache-written tokens too; completion_tokens counts reasoning.
type openaiUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	PromptTokensDetails struct {
		CachedTokens     int64 `json:"cached_tokens"`
		CacheWriteTokens int64 `json:"cache_write_tokens"`
	} `json:"prompt_tokens_details"`
}

// usage maps it as the openai backend does (internal/llm/openai.go).
func (u openaiUsage) usage() llm.Usage {
	cached, written := max(u.PromptTokensDetails.CachedTokens, 0), max(u.PromptTokensDetails.CacheWriteTokens, 0)
	return llm.Usage{
		InputTokens:      max(u.PromptTokens-cached-written, 0),
		OutputTokens:     max(u.CompletionTokens, 0),
		CacheReadTokens:  cached,
		CacheWriteTokens: written,
	}
}

type openaiToolCall struct {
	id, name string
	args     strings.Builder
}

type openaiChoice struct {
	role, finish      string
	content, thinking strings.Builder
	calls             map[int]*openaiToolCall
}

type openaiMeter struct {
	wantsUsage bool
	id, model  string
	usage      *llm.Usage
	rawUsage   json.RawMessage
	choices    map[int]*openaiChoice
	streamErr  json.RawMessage
	streamed   bool
}

func (m *openaiMeter) readUsage(raw json.RawMessage) bool {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return false
	}
	var u openaiUsage
	if json.Unmarshal(raw, &u) != nil {
		return false
	}
	// Each report is cumulative: the last one counts.
	lu := u.usage()
	m.usage, m.rawUsage = &lu, raw
	return true
}

func (m *openaiMeter) whole(body []byte) {
	var cc struct {
		Model   string          `json:"model"`
		Usage   json.RawMessage `json:"usage"`
		Choices []struct {
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if json.Unmarshal(body, &cc) != nil {
		return
	}
	m.model = cc.Model
	if len(cc.Choices) > 0 {
		m.choices[0] = &openaiChoice{finish: cc.Choices[0].FinishReason}
	}
	m.readUsage(cc.Usage)
}

func (m *openaiMeter) event(data []byte) verdict {
	if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
		return hold
	}
	m.streamed = true
	var ch struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Choices []struct {
			Index int `json:"index"`
			Delta struct {
				Role             string  `json:"role"`
				Content          *string `json:"content"`
				ReasoningContent string  `json:"reasoning_content"`
				Reasoning        string  `json:"reasoning"`
				ToolCalls        []struct {
					Index    int    `json:"index"`
					ID       string `json:"id"`
					Function struct {
						Name      string `json:"name"`
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"tool_calls"`
			} `json:"delta"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage json.RawMessage `json:"usage"`
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &ch) != nil {
		return pass
	}
	if len(ch.Error) > 0 && !bytes.Equal(ch.Error, []byte("null")) {
		m.streamErr = ch.Error
		return pass
	}
	if ch.ID != "" {
		m.id = ch.ID
	}
	if ch.Model != "" {
		m.model = ch.Model
	}
	for _, c := range ch.Choices {
		oc := m.choices[c.Index]
		if oc == nil {
			oc = &openaiChoice{calls: map[int]*openaiToolCall{}}
			m.choices[c.Index] = oc
		}
		if c.Delta.Role != "" {
			oc.role = c.Delta.Role
		}
		if c.Delta.Content != nil {
			oc.content.WriteString(*c.Delta.Content)
		}
		oc.thinking.WriteString(c.Delta.ReasoningContent)
		oc.thinking.WriteString(c.Delta.Reasoning)
		for _, tc := range c.Delta.ToolCalls {
			call := oc.calls[tc.Index]
			if call == nil {
				call = &openaiToolCall{}
				oc.calls[tc.Index] = call
			}
			if tc.ID != "" {
				call.id = tc.ID
			}
			if tc.Function.Name != "" {
				call.name = tc.Function.Name
			}
			call.args.WriteString(tc.Function.Arguments)
		}
		if c.FinishReason != "" {
			oc.finish = c.FinishReason
		}
	}
	if m.readUsage(ch.Usage) && len(ch.Choices) == 0 && !m.wantsUsage {
		// The usage chunk the proxy asked for on the client's behalf.
		return drop
	}
	return pass
}

func (m *openaiMeter) outcome() outcome {
	o := outcome{model: m.model, usage: m.usage, upstreamUsage: m.rawUsage, streamError: m.streamErr}
	if c := m.choices[0]; c != nil {
		o.stop = c.finish
	}
	if !m.streamed {
		return o
	}
	idx := slices.Sorted(maps.Keys(m.choices))
	choices := make([]any, 0, len(idx))
	for _, i := range idx {
		c := m.choices[i]
		msg := map[string]any{"role": c.role, "content": c.content.String()}
		if c.thinking.Len() > 0 {
			msg["reasoning_content"] = c.thinking.String()
		}
		if len(c.calls) > 0 {
			ci := slices.Sorted(maps.Keys(c.calls))
			calls := make([]any, 0, len(ci))
			for _, j := range ci {
				tc := c.calls[j]
				calls = append(calls, map[string]any{"id": tc.id, "type": "function", "function": map[string]any{"name": tc.name, "arguments": tc.args.String()}})
			}
			msg["tool_calls"] = calls
		}
		choices = append(choices, map[string]any{"index": i, "message": msg, "finish_reason": c.finish})
	}
	o.content = marshal(map[string]any{"id": m.id, "model": m.model, "choices": choices})
	return o
}
