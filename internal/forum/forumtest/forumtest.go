// Package forumtest is the contract every forum.Store backend passes: one
// test body run against SQLite and PostgreSQL alike. It only drives the
// forum.Store interface; it never reaches into a backend's tables.
package forumtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/forum"
)

// Harness adapts a backend to the suite.
type Harness struct {
	// Open returns a fresh, empty store, closed when the test ends.
	Open func(t *testing.T) forum.Store
	// Reopen, if set, closes s and opens the same store again.
	Reopen func(t *testing.T, s forum.Store) forum.Store
}

// Run runs the whole contract.
func Run(t *testing.T, h Harness) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, h) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, h) })
	t.Run("DuplicateID", func(t *testing.T) { testDuplicate(t, h) })
	t.Run("CampaignIsolation", func(t *testing.T) { testIsolation(t, h) })
	t.Run("ListPaging", func(t *testing.T) { testPaging(t, h) })
	t.Run("Search", func(t *testing.T) { testSearch(t, h) })
	t.Run("SearchHostile", func(t *testing.T) { testHostile(t, h) })
	t.Run("CommentsAndVotes", func(t *testing.T) { testCommentsVotes(t, h) })
	t.Run("ConcurrentAdds", func(t *testing.T) { testConcurrent(t, h) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, h) })
	t.Run("CloseIdempotent", func(t *testing.T) { testClose(t, h) })
}

var at0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// finding is a plain finding of campaign c.
func finding(c, id, title, body string) forum.Finding {
	return forum.Finding{
		ID: id, Campaign: c, Author: "r1", Type: forum.TypeInsight,
		Title: title, Body: body, Family: "other", At: at0,
	}
}

func add(t *testing.T, s forum.Store, f forum.Finding) forum.Finding {
	t.Helper()
	got, err := s.Add(t.Context(), f)
	if err != nil {
		t.Fatalf("add %s: %v", f.ID, err)
	}
	return got
}

func ids(fs []forum.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// checkFinding fails unless got is want (At to the microsecond, JSON by
// value).
func checkFinding(t *testing.T, what string, got, want forum.Finding) {
	t.Helper()
	if d := got.At.Sub(want.At); d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("%s: At %v, want %v", what, got.At, want.At)
	}
	if !sameJSON(got.Metrics, want.Metrics) || !sameJSON(got.Config, want.Config) {
		t.Errorf("%s: metrics %s config %s, want %s %s", what, got.Metrics, got.Config, want.Metrics, want.Config)
	}
	g, w := got, want
	g.At, w.At = time.Time{}, time.Time{}
	g.Metrics, w.Metrics, g.Config, w.Config = nil, nil, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func testRoundTrip(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	worked, failed := true, false
	full := forum.Finding{
		ID: "f-full", Campaign: "c1", Author: "researcher-7", Type: forum.TypeResult,
		Title: "Confidence-weighted self-training", Body: "# Result\n\nIt *works*: ünïcödé, \"quotes\", 'apostrophes' & <tags>.",
		Family:  "confidence weighting",
		Metrics: json.RawMessage(`{"pgr":0.31,"seeds":[0.3,0.29,0.33,0.32,0.31]}`),
		Config:  json.RawMessage(`{"lr":0.0001,"epochs":3,"filter":{"keep":0.8}}`),
		Worked:  &worked, Submission: "sub-123", Snapshot: "snap-abc",
		Card: &forum.MethodCard{
			Summary: "weight the loss by weak-label confidence", Pseudocode: "for x: loss *= conf(x)",
			Components: []forum.Component{{Name: "weighting", Ablation: "without it PGR 0.12"}, {Name: "warmup", Ablation: "without it PGR 0.28"}},
			Inputs:     []string{"weak labels", "strong representation"},
		},
		At: time.Date(2025, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600)),
	}
	plain := forum.Finding{ID: "f-plain", Campaign: "c1", Author: "r2", Type: forum.TypeHypothesis, Title: "A guess", Body: "", Family: "other", At: at0}
	negative := forum.Finding{ID: "f-neg", Campaign: "c1", Author: "r3", Type: forum.TypeResult, Title: "Did not work", Body: "no", Family: "ensemble", Worked: &failed, At: at0}
	for _, f := range []forum.Finding{full, plain, negative} {
		added := add(t, s, f)
		if added.Seq <= 0 {
			t.Fatalf("add %s: seq %d", f.ID, added.Seq)
		}
		want := f
		want.Seq = added.Seq
		checkFinding(t, "Add result of "+f.ID, added, want)
		got, comments, err := s.Get(ctx, f.Campaign, f.ID)
		if err != nil {
			t.Fatalf("get %s: %v", f.ID, err)
		}
		checkFinding(t, "Get "+f.ID, got, want)
		if !got.At.Equal(added.At) {
			t.Errorf("get %s: At %v, Add returned %v", f.ID, got.At, added.At)
		}
		if len(comments) != 0 {
			t.Errorf("get %s: %d comments on a new finding", f.ID, len(comments))
		}
	}
	got, _, _ := s.Get(ctx, "c1", "f-neg")
	if got.Worked == nil || *got.Worked {
		t.Errorf("Worked=false came back as %v", got.Worked)
	}
	got, _, _ = s.Get(ctx, "c1", "f-plain")
	if got.Worked != nil || got.Card != nil || got.Metrics != nil || got.Config != nil {
		t.Errorf("absent fields came back: %+v", got)
	}

	// A zero At is filled in with the store's clock.
	before := time.Now()
	noTime := add(t, s, forum.Finding{ID: "f-now", Campaign: "c1", Type: forum.TypeInsight, Title: "now"})
	if noTime.At.Before(before.Add(-time.Second)) || noTime.At.After(time.Now().Add(time.Second)) {
		t.Errorf("zero At became %v", noTime.At)
	}
	p, err := s.List(ctx, "c1", 0, 10)
	if err != nil || len(p.Findings) != 4 {
		t.Fatalf("list: %+v %v", p, err)
	}
	checkFinding(t, "List full", p.Findings[0], func() forum.Finding { f := full; f.Seq = p.Findings[0].Seq; return f }())
}

func testInvalid(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	for name, f := range map[string]forum.Finding{
		"no id":        {Campaign: "c1", Title: "x"},
		"no campaign":  {ID: "x1", Title: "x"},
		"bad metrics":  {ID: "x2", Campaign: "c1", Metrics: json.RawMessage(`{"pgr":`)},
		"bad config":   {ID: "x3", Campaign: "c1", Config: json.RawMessage(`not json`)},
		"metrics text": {ID: "x4", Campaign: "c1", Metrics: json.RawMessage(`pgr=1`)},
	} {
		if _, err := s.Add(ctx, f); err == nil {
			t.Errorf("%s: Add accepted %+v", name, f)
		}
	}
	if p, err := s.List(ctx, "c1", 0, 100); err != nil || len(p.Findings) != 0 {
		t.Errorf("refused adds stored something: %+v %v", p, err)
	}
}

func testDuplicate(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	first := add(t, s, finding("c1", "dup", "first", "one"))
	if _, err := s.Add(ctx, finding("c1", "dup", "second", "two")); !errors.Is(err, forum.ErrDuplicate) {
		t.Fatalf("second add of an id: %v, want ErrDuplicate", err)
	}
	if _, err := s.Add(ctx, finding("c2", "dup", "other campaign", "three")); !errors.Is(err, forum.ErrDuplicate) {
		t.Fatalf("add of an id used in another campaign: %v, want ErrDuplicate", err)
	}
	got, _, err := s.Get(ctx, "c1", "dup")
	if err != nil || got.Title != "first" || got.Seq != first.Seq {
		t.Fatalf("a duplicate add changed the finding: %+v %v", got, err)
	}
	// The store still works, and seqs still increase.
	next := add(t, s, finding("c1", "after", "after", "x"))
	if next.Seq <= first.Seq {
		t.Fatalf("seq %d after %d", next.Seq, first.Seq)
	}
}

func testIsolation(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	a := add(t, s, finding("c1", "a", "Pelican distillation", "the pelican body"))
	b := add(t, s, finding("c2", "b", "Pelican ensemble", "another pelican body"))
	for c, want := range map[string]forum.Finding{"c1": a, "c2": b} {
		p, err := s.List(ctx, c, 0, 100)
		if err != nil || !slices.Equal(ids(p.Findings), []string{want.ID}) {
			t.Errorf("list %s: %v %v, want [%s]", c, ids(p.Findings), err, want.ID)
		}
		fs, err := s.Search(ctx, c, "pelican", 100)
		if err != nil || !slices.Equal(ids(fs), []string{want.ID}) {
			t.Errorf("search %s: %v %v, want [%s]", c, ids(fs), err, want.ID)
		}
	}
	if p, err := s.List(ctx, "c3", 0, 100); err != nil || len(p.Findings) != 0 || p.Next != 0 {
		t.Errorf("list of an empty campaign: %+v %v", p, err)
	}
	if _, _, err := s.Get(ctx, "c2", "a"); !errors.Is(err, forum.ErrNotFound) {
		t.Errorf("get of another campaign's finding: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Get(ctx, "c1", "missing"); !errors.Is(err, forum.ErrNotFound) {
		t.Errorf("get of a missing finding: %v, want ErrNotFound", err)
	}
	if _, err := s.Comment(ctx, "c2", forum.Comment{Finding: "a", Author: "r9", Body: "hi"}); !errors.Is(err, forum.ErrNotFound) {
		t.Errorf("comment on another campaign's finding: %v, want ErrNotFound", err)
	}
	if _, err := s.Comment(ctx, "c1", forum.Comment{Finding: "missing", Author: "r9", Body: "hi"}); !errors.Is(err, forum.ErrNotFound) {
		t.Errorf("comment on a missing finding: %v, want ErrNotFound", err)
	}
	if err := s.Vote(ctx, "c2", "a", "r9", 1); !errors.Is(err, forum.ErrNotFound) {
		t.Errorf("vote on another campaign's finding: %v, want ErrNotFound", err)
	}
	if err := s.Vote(ctx, "c1", "missing", "r9", 1); !errors.Is(err, forum.ErrNotFound) {
		t.Errorf("vote on a missing finding: %v, want ErrNotFound", err)
	}
	got, comments, err := s.Get(ctx, "c1", "a")
	if err != nil || got.Score != 0 || got.Comments != 0 || len(comments) != 0 {
		t.Errorf("refused comment or vote reached the finding: %+v %v %v", got, comments, err)
	}
}

func testPaging(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	var want []string
	for i := range 25 {
		f := add(t, s, finding("c1", fmt.Sprintf("p%02d", i), fmt.Sprintf("finding %d", i), "body"))
		want = append(want, f.ID)
		if i%5 == 0 {
			add(t, s, finding("c2", fmt.Sprintf("q%02d", i), "noise", "body"))
		}
	}
	var got []string
	var since int64
	var sizes []int
	last := int64(-1)
	for range 10 {
		p, err := s.List(ctx, "c1", since, 10)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(p.Findings))
		if len(p.Findings) == 0 {
			if p.Next != since {
				t.Fatalf("empty page: Next %d, want since %d", p.Next, since)
			}
			break
		}
		for _, f := range p.Findings {
			if f.Seq <= last || f.Seq <= since {
				t.Fatalf("seq %d after %d (since %d)", f.Seq, last, since)
			}
			if f.Campaign != "c1" {
				t.Fatalf("page of c1 holds %s of %s", f.ID, f.Campaign)
			}
			last = f.Seq
			got = append(got, f.ID)
		}
		if p.Next != last {
			t.Fatalf("Next %d, want the last seq %d", p.Next, last)
		}
		since = p.Next
	}
	if !slices.Equal(sizes, []int{10, 10, 5, 0}) || !slices.Equal(got, want) {
		t.Fatalf("pages of %v: %v, want %v", sizes, got, want)
	}
	// Nothing new: Next stays where it was, also past the end.
	for _, since := range []int64{last, last + 1000} {
		if p, err := s.List(ctx, "c1", since, 10); err != nil || len(p.Findings) != 0 || p.Next != since {
			t.Fatalf("list since %d: %+v %v", since, p, err)
		}
	}
	// A finding added later shows up after the cursor.
	late := add(t, s, finding("c1", "late", "late", "body"))
	if p, err := s.List(ctx, "c1", last, 10); err != nil || !slices.Equal(ids(p.Findings), []string{"late"}) || p.Next != late.Seq {
		t.Fatalf("list after a late add: %+v %v", p, err)
	}
	// The limit is clamped to 1..1000.
	for limit, n := range map[int]int{0: 1, -5: 1, 1: 1, 7: 7, 1 << 30: 26} {
		if p, err := s.List(ctx, "c1", 0, limit); err != nil || len(p.Findings) != n {
			t.Errorf("list with limit %d: %d findings, %v; want %d", limit, len(p.Findings), err, n)
		}
	}
	if p, err := s.List(ctx, "c1", -1, 3); err != nil || !slices.Equal(ids(p.Findings), want[:3]) {
		t.Errorf("list since -1: %v %v", ids(p.Findings), err)
	}
}

func testSearch(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	add(t, s, finding("c1", "body-only", "Ensembles of weak supervisors",
		"We tried a long list of things, among them calibration of the weak model, without much gain."))
	add(t, s, finding("c1", "title", "Calibration beats calibration-free baselines",
		"Calibration of the strong student with temperature scaling; calibration matters."))
	add(t, s, finding("c1", "unrelated", "Curriculum by difficulty", "Easy examples first, then hard ones."))
	add(t, s, finding("c2", "elsewhere", "Calibration everywhere", "calibration calibration calibration"))

	fs, err := s.Search(ctx, "c1", "calibration", 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(fs), []string{"title", "body-only"}) {
		t.Fatalf("search calibration: %v, want [title body-only] (title match first, other campaign ignored)", ids(fs))
	}
	for query, want := range map[string][]string{
		"curriculum":             {"unrelated"},          // a title word
		"temperature":            {"title"},              // a body word
		"Temperature SCALING":    {"title"},              // case, several words
		"weak model calibration": {"body-only"},          // all words must match
		"supervisors":            {"body-only"},          // plural in the title
		"examples":               {"unrelated"},          // body
		"nothing-matches-this":   {},                     // no match
		"temperature curriculum": {},                     // words in different findings
		"calibrated":             {"title", "body-only"}, // stemming
	} {
		fs, err := s.Search(ctx, "c1", query, 10)
		if err != nil {
			t.Errorf("search %q: %v", query, err)
			continue
		}
		if !slices.Equal(ids(fs), want) {
			t.Errorf("search %q: %v, want %v", query, ids(fs), want)
		}
	}
	if fs, err := s.Search(ctx, "c1", "calibration", 1); err != nil || !slices.Equal(ids(fs), []string{"title"}) {
		t.Errorf("search with limit 1: %v %v", ids(fs), err)
	}
	if fs, err := s.Search(ctx, "c3", "calibration", 10); err != nil || len(fs) != 0 {
		t.Errorf("search of an empty campaign: %v %v", ids(fs), err)
	}
	// Results carry the finding's fields, score and comment count.
	if err := s.Vote(ctx, "c1", "title", "r2", 1); err != nil {
		t.Fatal(err)
	}
	if fs, err := s.Search(ctx, "c1", "temperature", 10); err != nil || len(fs) != 1 || fs[0].Score != 1 || fs[0].Campaign != "c1" || fs[0].Seq == 0 {
		t.Errorf("search result: %+v %v", fs, err)
	}
}

func testHostile(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	add(t, s, finding("c1", "x", "title x AND OR NOT", "DROP TABLE quoted \"words\" with * stars"))
	for _, q := range []string{
		`"`, `""`, `"unbalanced`, "AND OR NOT", "AND", "OR", "NOT", "NEAR", "NEAR(a b, 2)", "*", "x*", "^x", "-x", "+x",
		"title:x", "body:", ":", "(", ")", "((x)", "{title body}: x", "'; DROP TABLE forum_findings; --",
		"'; DROP TABLE", "", "   ", "\t\n", "\x00", "x\x00y", "\xff\xfe", "🙂", "a & b | !c", "<->", "x <-> y",
		"ünïcödé", "'", "\\", "%", "_", "?", "$1",
	} {
		if _, err := s.Search(ctx, "c1", q, 10); err != nil {
			t.Errorf("search %q: %v", q, err)
		}
	}
	for _, q := range []string{"", "   ", `"`, "*", "\x00", "()"} {
		if fs, err := s.Search(ctx, "c1", q, 10); err != nil || len(fs) != 0 {
			t.Errorf("search %q: %v %v, want nothing", q, ids(fs), err)
		}
	}
	// Operators are words, not syntax: they match as words or not at all.
	if fs, err := s.Search(ctx, "c1", "drop table", 10); err != nil || !slices.Equal(ids(fs), []string{"x"}) {
		t.Errorf("search drop table: %v %v", ids(fs), err)
	}
	if p, err := s.List(ctx, "c1", 0, 10); err != nil || len(p.Findings) != 1 {
		t.Fatalf("after hostile searches: %+v %v", p, err)
	}
}

func testCommentsVotes(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	f := add(t, s, finding("c1", "f", "A finding", "body"))
	other := add(t, s, finding("c1", "g", "Another", "body"))

	later, err := s.Comment(ctx, "c1", forum.Comment{ID: "c-later", Finding: "f", Author: "r2", Body: "second, by time", At: at0.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	earlier, err := s.Comment(ctx, "c1", forum.Comment{ID: "c-earlier", Finding: "f", Author: "r3", Body: "first, by time", At: at0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	auto, err := s.Comment(ctx, "c1", forum.Comment{Finding: "f", Author: "r4", Body: "no id, no time"})
	if err != nil {
		t.Fatal(err)
	}
	if auto.ID == "" || auto.At.IsZero() {
		t.Errorf("comment without id and time came back as %+v", auto)
	}
	if _, err := s.Comment(ctx, "c1", forum.Comment{ID: "c-later", Finding: "g", Author: "r2", Body: "reused id"}); !errors.Is(err, forum.ErrDuplicate) {
		t.Errorf("comment with a used id: %v, want ErrDuplicate", err)
	}

	for voter, v := range map[string]int{"r2": 1, "r3": 1, "r4": -1, "r5": 1} {
		if err := s.Vote(ctx, "c1", "f", voter, v); err != nil {
			t.Fatalf("vote %s %+d: %v", voter, v, err)
		}
	}
	if err := s.Vote(ctx, "c1", "f", "r2", -1); !errors.Is(err, forum.ErrDuplicate) {
		t.Errorf("second vote by r2: %v, want ErrDuplicate", err)
	}
	if err := s.Vote(ctx, "c1", "f", "r2", 1); !errors.Is(err, forum.ErrDuplicate) {
		t.Errorf("same vote again by r2: %v, want ErrDuplicate", err)
	}
	for _, v := range []int{0, 2, -2, 100} {
		err := s.Vote(ctx, "c1", "f", "r9", v)
		if err == nil || errors.Is(err, forum.ErrDuplicate) || errors.Is(err, forum.ErrNotFound) {
			t.Errorf("vote of %d: %v, want a value error", v, err)
		}
	}
	if err := s.Vote(ctx, "c1", "g", "r2", -1); err != nil { // r2 may vote on another finding
		t.Fatal(err)
	}

	got, comments, err := s.Get(ctx, "c1", "f")
	if err != nil {
		t.Fatal(err)
	}
	if got.Score != 2 || got.Comments != 3 || got.Seq != f.Seq {
		t.Errorf("finding f: score %d comments %d, want 2 and 3", got.Score, got.Comments)
	}
	if len(comments) != 3 {
		t.Fatalf("finding f has %d comments, want 3", len(comments))
	}
	for i, want := range []forum.Comment{earlier, later} {
		c := comments[i]
		if c.ID != want.ID || c.Finding != "f" || c.Author != want.Author || c.Body != want.Body || !c.At.Equal(want.At) {
			t.Errorf("comment %d: %+v, want %+v", i, c, want)
		}
	}
	if comments[2].ID != auto.ID || !comments[2].At.Equal(auto.At) {
		t.Errorf("comment 2: %+v, want %+v", comments[2], auto)
	}
	got, comments, err = s.Get(ctx, "c1", "g")
	if err != nil || got.Score != -1 || got.Comments != 0 || len(comments) != 0 || got.Seq != other.Seq {
		t.Errorf("finding g: %+v %v %v", got, comments, err)
	}
	p, err := s.List(ctx, "c1", 0, 10)
	if err != nil || len(p.Findings) != 2 || p.Findings[0].Score != 2 || p.Findings[0].Comments != 3 || p.Findings[1].Score != -1 {
		t.Errorf("list carries score and comments: %+v %v", p, err)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Open(t)
	const workers, each = 8, 25
	total := workers * each

	// A reader pages by cursor while the writers add: it must see every
	// finding exactly once, which needs seq order to be commit order.
	done := make(chan struct{})
	seen := map[string]int64{}
	var readErr error
	var reader sync.WaitGroup
	reader.Go(func() {
		var since int64
		for {
			finished := false
			select {
			case <-done:
				finished = true
			default:
			}
			p, err := s.List(ctx, "c1", since, 7)
			if err != nil {
				readErr = err
				return
			}
			for _, f := range p.Findings {
				if _, dup := seen[f.ID]; dup {
					readErr = fmt.Errorf("reader saw %s twice", f.ID)
					return
				}
				seen[f.ID] = f.Seq
			}
			since = p.Next
			if finished && len(p.Findings) == 0 {
				return
			}
		}
	})

	var writers sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		writers.Go(func() {
			last := int64(0)
			for i := range each {
				f, err := s.Add(ctx, finding("c1", fmt.Sprintf("w%d-%d", w, i), "concurrent", "body"))
				if err != nil {
					errs <- err
					return
				}
				if f.Seq <= last {
					errs <- fmt.Errorf("worker %d: seq %d after %d", w, f.Seq, last)
					return
				}
				last = f.Seq
			}
		})
	}
	writers.Wait()
	close(done)
	reader.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if readErr != nil {
		t.Fatal(readErr)
	}
	if len(seen) != total {
		t.Fatalf("the paging reader saw %d of %d findings: a cursor skipped some", len(seen), total)
	}
	p, err := s.List(ctx, "c1", 0, 1000)
	if err != nil || len(p.Findings) != total {
		t.Fatalf("list after concurrent adds: %d findings, %v", len(p.Findings), err)
	}
	seqs := map[int64]bool{}
	for i, f := range p.Findings {
		if seqs[f.Seq] || (i > 0 && f.Seq <= p.Findings[i-1].Seq) {
			t.Fatalf("seq %d repeated or out of order", f.Seq)
		}
		seqs[f.Seq] = true
		if seen[f.ID] != f.Seq {
			t.Fatalf("%s: reader saw seq %d, list says %d", f.ID, seen[f.ID], f.Seq)
		}
	}
}

func testReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("the backend cannot reopen a store")
	}
	ctx := t.Context()
	s := h.Open(t)
	var last forum.Finding
	for i := range 3 {
		last = add(t, s, finding("c1", fmt.Sprintf("r%d", i), "before reopen", "body"))
	}
	if err := s.Vote(ctx, "c1", "r0", "r9", 1); err != nil {
		t.Fatal(err)
	}
	s = h.Reopen(t, s)
	next := add(t, s, finding("c1", "r3", "after reopen", "body"))
	if next.Seq <= last.Seq {
		t.Fatalf("seq %d after reopen, before it %d", next.Seq, last.Seq)
	}
	p, err := s.List(ctx, "c1", 0, 10)
	if err != nil || !slices.Equal(ids(p.Findings), []string{"r0", "r1", "r2", "r3"}) || p.Findings[0].Score != 1 {
		t.Fatalf("after reopen: %+v %v", p, err)
	}
	if fs, err := s.Search(ctx, "c1", "reopen", 10); err != nil || len(fs) != 4 {
		t.Fatalf("search after reopen: %v %v", ids(fs), err)
	}
	if _, err := s.Add(ctx, finding("c1", "r0", "again", "body")); !errors.Is(err, forum.ErrDuplicate) {
		t.Fatalf("duplicate after reopen: %v", err)
	}
}

func testClose(t *testing.T, h Harness) {
	s := h.Open(t)
	add(t, s, finding("c1", "a", "a", "a"))
	for i := range 3 {
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i+1, err)
		}
	}
	if _, err := s.Add(context.Background(), finding("c1", "b", "b", "b")); err == nil {
		t.Error("add after close succeeded")
	}
}
