package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// fitData encodes fields as a transcript event's data, with body (JSON, as
// sent or received) under key: whole when it fits in MaxRecord, else its
// head and tail with its size and SHA-256. The real keys are scrubbed.
func (p *Proxy) fitData(fields map[string]any, key string, body []byte) json.RawMessage {
	// Encoding can grow a body (json.Marshal escapes <, > and &), so the
	// encoded event is measured and the kept part shrunk until it fits.
	for budget := p.o.MaxRecord; ; budget /= 2 {
		if len(body) > 0 {
			fields[key] = clipJSON(body, budget)
		}
		b, err := json.Marshal(fields)
		if err == nil && (len(b) <= p.o.MaxRecord+16<<10 || budget < 256) {
			return json.RawMessage(p.scrub(string(b)))
		}
		if err != nil {
			fields[key] = map[string]any{"unencodable": true, "bytes": len(body)}
			b, _ = json.Marshal(fields)
			return json.RawMessage(p.scrub(string(b)))
		}
	}
}

// clipJSON is b as JSON when it is valid and at most limit bytes, else a
// clipped description of it.
func clipJSON(b []byte, limit int) any {
	if len(b) <= limit && json.Valid(b) {
		return json.RawMessage(b)
	}
	sum := sha256.Sum256(b)
	out := map[string]any{"clipped": true, "bytes": len(b), "sha256": hex.EncodeToString(sum[:])}
	if len(b) <= limit {
		out["text"] = strings.ToValidUTF8(string(b), "")
		return out
	}
	// The head shows the system prompt and settings, the tail the newest
	// turn, which is what a call adds to a conversation.
	head := limit / 4
	out["head"] = strings.ToValidUTF8(string(b[:head]), "")
	out["tail"] = strings.ToValidUTF8(string(b[len(b)-(limit-head):]), "")
	return out
}
