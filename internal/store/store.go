// Package store owns the lab's ledger: an append-only, hash-chained log of
// every event (token made, submission accepted or rejected, score, flag,
// review), with signed checkpoints of the chain head, and the check that
// reports the first altered or missing entry.
//
// Backends live in subpackages (store/sqlite, the default; store/postgres,
// for a shared lab) and pass one contract suite (store/storetest). The
// ledger never holds labels: events carry ids, figures the lab computed and
// reasons, never a test label.
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Event is one ledger entry. Seq counts from 1 without gaps; Hash chains it
// to the entry before (Prev; zero bytes for the first).
type Event struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Kind     string          `json:"kind"`
	Actor    string          `json:"actor"`
	Campaign string          `json:"campaign,omitempty"`
	Body     json.RawMessage `json:"body"`
	Prev     []byte          `json:"prev"`
	Hash     []byte          `json:"hash"`
}

// Input is an event to append; the ledger fills Seq, At, Prev and Hash.
type Input struct {
	Kind     string
	Actor    string
	Campaign string
	// Body is any JSON-encodable value (a json.RawMessage is used as is,
	// compacted).
	Body any
}

// Checkpoint is a signature of the chain head at Seq.
type Checkpoint struct {
	Seq  int64     `json:"seq"`
	Hash []byte    `json:"hash"`
	At   time.Time `json:"at"`
	Pub  []byte    `json:"public_key"`
	Sig  []byte    `json:"signature"`
}

// Ledger is an append-only event log. Implementations serialise appends so
// the chain has no forks, and make an append durable before it returns.
type Ledger interface {
	// Append adds events atomically, in order, and returns them as stored.
	Append(ctx context.Context, in ...Input) ([]Event, error)
	// Head returns the last event, or ErrEmpty.
	Head(ctx context.Context) (Event, error)
	// Scan calls fn for every event with Seq ≥ from, in Seq order.
	Scan(ctx context.Context, from int64, fn func(Event) error) error
	// ScanRange calls fn for every event with from ≤ Seq ≤ to, in Seq order.
	ScanRange(ctx context.Context, from, to int64, fn func(Event) error) error
	// AddCheckpoint stores a signed checkpoint; Checkpoints lists them by Seq.
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	Close() error
}

// ErrEmpty is returned by Head on an empty ledger.
var ErrEmpty = errors.New("ledger is empty")

// Format is mixed into every hash, so a change of encoding is a new chain.
const Format = "aar-ledger/1"

// TimeLayout is how At is stored and hashed (UTC, nanoseconds).
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// ChainHash is SHA-256 over the entry's fields and the previous hash, each
// length-prefixed so no two entries encode alike.
func ChainHash(seq int64, at time.Time, kind, actor, campaign string, body, prev []byte) []byte {
	h := sha256.New()
	for _, part := range [][]byte{
		[]byte(Format), []byte(strconv.FormatInt(seq, 10)), []byte(at.UTC().Format(TimeLayout)),
		[]byte(kind), []byte(actor), []byte(campaign), body, prev,
	} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return h.Sum(nil)
}

// Seal builds the stored events for inputs appended after head (nil head:
// the first entries), stamping them with now.
func Seal(head *Event, now time.Time, in []Input) ([]Event, error) {
	seq, prev := int64(0), []byte{}
	if head != nil {
		seq, prev = head.Seq, head.Hash
	}
	now = now.UTC().Truncate(time.Nanosecond)
	out := make([]Event, len(in))
	for i, e := range in {
		if e.Kind == "" {
			return nil, fmt.Errorf("ledger append: event %d has no kind", i)
		}
		body, err := encodeBody(e.Body)
		if err != nil {
			return nil, fmt.Errorf("ledger append %s: %w", e.Kind, err)
		}
		seq++
		hash := ChainHash(seq, now, e.Kind, e.Actor, e.Campaign, body, prev)
		out[i] = Event{Seq: seq, At: now, Kind: e.Kind, Actor: e.Actor, Campaign: e.Campaign, Body: body, Prev: prev, Hash: hash}
		prev = hash
	}
	return out, nil
}

func encodeBody(v any) (json.RawMessage, error) {
	var raw []byte
	switch b := v.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// HeadString formats a head for the X-Aar-Ledger-Head header: "SEQ:HEX".
func HeadString(e Event) string {
	return strconv.FormatInt(e.Seq, 10) + ":" + hex.EncodeToString(e.Hash)
}

// Rows is the part of a query result both database/sql and pgx provide.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanCheckpoints reads checkpoint rows selected as (seq, hash, at, pub, sig).
func ScanCheckpoints(rows Rows) ([]Checkpoint, error) {
	var out []Checkpoint
	for rows.Next() {
		var c Checkpoint
		var at string
		if err := rows.Scan(&c.Seq, &c.Hash, &at, &c.Pub, &c.Sig); err != nil {
			return nil, err
		}
		t, err := time.Parse(TimeLayout, at)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d: time %q: %w", c.Seq, at, err)
		}
		c.At = t
		out = append(out, c)
	}
	return out, rows.Err()
}
