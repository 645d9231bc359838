package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/llm"
)

// runStream feeds a stream through the SSE reader and a meter as the proxy
// does, and returns what the client would get.
func runStream(t testing.TB, m meter, stream string) string {
	var out bytes.Buffer
	sc := newSSEReader(strings.NewReader(stream), maxEvent)
	for {
		ev, err := sc.next()
		if len(ev.raw) > 0 && (!ev.hasData || m.event(ev.data) != drop) {
			out.Write(ev.raw)
		}
		if err == io.EOF {
			return out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestAnthropicMeter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []string // or
		json   string
		want   *llm.Usage
		stop   string
	}{
		{name: "start and delta", stream: anthropicStream, want: &anthWant, stop: "tool_use"},
		{name: "cumulative delta replaces start", stream: []string{
			sse("message_start", `{"type":"message_start","message":{"model":"m","usage":{"input_tokens":10,"output_tokens":1,"cache_read_input_tokens":5}}}`),
			sse("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":12,"output_tokens":30,"cache_read_input_tokens":5,"cache_creation_input_tokens":7}}`),
		}, want: &llm.Usage{InputTokens: 12, OutputTokens: 30, CacheReadTokens: 5, CacheWriteTokens: 7}, stop: "end_turn"},
		{name: "null cache fields", stream: []string{
			sse("message_start", `{"type":"message_start","message":{"model":"m","usage":{"input_tokens":10,"output_tokens":1,"cache_read_input_tokens":null}}}`),
			sse("message_delta", `{"type":"message_delta","delta":{},"usage":{"output_tokens":2}}`),
		}, want: &llm.Usage{InputTokens: 10, OutputTokens: 2}},
		{name: "no usage", stream: []string{sse("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)}},
		{name: "json", json: anthropicJSON, want: &anthWant, stop: "end_turn"},
		{name: "json without usage", json: `{"type":"message","content":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeter("anthropic", false)
			if tc.json != "" {
				m.whole([]byte(tc.json))
			} else if got, want := runStream(t, m, strings.Join(tc.stream, "")), strings.Join(tc.stream, ""); got != want {
				t.Errorf("stream changed:\n%s", got)
			}
			o := m.outcome()
			if (o.usage == nil) != (tc.want == nil) || o.usage != nil && *o.usage != *tc.want {
				t.Errorf("usage %+v, want %+v", o.usage, tc.want)
			}
			if o.stop != tc.stop {
				t.Errorf("stop %q, want %q", o.stop, tc.stop)
			}
			if tc.want != nil && !json.Valid(o.upstreamUsage) {
				t.Errorf("upstream usage %s", o.upstreamUsage)
			}
		})
	}
}

func TestOpenAIMeter(t *testing.T) {
	usageChunk := chunk(`{"id":"x","model":"gpt-test","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20,"prompt_tokens_details":{"cached_tokens":30,"cache_write_tokens":10}}}`)
	for _, tc := range []struct {
		name       string
		stream     []string
		wantsUsage bool
		forwarded  string
		want       *llm.Usage
	}{
		{name: "usage chunk dropped", stream: openaiStream, forwarded: strings.Join(openaiStream[:6], "") + openaiStream[7], want: &oaiWant},
		{name: "usage chunk kept", stream: openaiStream, wantsUsage: true, forwarded: strings.Join(openaiStream, ""), want: &oaiWant},
		{name: "cache writes", stream: []string{usageChunk}, want: &llm.Usage{InputTokens: 60, OutputTokens: 20, CacheReadTokens: 30, CacheWriteTokens: 10}},
		{name: "usage on every chunk: the last counts, none dropped", stream: []string{
			chunk(`{"choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":5,"completion_tokens":1}}`),
			chunk(`{"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`),
		}, want: &llm.Usage{InputTokens: 5, OutputTokens: 2}},
		{name: "no usage", stream: openaiStream[:6]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeter("openai", tc.wantsUsage)
			got := runStream(t, m, strings.Join(tc.stream, ""))
			if tc.forwarded == "" {
				tc.forwarded = strings.Join(tc.stream, "")
				if tc.name == "cache writes" {
					tc.forwarded = ""
				}
			}
			if got != tc.forwarded {
				t.Errorf("forwarded:\n%s\nwant\n%s", got, tc.forwarded)
			}
			o := m.outcome()
			if (o.usage == nil) != (tc.want == nil) || o.usage != nil && *o.usage != *tc.want {
				t.Errorf("usage %+v, want %+v", o.usage, tc.want)
			}
		})
	}
}

// TestFitData: a body full of characters JSON escapes still fits a
// transcript event.
func TestFitData(t *testing.T) {
	p, err := New(nil, Options{AnthropicKey: anthKey})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"text":"` + strings.Repeat("<", 60<<10) + `"}`)
	raw := p.fitData(map[string]any{"call": "px_1"}, "body", body)
	if len(raw) > DefaultMaxRecord+16<<10 || !json.Valid(raw) {
		t.Errorf("%d bytes, valid %v", len(raw), json.Valid(raw))
	}
	raw = p.fitData(map[string]any{"call": "px_1"}, "body", []byte(`{"k":"`+anthKey+`"}`))
	noKey(t, "data", string(raw))
	if raw = p.fitData(map[string]any{}, "body", []byte("not json")); !strings.Contains(string(raw), `"text":"not json"`) {
		t.Errorf("%s", raw)
	}
}

// FuzzStream: whatever an upstream streams, the reader passes every byte
// on (but for a dropped usage chunk) and the meters never fail.
func FuzzStream(f *testing.F) {
	f.Add(strings.Join(anthropicStream, ""))
	f.Add(strings.Join(openaiStream, ""))
	f.Add("data: {\"usage\": null}\r\n\r\ndata: [DONE]")
	f.Add("event: x\ndata: {\"type\":\"content_block_delta\",\"index\":-1,\"delta\":{}}\n\n\n\n:comment\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, prov := range []string{"anthropic", "openai"} {
			m := newMeter(prov, true)
			if got := runStream(t, m, s); got != s {
				t.Fatalf("%s: the stream changed:\n%q\n%q", prov, got, s)
			}
			o := m.outcome()
			if o.usage != nil && (o.usage.InputTokens < 0 || o.usage.OutputTokens < 0 || o.usage.CacheReadTokens < 0 || o.usage.CacheWriteTokens < 0) {
				t.Fatalf("negative usage %+v", o.usage)
			}
			if len(o.content) > 0 && !json.Valid(o.content) {
				t.Fatalf("content %s", o.content)
			}
		}
	})
}

func BenchmarkStreamMeter(b *testing.B) {
	stream := strings.Join(anthropicStream, "")
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		m := newMeter("anthropic", false)
		runStream(b, m, stream)
		m.outcome()
	}
}
