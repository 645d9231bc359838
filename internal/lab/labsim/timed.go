package labsim

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/store"
)

// timedLedger times the lab's appends. Appends are serialised (by the
// lab's lock, the SQLite writer and the PostgreSQL advisory lock alike), so
// the share of wall time spent appending is how close the ledger is to
// being the bottleneck.
type timedLedger struct {
	store.Ledger

	mu      sync.Mutex
	appends []time.Duration // guarded by mu
	events  int64           // guarded by mu
}

var _ store.Ledger = (*timedLedger)(nil)

func (t *timedLedger) Append(ctx context.Context, in ...store.Input) ([]store.Event, error) {
	start := time.Now()
	evs, err := t.Ledger.Append(ctx, in...)
	d := time.Since(start)
	t.mu.Lock()
	t.appends = append(t.appends, d)
	t.events += int64(len(in))
	t.mu.Unlock()
	return evs, err
}

func (t *timedLedger) reset() {
	t.mu.Lock()
	t.appends, t.events = nil, 0
	t.mu.Unlock()
}

// usage summarises the appends since reset.
func (t *timedLedger) usage(elapsed time.Duration) LedgerGrowth {
	t.mu.Lock()
	ds := slices.Clone(t.appends)
	events := t.events
	t.mu.Unlock()
	g := LedgerGrowth{Appends: int64(len(ds))}
	if len(ds) == 0 {
		return g
	}
	var total time.Duration
	ms := make([]float64, len(ds))
	for i, d := range ds {
		total += d
		ms[i] = msOf(d)
	}
	slices.Sort(ms)
	g.AppendBusy = total.Seconds() / elapsed.Seconds()
	g.AppendMeanMs = msOf(total) / float64(len(ds))
	g.AppendP99Ms = quantile(ms, 0.99)
	g.EventsPerAppend = float64(events) / float64(len(ds))
	return g
}

// timedForum times the forum store's calls.
type timedForum struct {
	forum.Store

	mu    sync.Mutex
	calls map[string]*opTime // guarded by mu
}

type opTime struct {
	n     int64
	total time.Duration
}

var _ forum.Store = (*timedForum)(nil)

func (t *timedForum) note(op string, start time.Time) {
	d := time.Since(start)
	t.mu.Lock()
	if t.calls == nil {
		t.calls = map[string]*opTime{}
	}
	o := t.calls[op]
	if o == nil {
		o = &opTime{}
		t.calls[op] = o
	}
	o.n++
	o.total += d
	t.mu.Unlock()
}

func (t *timedForum) reset() {
	t.mu.Lock()
	t.calls = nil
	t.mu.Unlock()
}

func (t *timedForum) Add(ctx context.Context, f forum.Finding) (forum.Finding, error) {
	defer t.note("add", time.Now())
	return t.Store.Add(ctx, f)
}

func (t *timedForum) Get(ctx context.Context, campaign, id string) (forum.Finding, []forum.Comment, error) {
	defer t.note("get", time.Now())
	return t.Store.Get(ctx, campaign, id)
}

func (t *timedForum) List(ctx context.Context, campaign string, since int64, limit int) (forum.Page, error) {
	defer t.note("list", time.Now())
	return t.Store.List(ctx, campaign, since, limit)
}

func (t *timedForum) Search(ctx context.Context, campaign, query string, limit int) ([]forum.Finding, error) {
	defer t.note("search", time.Now())
	return t.Store.Search(ctx, campaign, query, limit)
}

func (t *timedForum) Comment(ctx context.Context, campaign string, c forum.Comment) (forum.Comment, error) {
	defer t.note("comment", time.Now())
	return t.Store.Comment(ctx, campaign, c)
}

func (t *timedForum) Vote(ctx context.Context, campaign, finding, voter string, value int) error {
	defer t.note("vote", time.Now())
	return t.Store.Vote(ctx, campaign, finding, voter, value)
}

// usage summarises the calls since reset. Forum reads run concurrently, so
// Busy may pass 1 (it is the average number of calls in progress).
func (t *timedForum) usage(elapsed time.Duration) ForumUsage {
	t.mu.Lock()
	defer t.mu.Unlock()
	var u ForumUsage
	var total time.Duration
	for op, o := range t.calls {
		total += o.total
		u.Ops = append(u.Ops, ForumOp{Op: op, Calls: o.n, MeanMs: msOf(o.total) / float64(o.n)})
	}
	slices.SortFunc(u.Ops, func(a, b ForumOp) int { return int(b.Calls - a.Calls) })
	u.Busy = total.Seconds() / elapsed.Seconds()
	return u
}

// serverStats times the lab's handler per kind of request: the time from
// the request reaching the handler to the response written, which includes
// waiting for the lab's locks but not the network or the client.
type serverStats struct {
	kinds    map[string]*serverKind // fixed at construction
	inflight atomic.Int64
	peak     atomic.Int64
}

type serverKind struct {
	n, nanos atomic.Int64
}

func newServerStats() *serverStats {
	s := &serverStats{kinds: map[string]*serverKind{}}
	for _, k := range Kinds {
		s.kinds[k] = &serverKind{}
	}
	return s
}

func (s *serverStats) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := s.kinds[kindOf(r)]
		n := s.inflight.Add(1)
		for {
			p := s.peak.Load()
			if n <= p || s.peak.CompareAndSwap(p, n) {
				break
			}
		}
		start := time.Now()
		h.ServeHTTP(w, r)
		if k != nil {
			k.n.Add(1)
			k.nanos.Add(int64(time.Since(start)))
		}
		s.inflight.Add(-1)
	})
}

func (s *serverStats) reset() {
	for _, k := range s.kinds {
		k.n.Store(0)
		k.nanos.Store(0)
	}
	s.peak.Store(s.inflight.Load())
}
