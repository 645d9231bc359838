package score

import (
	"testing"
	"time"
)

func TestQuota(t *testing.T) {
	q := &Quota{PerResearcher: 3, PerCampaign: 5, Window: time.Hour}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if ok, _ := q.Allow("c", "alice", t0.Add(time.Duration(i)*time.Minute)); !ok {
			t.Fatalf("submission %d refused", i)
		}
	}
	ok, retry := q.Allow("c", "alice", t0.Add(10*time.Minute))
	if ok || retry != 50*time.Minute {
		t.Fatalf("fourth in the hour: ok %v retry %v, want refused, 50m", ok, retry)
	}
	// Another researcher has their own count; the campaign's cap of 5 binds.
	for i := range 2 {
		if ok, _ := q.Allow("c", "bob", t0.Add(11*time.Minute)); !ok {
			t.Fatalf("bob %d refused", i)
		}
	}
	if ok, _ := q.Allow("c", "carol", t0.Add(12*time.Minute)); ok {
		t.Fatal("the campaign cap did not bind")
	}
	if ok, _ := q.Allow("other", "carol", t0.Add(12*time.Minute)); !ok {
		t.Fatal("another campaign was capped")
	}
	// An hour after alice's first submission, she may submit again.
	if ok, _ := q.Allow("c", "alice", t0.Add(61*time.Minute)); !ok {
		t.Fatal("the window did not slide")
	}
}
