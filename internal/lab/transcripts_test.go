package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/store"
)

// researcher makes a researcher token in campaign c1 (which setup made).
func (e *env) researcher(name string) string {
	e.t.Helper()
	code, _, out := e.do("POST", "/v1/tokens", e.admin, map[string]string{"researcher": name, "campaign": "c1"})
	if code != 201 {
		e.t.Fatalf("token for %s: %d %v", name, code, out)
	}
	return out["token"].(string)
}

// postTranscript appends events and returns the ack.
func (e *env) postTranscript(tok string, events []map[string]any) TranscriptAck {
	e.t.Helper()
	code, _, out := e.do("POST", "/v1/transcripts", tok, map[string]any{"events": events})
	if code != 201 {
		e.t.Fatalf("append transcript: %d %v", code, out)
	}
	var ack TranscriptAck
	remarshal(e.t, out, &ack)
	return ack
}

// page reads one transcript page through the API.
func (e *env) page(tok, query string) TranscriptPage {
	e.t.Helper()
	code, _, out := e.do("GET", "/v1/transcripts"+query, tok, nil)
	if code != 200 {
		e.t.Fatalf("GET /v1/transcripts%s: %d %v", query, code, out)
	}
	var p TranscriptPage
	remarshal(e.t, out, &p)
	return p
}

func remarshal(t *testing.T, in, out any) {
	t.Helper()
	raw, _ := json.Marshal(in)
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

func (e *env) headSeq() int64 {
	e.t.Helper()
	h, err := e.db.Head(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return h.Seq
}

// batch makes n events for a researcher: sessions alternate s1, s2; every
// third is a usage event with tokens and cost, every fifth a tool call.
func batch(who string, from, n int) []map[string]any {
	var out []map[string]any
	for i := from; i < from+n; i++ {
		ev := map[string]any{"session": fmt.Sprintf("s%d", 1+i%2), "type": "message", "data": map[string]any{"who": who, "i": i}}
		switch {
		case i%3 == 0:
			ev["type"] = "usage"
			ev["usage"] = map[string]int{"input_tokens": 100 + i, "output_tokens": 10 + i, "cache_read_tokens": i, "cache_write_tokens": 1}
			ev["cost_usd"] = 0.001 * float64(i%7)
			ev["cpu_seconds"] = 0.5
		case i%5 == 0:
			ev["type"] = "tool_call"
			ev["cpu_seconds"] = 0.25
		}
		out = append(out, ev)
	}
	return out
}

// readAll pages through a transcript with the given page size, checking
// each page's continuity, and returns every entry.
func (e *env) readAll(tok, query string, limit int) []TranscriptEntry {
	e.t.Helper()
	var all []TranscriptEntry
	after := -1
	for pages := 0; ; pages++ {
		if pages > 10000 {
			e.t.Fatal("paging does not end")
		}
		p := e.page(tok, fmt.Sprintf("?limit=%d&after=%d%s", limit, after, query))
		if len(p.Events) > limit {
			e.t.Fatalf("page of %d events, limit %d", len(p.Events), limit)
		}
		all = append(all, p.Events...)
		if p.Next == nil {
			if len(all) != p.Total {
				e.t.Fatalf("read %d events, total says %d", len(all), p.Total)
			}
			return all
		}
		if len(p.Events) != limit || *p.Next != p.Events[len(p.Events)-1].Pos {
			e.t.Fatalf("a non-final page of %d events with next %d", len(p.Events), *p.Next)
		}
		after = *p.Next
	}
}

func TestTranscriptPaging(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	bob := e.researcher("bob")

	// Interleave the two researchers' batches; remember alice's seqs.
	var aliceSeqs []int64
	sizes := []int{120, 1, 250, 29}
	for i, n := range sizes {
		from := len(aliceSeqs)
		ack := e.postTranscript(alice, batch("alice", from, n))
		if ack.Count != n || ack.Last-ack.First != int64(n-1) {
			t.Fatalf("ack %+v for %d events", ack, n)
		}
		for s := ack.First; s <= ack.Last; s++ {
			aliceSeqs = append(aliceSeqs, s)
		}
		e.postTranscript(bob, batch("bob", 10*i, 10))
	}

	for _, limit := range []int{1, 37, 200, 1000} {
		all := e.readAll(alice, "", limit)
		if len(all) != len(aliceSeqs) {
			t.Fatalf("limit %d: %d events, want %d", limit, len(all), len(aliceSeqs))
		}
		for i, ev := range all {
			var d struct {
				Who string
				I   int
			}
			json.Unmarshal(ev.Data, &d)
			if ev.Pos != i || ev.Seq != aliceSeqs[i] || d.Who != "alice" || d.I != i || ev.At.IsZero() {
				t.Fatalf("limit %d: entry %d is %+v (data %s), want pos %d seq %d", limit, i, ev, ev.Data, i, aliceSeqs[i])
			}
		}
	}
	// The default page is 200; a limit over 1000 is cut to 1000.
	if p := e.page(alice, ""); len(p.Events) != DefaultTranscriptPage || p.Total != len(aliceSeqs) || *p.Next != DefaultTranscriptPage-1 {
		t.Errorf("default page: %d events, total %d, next %v", len(p.Events), p.Total, p.Next)
	}
	if p := e.page(alice, "?limit=100000&after=-5"); len(p.Events) != len(aliceSeqs) || p.Next != nil || p.Events[0].Pos != 0 {
		t.Errorf("big limit: %d events, next %v", len(p.Events), p.Next)
	}
	if p := e.page(alice, fmt.Sprintf("?after=%d", len(aliceSeqs)-1)); len(p.Events) != 0 || p.Next != nil || p.Total != len(aliceSeqs) {
		t.Errorf("past the end: %+v", p)
	}

	// Session filter: s2 holds the odd positions.
	s2 := e.readAll(alice, "&session=s2", 17)
	if len(s2) != len(aliceSeqs)/2 {
		t.Fatalf("session s2: %d events, want %d", len(s2), len(aliceSeqs)/2)
	}
	for i, ev := range s2 {
		if ev.Session != "s2" || ev.Pos != 2*i+1 || ev.Seq != aliceSeqs[2*i+1] {
			t.Fatalf("session s2 entry %d: %+v", i, ev)
		}
	}
	if p := e.page(alice, "?session=nope"); len(p.Events) != 0 || p.Total != 0 || p.Next != nil {
		t.Errorf("unknown session: %+v", p)
	}

	// Bob reads his own: 40 events, none of alice's.
	for _, ev := range e.readAll(bob, "", 15) {
		if !strings.Contains(string(ev.Data), `"bob"`) {
			t.Fatalf("bob read %s", ev.Data)
		}
	}
}

func TestTranscriptAccess(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	bob := e.researcher("bob")
	e.postTranscript(alice, batch("alice", 0, 5))
	e.postTranscript(bob, batch("bob", 0, 3))

	cases := []struct {
		name, tok, method, path string
		body                    any
		status                  int
		code                    string
	}{
		{"another researcher's transcript", bob, "GET", "/v1/transcripts?researcher=alice", nil, 403, "forbidden"},
		{"another campaign's transcript", bob, "GET", "/v1/transcripts?campaign=c2", nil, 403, "wrong_campaign"},
		{"another researcher's notebook", bob, "GET", "/v1/notebook?researcher=alice", nil, 403, "forbidden"},
		{"another researcher's spend", bob, "GET", "/v1/spend?researcher=alice", nil, 403, "forbidden"},
		{"admin without whose", e.admin, "GET", "/v1/transcripts", nil, 400, "invalid_request"},
		{"admin without researcher", e.admin, "GET", "/v1/transcripts?campaign=c1", nil, 400, "invalid_request"},
		{"admin, unknown campaign", e.admin, "GET", "/v1/transcripts?campaign=c9&researcher=alice", nil, 404, "unknown_campaign"},
		{"admin spend without campaign", e.admin, "GET", "/v1/spend", nil, 400, "invalid_request"},
		{"admin writes a transcript", e.admin, "POST", "/v1/transcripts", map[string]any{"events": batch("admin", 0, 1)}, 403, "forbidden"},
		{"admin writes a notebook", e.admin, "POST", "/v1/notebook", map[string]string{"text": "x"}, 403, "forbidden"},
		{"no token", "", "GET", "/v1/transcripts", nil, 401, "unauthorized"},
		{"bad after", alice, "GET", "/v1/transcripts?after=x", nil, 400, "invalid_request"},
	}
	for _, tc := range cases {
		code, _, out := e.do(tc.method, tc.path, tc.tok, tc.body)
		errObj, _ := out["error"].(map[string]any)
		if code != tc.status || errObj == nil || errObj["code"] != tc.code || errObj["message"] == "" {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, out, tc.status, tc.code)
		}
	}
	// The researcher parameter naming oneself is fine.
	if p := e.page(alice, "?researcher=alice&campaign=c1"); p.Total != 5 {
		t.Errorf("alice naming herself: %+v", p)
	}
	// An admin reads anyone's with campaign and researcher.
	p := e.page(e.admin, "?campaign=c1&researcher=bob&limit=2")
	if p.Total != 3 || len(p.Events) != 2 || *p.Next != 1 || !strings.Contains(string(p.Events[0].Data), "bob") {
		t.Errorf("admin read of bob: %+v", p)
	}
	if p := e.page(e.admin, "?campaign=c1&researcher=nobody"); p.Total != 0 || len(p.Events) != 0 || p.Events == nil {
		t.Errorf("admin read of a researcher without a transcript: %+v", p)
	}
}

func TestTranscriptRefusals(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	e.postTranscript(alice, batch("alice", 0, 3))
	head, count := e.headSeq(), e.countEvents(evTranscript)

	ok := func() map[string]any {
		return map[string]any{"session": "s1", "type": "note", "data": map[string]string{"x": "y"}}
	}
	with := func(mut func(m map[string]any)) map[string]any { m := ok(); mut(m); return m }
	events := func(n int, bad map[string]any, at int) string {
		evs := make([]any, n)
		for i := range evs {
			evs[i] = ok()
		}
		if bad != nil {
			evs[at] = bad
		}
		raw, _ := json.Marshal(map[string]any{"events": evs})
		return string(raw)
	}
	big := strings.Repeat("x", MaxTranscriptEvent)
	cases := []struct {
		name   string
		body   string
		status int
		code   string
		says   []string
	}{
		{"oversized event", events(4, with(func(m map[string]any) { m["data"] = map[string]string{"out": big} }), 2), 400, "event_too_large", []string{"event 2", "262144"}},
		{"501 events", events(501, nil, 0), 400, "too_many_events", []string{"501", "500"}},
		{"no events", `{"events": []}`, 400, "invalid_transcript", []string{"1 to 500"}},
		{"negative cost", events(3, with(func(m map[string]any) { m["cost_usd"] = -0.5 }), 1), 400, "invalid_transcript", []string{"event 1", "cost_usd"}},
		{"negative cpu", events(3, with(func(m map[string]any) { m["cpu_seconds"] = -1 }), 0), 400, "invalid_transcript", []string{"event 0", "cpu_seconds"}},
		{"negative tokens", events(2, with(func(m map[string]any) { m["usage"] = map[string]int{"input_tokens": 5, "output_tokens": -1} }), 1), 400, "invalid_transcript", []string{"event 1", "negative"}},
		{"NaN", `{"events": [{"session": "s1", "type": "usage", "cost_usd": NaN}]}`, 400, "invalid_json", nil},
		{"Inf", `{"events": [{"session": "s1", "type": "usage"}, {"session": "s1", "type": "usage", "cost_usd": 1e999}]}`, 400, "invalid_transcript", []string{"event 1"}},
		{"empty type", events(2, with(func(m map[string]any) { m["type"] = "" }), 1), 400, "invalid_transcript", []string{"event 1", "type"}},
		{"long type", events(2, with(func(m map[string]any) { m["type"] = strings.Repeat("t", 65) }), 0), 400, "invalid_transcript", []string{"event 0", "type", "64"}},
		{"control in type", events(1, with(func(m map[string]any) { m["type"] = "a\nb" }), 0), 400, "invalid_transcript", []string{"type"}},
		{"no session", events(2, with(func(m map[string]any) { delete(m, "session") }), 1), 400, "invalid_transcript", []string{"event 1", "session"}},
		{"long session", events(2, with(func(m map[string]any) { m["session"] = strings.Repeat("s", 129) }), 1), 400, "invalid_transcript", []string{"event 1", "session", "128"}},
		{"data not an object", events(2, with(func(m map[string]any) { m["data"] = []int{1} }), 1), 400, "invalid_transcript", []string{"event 1", "object"}},
		{"unknown field", events(2, with(func(m map[string]any) { m["colour"] = "red" }), 1), 400, "invalid_transcript", []string{"event 1", "colour"}},
		{"bad time", events(1, with(func(m map[string]any) { m["at"] = "yesterday" }), 0), 400, "invalid_transcript", []string{"event 0"}},
		{"not an object", `{"events": [1]}`, 400, "invalid_transcript", []string{"event 0"}},
		{"no events field", `{"evnts": []}`, 400, "invalid_json", nil},
	}
	for _, tc := range cases {
		code, _, out := e.do("POST", "/v1/transcripts", alice, tc.body)
		errObj, _ := out["error"].(map[string]any)
		msg, _ := errObj["message"].(string)
		if code != tc.status || errObj["code"] != tc.code || msg == "" {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, out, tc.status, tc.code)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: message %q does not say %q", tc.name, msg, s)
			}
		}
	}
	if h, n := e.headSeq(), e.countEvents(evTranscript); h != head || n != count {
		t.Errorf("refusals stored something: head %d → %d, transcript events %d → %d", head, h, count, n)
	}
	// Just under the limit is accepted.
	fits := ok()
	fits["data"] = map[string]string{"out": big[:MaxTranscriptEvent-200]}
	e.postTranscript(alice, []map[string]any{fits})
}

func TestNotebook(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	bob := e.researcher("bob")
	texts := []string{"tried logconf: +0.02 PGR", "idea: **bootstrap** the weak labels\n\nnext session: ablate", "ünïcode ✓"}
	for i, text := range texts {
		code, _, out := e.do("POST", "/v1/notebook", alice, map[string]string{"text": text})
		if code != 201 || out["text"] != text || out["seq"] == nil || out["at"] == nil {
			t.Fatalf("notebook entry %d: %d %v", i, code, out)
		}
	}
	e.do("POST", "/v1/notebook", bob, map[string]string{"text": "bob's"})
	head := e.headSeq()
	for _, bad := range []string{"", "  \n", strings.Repeat("n", MaxNotebookText+1)} {
		if code, _, out := e.do("POST", "/v1/notebook", alice, map[string]string{"text": bad}); code != 400 || out["error"].(map[string]any)["code"] != "invalid_notebook" {
			t.Errorf("bad notebook text of %d bytes: %d %v", len(bad), code, out)
		}
	}
	if e.headSeq() != head {
		t.Error("a refused notebook entry was stored")
	}
	read := func(tok, query string) []NotebookEntry {
		t.Helper()
		code, _, out := e.do("GET", "/v1/notebook"+query, tok, nil)
		if code != 200 {
			t.Fatalf("GET /v1/notebook%s: %d %v", query, code, out)
		}
		var nb struct{ Entries []NotebookEntry }
		remarshal(t, out, &nb)
		return nb.Entries
	}
	check := func(when string, got []NotebookEntry) {
		t.Helper()
		if len(got) != len(texts) {
			t.Fatalf("%s: %d entries, want %d", when, len(got), len(texts))
		}
		for i, en := range got {
			if en.Text != texts[i] || en.At.IsZero() || (i > 0 && en.Seq <= got[i-1].Seq) {
				t.Errorf("%s: entry %d is %+v", when, i, en)
			}
		}
	}
	before := read(alice, "")
	check("alice", before)
	check("admin", read(e.admin, "?campaign=c1&researcher=alice"))
	if nb := read(bob, ""); len(nb) != 1 || nb[0].Text != "bob's" {
		t.Errorf("bob's notebook: %+v", nb)
	}
	e.restart()
	after := read(alice, "")
	check("after a restart", after)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("notebook changed across a restart:\n%+v\n%+v", before, after)
	}
}

// TestSpendAndRestart checks the spend totals against the sums of the
// inputs, and that a restart rebuilds the index, the pages and the totals
// exactly; the ledger still verifies.
func TestSpendAndRestart(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	bob := e.researcher("bob")
	e.researcher("carol") // a token, no transcript

	var want = map[string]*Spend{"alice": {Researcher: "alice", Campaign: "c1"}, "bob": {Researcher: "bob", Campaign: "c1"}}
	add := func(who string, evs []map[string]any) {
		s := want[who]
		sessions := map[string]bool{}
		for _, ev := range evs {
			s.TranscriptEvents++
			if u, ok := ev["usage"].(map[string]int); ok {
				s.InputTokens += int64(u["input_tokens"])
				s.OutputTokens += int64(u["output_tokens"])
				s.CacheReadTokens += int64(u["cache_read_tokens"])
				s.CacheWriteTokens += int64(u["cache_write_tokens"])
			}
			c, _ := ev["cost_usd"].(float64)
			s.CostUSD += c
			cpu, _ := ev["cpu_seconds"].(float64)
			s.CPUSeconds += cpu
			switch ev["type"] {
			case "usage":
				s.ModelCalls++
			case "tool_call":
				s.ToolCalls++
			}
			sessions[ev["session"].(string)] = true
		}
		s.Sessions = len(sessions)
	}
	for i := range 3 {
		a := batch("alice", 100*i, 100)
		e.postTranscript(alice, a)
		add("alice", a)
		b := batch("bob", 10*i, 7)
		b[0]["session"] = fmt.Sprintf("bob-%d", i)
		e.postTranscript(bob, b)
		add("bob", b)
	}
	want["bob"].Sessions = 5 // s1, s2 and bob-0..2

	spendOf := func(tok, query string) map[string]any {
		t.Helper()
		code, _, out := e.do("GET", "/v1/spend"+query, tok, nil)
		if code != 200 {
			t.Fatalf("GET /v1/spend%s: %d %v", query, code, out)
		}
		return out
	}
	asSpend := func(m any) Spend {
		var s Spend
		remarshal(t, m, &s)
		return s
	}
	checkSpend := func(when string) {
		t.Helper()
		for who, tok := range map[string]string{"alice": alice, "bob": bob} {
			if got := asSpend(spendOf(tok, "")); got != *want[who] {
				t.Errorf("%s: %s's spend\n got %+v\nwant %+v", when, who, got, *want[who])
			}
		}
		var cs CampaignSpend
		remarshal(t, spendOf(e.admin, "?campaign=c1"), &cs)
		if len(cs.Researchers) != 3 || cs.Researchers[0] != *want["alice"] || cs.Researchers[1] != *want["bob"] ||
			cs.Researchers[2] != (Spend{Researcher: "carol", Campaign: "c1"}) {
			t.Errorf("%s: campaign researchers %+v", when, cs.Researchers)
		}
		a, b := want["alice"], want["bob"]
		if cs.Total.InputTokens != a.InputTokens+b.InputTokens || cs.Total.ModelCalls != a.ModelCalls+b.ModelCalls ||
			cs.Total.CostUSD != a.CostUSD+b.CostUSD || cs.Total.Sessions != a.Sessions+b.Sessions || cs.Total.TranscriptEvents != 321 || cs.Total.Researcher != "" {
			t.Errorf("%s: campaign total %+v", when, cs.Total)
		}
		if got := asSpend(spendOf(e.admin, "?campaign=c1&researcher=bob")); got != *want["bob"] {
			t.Errorf("%s: admin's view of bob's spend %+v", when, got)
		}
	}
	checkSpend("live")
	if a := want["alice"]; a.ModelCalls != 100 || a.ToolCalls == 0 || a.CostUSD == 0 || a.InputTokens == 0 {
		t.Fatalf("the fixture does not exercise the counters: %+v", a)
	}

	pages := func() []TranscriptPage {
		var ps []TranscriptPage
		for _, q := range []string{"?limit=50", "?after=120&limit=77", "?session=s1&after=33&limit=40", "?after=280"} {
			ps = append(ps, e.page(alice, q))
		}
		return ps
	}
	before := pages()
	e.lab.mu.Lock()
	indexBefore := fmt.Sprintf("%+v", *e.lab.transcripts[researcherKey("c1", "alice")])
	e.lab.mu.Unlock()

	e.restart()
	checkSpend("after a restart")
	if after := pages(); !reflect.DeepEqual(before, after) {
		t.Errorf("pages differ after a restart:\n%+v\n%+v", before, after)
	}
	e.lab.mu.Lock()
	indexAfter := fmt.Sprintf("%+v", *e.lab.transcripts[researcherKey("c1", "alice")])
	e.lab.mu.Unlock()
	if indexBefore != indexAfter {
		t.Error("the transcript index differs after a restart")
	}
	// Appends after the restart continue the positions.
	ack := e.postTranscript(alice, batch("alice", 300, 2))
	p := e.page(alice, "?after=299")
	if p.Total != 302 || len(p.Events) != 2 || p.Events[0].Pos != 300 || p.Events[0].Seq != ack.First || p.Events[1].Seq != ack.Last {
		t.Errorf("after a restart and an append: %+v", p)
	}
	if r, err := store.Verify(context.Background(), e.db, nil, nil); err != nil || !r.OK {
		t.Fatalf("ledger: %+v %v", r, err)
	}
}

// The typed method refuses what the HTTP layer cannot express (NaN, Inf).
func TestAppendTranscriptRefusesNonFinite(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	id := e.lab.Authenticate(alice)
	head := e.headSeq()
	for _, ev := range []TranscriptEvent{
		{Session: "s", Type: "usage", CostUSD: math.NaN()},
		{Session: "s", Type: "usage", CPUSeconds: math.Inf(1)},
	} {
		_, err := e.lab.AppendTranscript(context.Background(), id, []TranscriptEvent{{Session: "s", Type: "note"}, ev})
		if pe := asPublic(err); pe.Status != 400 || !strings.Contains(pe.Message, "event 1") {
			t.Errorf("%+v: %v", ev, err)
		}
	}
	if e.headSeq() != head {
		t.Error("a refused batch was stored")
	}
	if _, err := e.lab.Transcript(context.Background(), id, TranscriptQuery{Researcher: "alice", After: -1}); err != nil {
		t.Error(err)
	}
}
