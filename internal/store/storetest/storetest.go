// Package storetest is the contract every ledger backend passes: one test
// body run against SQLite and PostgreSQL alike.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/store"
)

// Harness adapts a backend to the suite.
type Harness struct {
	// Open returns a fresh, empty ledger; Reopen closes l and opens the
	// same one again.
	Open   func(t *testing.T) store.Ledger
	Reopen func(t *testing.T, l store.Ledger) store.Ledger
	// Another opens a second handle on l's ledger, as a second process
	// (an admin command beside the lab) would.
	Another func(t *testing.T, l store.Ledger) store.Ledger
	// Exec runs one statement on the backend, for damaging a ledger; the
	// statement uses '?' placeholders (backends translate them).
	Exec func(t *testing.T, l store.Ledger, query string, args ...any)
}

// Run runs the whole contract.
func Run(t *testing.T, h Harness) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, h) })
	t.Run("AppendChains", func(t *testing.T) { testAppend(t, h) })
	t.Run("ConcurrentAppends", func(t *testing.T) { testConcurrent(t, h) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, h) })
	t.Run("TwoHandles", func(t *testing.T) { testTwoHandles(t, h) })
	t.Run("TamperDetected", func(t *testing.T) { testTamper(t, h) })
}

func in(kind string, body any) store.Input {
	return store.Input{Kind: kind, Actor: "tester", Campaign: "c1", Body: body}
}

func testEmpty(t *testing.T, h Harness) {
	ctx := context.Background()
	l := h.Open(t)
	if _, err := l.Head(ctx); !errors.Is(err, store.ErrEmpty) {
		t.Fatalf("Head of an empty ledger: %v", err)
	}
	r, err := store.Verify(ctx, l, nil, nil)
	if err != nil || !r.OK || r.Entries != 0 {
		t.Fatalf("Verify of an empty ledger: %+v %v", r, err)
	}
	if _, err := l.Append(ctx, store.Input{}); err == nil {
		t.Error("appended an event without a kind")
	}
	if _, err := l.Append(ctx, store.Input{Kind: "x", Body: json.RawMessage("not json")}); err == nil {
		t.Error("appended a body that is not JSON")
	}
	if _, err := l.Head(ctx); !errors.Is(err, store.ErrEmpty) {
		t.Error("a refused append changed the ledger")
	}
}

func testAppend(t *testing.T, h Harness) {
	ctx := context.Background()
	l := h.Open(t)
	var all []store.Event
	for i := range 3 {
		evs, err := l.Append(ctx, in("submission.accepted", map[string]any{"n": i, "note": "a <b> & c"}))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	evs, err := l.Append(ctx, in("score", map[string]any{"pgr": 0.25}), in("flag", map[string]any{"reason": "diff"}))
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, evs...)
	for i, e := range all {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		if i > 0 && !bytes.Equal(e.Prev, all[i-1].Hash) {
			t.Fatalf("event %d does not chain", e.Seq)
		}
	}
	if string(all[0].Body) != `{"n":0,"note":"a \u003cb\u003e \u0026 c"}` {
		t.Errorf("body stored as %s", all[0].Body)
	}
	head, err := l.Head(ctx)
	if err != nil || head.Seq != 5 || !bytes.Equal(head.Hash, all[4].Hash) {
		t.Fatalf("head %+v %v", head, err)
	}
	var scanned []store.Event
	if err := l.Scan(ctx, 2, func(e store.Event) error { scanned = append(scanned, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(scanned) != 4 || scanned[0].Seq != 2 || !scanned[3].At.Equal(all[4].At) || scanned[3].Kind != "flag" || string(scanned[3].Body) != `{"reason":"diff"}` {
		t.Fatalf("scan from 2: %+v", scanned)
	}
	scanned = nil
	if err := l.ScanRange(ctx, 2, 3, func(e store.Event) error { scanned = append(scanned, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(scanned) != 2 || scanned[0].Seq != 2 || scanned[1].Seq != 3 {
		t.Fatalf("scan 2..3: %+v", scanned)
	}
	r, err := store.Verify(ctx, l, nil, nil)
	if err != nil || !r.OK || r.Entries != 5 || r.Head != fmt.Sprintf("%x", all[4].Hash) {
		t.Fatalf("verify: %+v %v", r, err)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	ctx := context.Background()
	l := h.Open(t)
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := l.Append(ctx, in("submission.accepted", map[string]int{"worker": w, "i": i})); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	n := int64(0)
	err := l.Scan(ctx, 1, func(e store.Event) error {
		n++
		if e.Seq != n {
			return fmt.Errorf("gap: seq %d at position %d", e.Seq, n)
		}
		if seen[string(e.Body)] {
			return fmt.Errorf("duplicate body %s", e.Body)
		}
		seen[string(e.Body)] = true
		return nil
	})
	if err != nil || n != workers*each {
		t.Fatalf("after concurrent appends: %d entries, %v", n, err)
	}
	if r, err := store.Verify(ctx, l, nil, nil); err != nil || !r.OK {
		t.Fatalf("verify: %+v %v", r, err)
	}
}

func testReopen(t *testing.T, h Harness) {
	ctx := context.Background()
	l := h.Open(t)
	first, err := l.Append(ctx, in("token.created", map[string]string{"researcher": "r1"}))
	if err != nil {
		t.Fatal(err)
	}
	l = h.Reopen(t, l)
	head, err := l.Head(ctx)
	if err != nil || head.Seq != 1 || !bytes.Equal(head.Hash, first[0].Hash) {
		t.Fatalf("head after reopen: %+v %v", head, err)
	}
	next, err := l.Append(ctx, in("token.revoked", map[string]string{"researcher": "r1"}))
	if err != nil || next[0].Seq != 2 || !bytes.Equal(next[0].Prev, first[0].Hash) {
		t.Fatalf("append after reopen: %+v %v", next, err)
	}
}

func testTwoHandles(t *testing.T, h Harness) {
	ctx := context.Background()
	a := h.Open(t)
	b := h.Another(t, a)
	var wg sync.WaitGroup
	for _, l := range []store.Ledger{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := l.Append(ctx, in("score", map[string]int{"i": i})); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, l := range []store.Ledger{a, b} {
		head, err := l.Head(ctx)
		if err != nil || head.Seq != 100 {
			t.Fatalf("head %+v %v, want entry 100", head, err)
		}
		if r, err := store.Verify(ctx, l, nil, nil); err != nil || !r.OK {
			t.Fatalf("two writers forked the chain: %+v %v", r, err)
		}
	}
}

func testTamper(t *testing.T, h Harness) {
	ctx := context.Background()
	signer, err := store.LoadOrCreateKey(t.TempDir() + "/ledger.key")
	if err != nil {
		t.Fatal(err)
	}
	fill := func(l store.Ledger, n int) {
		for i := range n {
			if _, err := l.Append(ctx, in("score", map[string]any{"i": i})); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkpoint := func(l store.Ledger) store.Checkpoint {
		head, err := l.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := signer.Checkpoint(head, time.Now())
		if err := l.AddCheckpoint(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	expect := func(l store.Ledger, extra *store.Checkpoint, seq int64, words string) {
		t.Helper()
		r, err := store.Verify(ctx, l, extra, signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		if r.OK || r.FirstBad != seq || !strings.Contains(r.Problem, words) {
			t.Fatalf("verify: %+v, want entry %d %q", r, seq, words)
		}
	}

	// A good ledger with two checkpoints verifies.
	l := h.Open(t)
	fill(l, 4)
	checkpoint(l)
	fill(l, 4)
	outside := checkpoint(l)
	if r, err := store.Verify(ctx, l, &outside, signer.Public()); err != nil || !r.OK || r.Checkpoints != 3 {
		t.Fatalf("verify: %+v %v", r, err)
	}
	// An edited body is the first bad entry.
	h.Exec(t, l, `UPDATE ledger SET body = ? WHERE seq = ?`, `{"i":99}`, 3)
	expect(l, nil, 3, "altered")

	// A deleted entry is reported missing.
	l = h.Open(t)
	fill(l, 6)
	h.Exec(t, l, `DELETE FROM ledger WHERE seq = ?`, 4)
	expect(l, nil, 4, "missing")

	// Truncation after a checkpoint kept outside the lab is caught.
	l = h.Open(t)
	fill(l, 5)
	outside = checkpoint(l)
	h.Exec(t, l, `DELETE FROM checkpoints`)
	h.Exec(t, l, `DELETE FROM ledger WHERE seq >= ?`, 4)
	expect(l, &outside, 5, "truncated")

	// A rewritten chain (every hash recomputed) no longer matches the
	// outside checkpoint.
	l = h.Open(t)
	fill(l, 3)
	outside = checkpoint(l)
	l = rewrite(t, h, l)
	expect(l, &outside, 3, "rewritten")

	// A forged signature is refused.
	l = h.Open(t)
	fill(l, 2)
	c := checkpoint(l)
	c.Sig[0] ^= 1
	expect(l, &c, 2, "bad signature")
}

// rewrite replaces the ledger's entries with a consistent chain over
// different bodies, as someone with database access might.
func rewrite(t *testing.T, h Harness, l store.Ledger) store.Ledger {
	ctx := context.Background()
	var evs []store.Event
	_ = l.Scan(ctx, 1, func(e store.Event) error { evs = append(evs, e); return nil })
	h.Exec(t, l, `DELETE FROM ledger`)
	h.Exec(t, l, `DELETE FROM checkpoints`)
	l = h.Reopen(t, l)
	for range evs {
		if _, err := l.Append(ctx, in("score", map[string]any{"forged": true})); err != nil {
			t.Fatal(err)
		}
	}
	return l
}
