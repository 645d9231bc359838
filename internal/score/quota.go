package score

import (
	"sync"
	"time"
)

// Quota limits scored submissions in a sliding window: per researcher and
// per campaign (defaults 30 and 500 an hour). Safe for concurrent use.
type Quota struct {
	PerResearcher int
	PerCampaign   int
	Window        time.Duration

	mu   sync.Mutex
	seen map[string][]time.Time // guarded by mu; key → accepted times, oldest first
}

// DefaultQuota is the default policy's quota.
func DefaultQuota() *Quota {
	return &Quota{PerResearcher: 30, PerCampaign: 500, Window: time.Hour}
}

// Allow records a submission at now and reports whether it is within the
// quota; when it is not, nothing is recorded and retryAfter says when the
// oldest counted submission leaves the window.
func (q *Quota) Allow(campaign, researcher string, now time.Time) (ok bool, retryAfter time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.seen == nil {
		q.seen = map[string][]time.Time{}
	}
	keys := []struct {
		key   string
		limit int
	}{{"r\x00" + campaign + "\x00" + researcher, q.PerResearcher}, {"c\x00" + campaign, q.PerCampaign}}
	for _, k := range keys {
		ts := q.prunedLocked(k.key, now)
		if k.limit > 0 && len(ts) >= k.limit {
			return false, ts[0].Add(q.Window).Sub(now)
		}
	}
	for _, k := range keys {
		q.seen[k.key] = append(q.seen[k.key], now)
	}
	return true, 0
}

func (q *Quota) prunedLocked(key string, now time.Time) []time.Time {
	ts := q.seen[key]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-q.Window)) {
		i++
	}
	ts = ts[i:]
	q.seen[key] = ts
	return ts
}
