package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/llm"
)

// recorder buffers transcript events and sends them to the lab at the end
// of each step (and before tools run, so each tool call has a ledger
// position).
type recorder struct {
	lab     *labclient.Client
	session string
	scrub   func(string) string
	now     func() time.Time
	pending []labclient.TranscriptEvent
}

// maxEventData keeps an event's JSON under the lab's per-event limit.
const maxEventData = labclient.MaxTranscriptEvent - 4<<10

// maxBatchBytes bounds one transcript request (the lab takes 20 MB).
const maxBatchBytes = 8 << 20

func (r *recorder) add(typ string, data map[string]any, u *llm.Usage, cost, cpu float64) {
	b, err := json.Marshal(data)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"unencodable": err.Error()})
	}
	if r.scrub != nil {
		// Scrub the encoded form too: secrets may sit in nested values.
		b = []byte(r.scrub(string(b)))
	}
	if len(b) > maxEventData {
		b, _ = json.Marshal(map[string]any{"truncated": true, "bytes": len(b), "head": capText(string(b), maxEventData/2)})
	}
	ev := labclient.TranscriptEvent{Session: r.session, Type: typ, At: r.now().UTC(), Data: b, CostUSD: cost, CPUSeconds: cpu}
	if u != nil {
		ev.Usage = &labclient.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CacheReadTokens: u.CacheReadTokens, CacheWriteTokens: u.CacheWriteTokens}
	}
	r.pending = append(r.pending, ev)
}

// flush sends the pending events.
func (r *recorder) flush(ctx context.Context) error {
	_, err := r.flushPositions(ctx)
	return err
}

// flushPositions sends the pending events and returns their ledger seqs,
// in order.
func (r *recorder) flushPositions(ctx context.Context) ([]int64, error) {
	var seqs []int64
	for len(r.pending) > 0 {
		// A batch stays under the lab's event count and well under its
		// request body limit.
		n, bytes := 0, 0
		for n < len(r.pending) && n < labclient.MaxTranscriptBatch {
			bytes += len(r.pending[n].Data) + 256
			if n > 0 && bytes > maxBatchBytes {
				break
			}
			n++
		}
		ack, err := r.lab.AppendTranscript(ctx, r.pending[:n])
		if err != nil {
			return nil, fmt.Errorf("transcript: %w", err)
		}
		for i := range n {
			seqs = append(seqs, ack.First+int64(i))
		}
		r.pending = r.pending[n:]
	}
	return seqs, nil
}
