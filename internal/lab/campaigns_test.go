package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/forum"
	forumsqlite "github.com/aar-lab/aar/internal/forum/sqlite"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
)

// get decodes a JSON answer into out and returns the status and raw body.
func (e *env) get(path, tok string, out any) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("GET %s: %v: %s", path, err, raw)
		}
	}
	return resp.StatusCode, raw
}

// errCode is an error answer's code.
func errCode(out map[string]any) string {
	m, _ := out["error"].(map[string]any)
	s, _ := m["code"].(string)
	return s
}

// withForum gives the lab a SQLite forum store (again after a restart).
func (e *env) withForum() forum.Store {
	e.t.Helper()
	fs, err := forumsqlite.Open(context.Background(), filepath.Join(e.dir, "forum.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { fs.Close() })
	e.lab.cfg.Forum = fs
	return fs
}

func TestCampaignSpec(t *testing.T) {
	e := newEnv(t, 0)
	spec := "{\n  \"name\": \"w2s <b> & c\",\n  \"researchers\": [ {\"name\": \"alice\", \"budget_usd\": 5} ],\n  \"nested\": {\"a\": [1, 2.5, null, true]}\n}"
	var compact bytes.Buffer
	json.Compact(&compact, []byte(spec))
	sum := sha256.Sum256(compact.Bytes())
	want := hex.EncodeToString(sum[:])

	body := `{"id": "c1", "testbed": "chat", "spec": ` + spec + `, "spec_sha256": "forged", "stopped": true}`
	code, _, out := e.do("POST", "/v1/campaigns", e.admin, body)
	if code != 201 || out["spec_sha256"] != want || out["stopped"] != nil {
		t.Fatalf("create: %d %v (want sha %s)", code, out, want)
	}
	check := func(when string) {
		t.Helper()
		var ci CampaignInfo
		if code, raw := e.get("/v1/campaigns/c1", e.admin, &ci); code != 200 {
			t.Fatalf("%s: %d %s", when, code, raw)
		}
		got := sha256.Sum256(ci.Spec)
		if ci.SpecSHA256 != want || hex.EncodeToString(got[:]) != want || !bytes.Equal(ci.Spec, compact.Bytes()) || ci.Stopped {
			t.Errorf("%s: spec %s sha %s, want %s sha %s", when, ci.Spec, ci.SpecSHA256, compact.Bytes(), want)
		}
	}
	check("live")
	var ev struct {
		Spec       json.RawMessage `json:"spec"`
		SpecSHA256 string          `json:"spec_sha256"`
	}
	e.db.Scan(context.Background(), 1, func(x store.Event) error {
		if x.Kind == evCampaign {
			json.Unmarshal(x.Body, &ev)
		}
		return nil
	})
	if ev.SpecSHA256 != want || !bytes.Equal(ev.Spec, compact.Bytes()) || bytes.Contains(ev.Spec, []byte(`\u003c`)) {
		t.Errorf("ledger event: %s %s", ev.Spec, ev.SpecSHA256)
	}
	e.restart()
	check("after a restart")

	// Without a spec: none; a bad spec is refused and stores nothing.
	if code, _, out := e.do("POST", "/v1/campaigns", e.admin, map[string]any{"id": "c2", "testbed": "chat"}); code != 201 || out["spec"] != nil || out["spec_sha256"] != nil {
		t.Fatalf("no spec: %d %v", code, out)
	}
	head := e.headSeq()
	for name, spec := range map[string]string{
		"array":    `[1, 2]`,
		"string":   `"x"`,
		"too long": `{"x": "` + strings.Repeat("a", MaxSpec) + `"}`,
	} {
		code, _, out := e.do("POST", "/v1/campaigns", e.admin, `{"id": "c3", "testbed": "chat", "spec": `+spec+`}`)
		if code != 400 || errCode(out) != "invalid_spec" {
			t.Errorf("%s spec: %d %v", name, code, out)
		}
	}
	if e.headSeq() != head {
		t.Error("a refused campaign stored something")
	}
}

// control posts a control request.
func (e *env) control(campaign string, req map[string]any) (int, map[string]any) {
	e.t.Helper()
	code, _, out := e.do("POST", "/v1/campaigns/"+campaign+"/control", e.admin, req)
	return code, out
}

func (e *env) myControl(tok string, since int64) ControlState {
	e.t.Helper()
	var st ControlState
	if code, raw := e.get("/v1/control?since="+itoa(since), tok, &st); code != 200 {
		e.t.Fatalf("GET /v1/control: %d %s", code, raw)
	}
	return st
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestControl(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	bob := e.researcher("bob")

	// Refusals store nothing.
	head := e.headSeq()
	long := strings.Repeat("x", MaxControlText+1)
	refusals := []struct {
		name     string
		campaign string
		req      map[string]any
		status   int
		code     string
	}{
		{"unknown action", "c1", map[string]any{"action": "explode", "researcher": "alice"}, 400, "invalid_control"},
		{"no action", "c1", map[string]any{"researcher": "alice"}, 400, "invalid_control"},
		{"unknown researcher", "c1", map[string]any{"action": "pause", "researcher": "zed"}, 404, "unknown_researcher"},
		{"no researcher", "c1", map[string]any{"action": "pause"}, 404, "unknown_researcher"},
		{"resume unknown", "c1", map[string]any{"action": "resume", "researcher": "zed"}, 404, "unknown_researcher"},
		{"stop unknown", "c1", map[string]any{"action": "stop", "researcher": "zed"}, 404, "unknown_researcher"},
		{"note unknown", "c1", map[string]any{"action": "note", "researcher": "zed", "text": "hi"}, 404, "unknown_researcher"},
		{"empty note", "c1", map[string]any{"action": "note", "researcher": "alice", "text": "  "}, 400, "invalid_control"},
		{"note too long", "c1", map[string]any{"action": "note", "researcher": "alice", "text": long}, 400, "invalid_control"},
		{"config with pause", "c1", map[string]any{"action": "pause", "researcher": "alice", "config": map[string]int{"x": 1}}, 400, "invalid_control"},
		{"config not an object", "c1", map[string]any{"action": "add", "researcher": "carol", "config": []int{1}}, 400, "invalid_control"},
		{"add bad name", "c1", map[string]any{"action": "add", "researcher": "Carol Smith"}, 400, "invalid_researcher"},
		{"add with a token", "c1", map[string]any{"action": "add", "researcher": "alice"}, 409, "researcher_exists"},
		{"unknown campaign", "c9", map[string]any{"action": "stop"}, 404, "unknown_campaign"},
		{"unknown field", "c1", map[string]any{"action": "stop", "reason": "x"}, 400, "invalid_json"},
	}
	for _, tc := range refusals {
		code, out := e.control(tc.campaign, tc.req)
		if code != tc.status || errCode(out) != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, out, tc.status, tc.code)
		}
	}
	if _, out := e.control("c1", map[string]any{"action": "explode"}); !strings.Contains(fmtErr(out), "pause, resume, stop, add, note") {
		t.Errorf("unknown action's message does not name the actions: %v", out)
	}
	if code, _, _ := e.do("POST", "/v1/campaigns/c1/control", alice, map[string]any{"action": "stop"}); code != 403 {
		t.Errorf("a researcher controlled the campaign: %d", code)
	}
	if code, _ := e.get("/v1/control", e.admin, nil); code != 403 {
		t.Errorf("admin GET /v1/control: %d", code)
	}
	if e.headSeq() != head {
		t.Fatal("a refused control request stored something")
	}

	// Transitions as the researcher sees them.
	if st := e.myControl(alice, 0); st.State != StateRunning || st.CampaignStopped || len(st.Notes) != 0 || st.Next != 0 {
		t.Fatalf("initial: %+v", st)
	}
	seqOf := func(out map[string]any) int64 {
		t.Helper()
		s, ok := out["seq"].(float64)
		if !ok || out["at"] == nil {
			t.Fatalf("control answer: %v", out)
		}
		return int64(s)
	}
	expect := func(status int, req map[string]any) int64 {
		t.Helper()
		code, out := e.control("c1", req)
		if code != status {
			t.Fatalf("%v: %d %v", req, code, out)
		}
		if status == 201 {
			return seqOf(out)
		}
		return 0
	}
	pause := expect(201, map[string]any{"action": "pause", "researcher": "alice", "text": "hold on"})
	if pause != e.headSeq() {
		t.Errorf("seq %d is not the ledger head %d", pause, e.headSeq())
	}
	if st := e.myControl(alice, 0); st.State != StatePaused {
		t.Errorf("after pause: %+v", st)
	}
	if st := e.myControl(bob, 0); st.State != StateRunning {
		t.Errorf("bob after alice's pause: %+v", st)
	}
	n1 := expect(201, map[string]any{"action": "note", "researcher": "alice", "text": "look at the OOD cell"})
	n2 := expect(201, map[string]any{"action": "note", "researcher": "alice", "text": "and the ID cell"})
	expect(201, map[string]any{"action": "note", "researcher": "bob", "text": "for bob"})
	st := e.myControl(alice, 0)
	if len(st.Notes) != 2 || st.Notes[0].Seq != n1 || st.Notes[1].Text != "and the ID cell" || st.Next != n2 || st.Notes[0].At.IsZero() {
		t.Fatalf("notes: %+v", st)
	}
	if st := e.myControl(alice, n1); len(st.Notes) != 1 || st.Notes[0].Seq != n2 || st.Next != n2 {
		t.Errorf("notes after %d: %+v", n1, st)
	}
	if st := e.myControl(alice, n2); len(st.Notes) != 0 || st.Next != n2 {
		t.Errorf("notes after the last: %+v", st)
	}
	expect(201, map[string]any{"action": "resume", "researcher": "alice"})
	if st := e.myControl(alice, n2); st.State != StateRunning {
		t.Errorf("after resume: %+v", st)
	}
	expect(201, map[string]any{"action": "stop", "researcher": "alice", "text": "budget"})
	if st := e.myControl(alice, n2); st.State != StateStopped || st.CampaignStopped {
		t.Errorf("after stop: %+v", st)
	}
	head = e.headSeq()
	for _, action := range []string{"resume", "pause"} {
		if code, out := e.control("c1", map[string]any{"action": action, "researcher": "alice"}); code != 409 || errCode(out) != "researcher_stopped" {
			t.Errorf("%s after stop: %d %v", action, code, out)
		}
	}
	if e.headSeq() != head {
		t.Error("a refused resume stored something")
	}
	// A note still reaches a stopped researcher.
	expect(201, map[string]any{"action": "note", "researcher": "alice", "text": "thanks"})

	// add: the supervisor's settings for a researcher who has no token yet.
	code, _, out := e.do("POST", "/v1/campaigns/c1/control", e.admin, `{"action": "add", "researcher": "carol", "config": {"direction": "try <ensembles> & more", "budget_usd": 3}}`)
	if code != 201 {
		t.Fatalf("add: %d %v", code, out)
	}
	add := seqOf(out)
	if code, out := e.control("c1", map[string]any{"action": "add", "researcher": "carol"}); code != 409 || errCode(out) != "researcher_exists" {
		t.Errorf("add twice: %d %v", code, out)
	}
	var evs struct{ Events []ControlEvent }
	if code, raw := e.get("/v1/campaigns/c1/control?since=0", e.admin, &evs); code != 200 || len(evs.Events) != 8 {
		t.Fatalf("control events: %d %s", code, raw)
	}
	last := evs.Events[len(evs.Events)-1]
	if evs.Events[0].Seq != pause || evs.Events[0].Action != "pause" || evs.Events[0].Text != "hold on" ||
		last.Seq != add || last.Action != "add" || last.Researcher != "carol" || string(last.Config) != `{"direction":"try <ensembles> & more","budget_usd":3}` {
		t.Errorf("control events: %+v", evs.Events)
	}
	for i := 1; i < len(evs.Events); i++ {
		if evs.Events[i].Seq <= evs.Events[i-1].Seq {
			t.Errorf("control events out of order: %+v", evs.Events)
		}
	}
	if code, raw := e.get("/v1/campaigns/c1/control?since="+itoa(n2), e.admin, &evs); code != 200 || len(evs.Events) != 5 || evs.Events[0].Action != "note" || evs.Events[0].Researcher != "bob" {
		t.Errorf("control events after %d: %d %s", n2, code, raw)
	}
	if code, _ := e.get("/v1/campaigns/c1/control?since=x", e.admin, nil); code != 400 {
		t.Errorf("since=x: %d", code)
	}

	// Stopping the campaign stops everyone, for good.
	expect(201, map[string]any{"action": "stop", "text": "done"})
	if st := e.myControl(bob, 0); st.State != StateStopped || !st.CampaignStopped || len(st.Notes) != 1 {
		t.Errorf("bob after the campaign stop: %+v", st)
	}
	head = e.headSeq()
	if code, out := e.control("c1", map[string]any{"action": "resume", "researcher": "bob"}); code != 409 || errCode(out) != "campaign_stopped" {
		t.Errorf("resume in a stopped campaign: %d %v", code, out)
	}
	if code, out := e.control("c1", map[string]any{"action": "add", "researcher": "dave"}); code != 409 || errCode(out) != "campaign_stopped" {
		t.Errorf("add to a stopped campaign: %d %v", code, out)
	}
	if e.headSeq() != head {
		t.Error("a refusal after the campaign stop stored something")
	}
	var ci CampaignInfo
	e.get("/v1/campaigns/c1", e.admin, &ci)
	if !ci.Stopped || len(ci.Researchers) != 3 || ci.Researchers[2].Name != "carol" || ci.Researchers[2].State != StateStopped {
		t.Errorf("campaign after stop: %+v", ci)
	}

	// All of it is rebuilt from the ledger.
	before := e.myControl(alice, 0)
	e.restart()
	after := e.myControl(alice, 0)
	if raw1, raw2 := mustJSON(t, before), mustJSON(t, after); raw1 != raw2 {
		t.Errorf("alice's control after a restart:\n%s\nbefore:\n%s", raw2, raw1)
	}
	var again struct{ Events []ControlEvent }
	if e.get("/v1/campaigns/c1/control", e.admin, &again); len(again.Events) != 9 {
		t.Errorf("%d control events after a restart, want 9", len(again.Events))
	}
	if st := e.myControl(bob, 0); !st.CampaignStopped || st.State != StateStopped {
		t.Errorf("bob after a restart: %+v", st)
	}
	if n := e.countEvents(evControl); n != 9 {
		t.Errorf("%d control ledger events, want 9", n)
	}
}

func fmtErr(out map[string]any) string {
	m, _ := out["error"].(map[string]any)
	s, _ := m["message"].(string)
	return s
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// overallPGR is a submission answer's released overall feedback PGR mean.
func overallPGR(t *testing.T, out map[string]any) float64 {
	t.Helper()
	var r SubmitResponse
	remarshal(t, out, &r)
	p := releasedPGR(r.Feedback)
	if p == nil {
		t.Fatalf("no released PGR: %v", out)
	}
	return p.Mean
}

func TestCampaignListing(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	e.researcher("bob")
	right := e.preds(func(i int, r testbed.Row) int { return r.Label })
	half := e.preds(func(i int, r testbed.Row) int {
		if i%2 == 0 {
			return r.Label
		}
		return (i / 7) % 2
	})
	best := -10.0
	for _, p := range [][]int{half, right} {
		code, _, out := e.do("POST", "/v1/submissions", alice, map[string]any{"seeds": map[string]any{"1": p, "2": p}})
		if code != 201 {
			t.Fatalf("submit: %d %v", code, out)
		}
		best = max(best, overallPGR(t, out))
	}
	e.postTranscript(alice, batch("alice", 0, 12))
	if code, _ := e.control("c1", map[string]any{"action": "add", "researcher": "carol", "config": map[string]any{"model": "m"}}); code != 201 {
		t.Fatal(code)
	}
	e.control("c1", map[string]any{"action": "pause", "researcher": "bob"})
	if code, _, out := e.do("POST", "/v1/campaigns", e.admin, map[string]any{"id": "a0", "testbed": "chat"}); code != 201 {
		t.Fatalf("second campaign: %d %v", code, out)
	}

	var list struct{ Campaigns []CampaignInfo }
	if code, raw := e.get("/v1/campaigns", e.admin, &list); code != 200 || len(list.Campaigns) != 2 || list.Campaigns[0].ID != "c1" || list.Campaigns[1].ID != "a0" {
		t.Fatalf("list (by creation): %d %s", code, raw)
	}
	var ci CampaignInfo
	code, raw := e.get("/v1/campaigns/c1", e.admin, &ci)
	if code != 200 || ci.Testbed != "chat" || ci.Policy != "default" || ci.Quota.PerResearcherPerHour != 30 || ci.Created.IsZero() || ci.Stopped {
		t.Fatalf("show: %d %s", code, raw)
	}
	names := []string{}
	for _, r := range ci.Researchers {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "alice,bob,carol" {
		t.Fatalf("researchers %v", names)
	}
	a, b, c := ci.Researchers[0], ci.Researchers[1], ci.Researchers[2]
	if a.State != StateRunning || a.Submissions != 2 || a.BestFeedbackPGR == nil || *a.BestFeedbackPGR != best {
		t.Errorf("alice: %+v (best %v, want %v)", a, a.BestFeedbackPGR, best)
	}
	if b.State != StatePaused || b.Submissions != 0 || b.BestFeedbackPGR != nil || c.State != StateRunning || c.Submissions != 0 {
		t.Errorf("bob %+v, carol %+v", b, c)
	}
	var spend Spend
	e.get("/v1/spend?campaign=c1&researcher=alice", e.admin, &spend)
	if a.Spend != spend || spend.TranscriptEvents != 12 || spend.ModelCalls == 0 {
		t.Errorf("alice's spend %+v, GET /v1/spend %+v", a.Spend, spend)
	}
	for _, s := range []string{`"best_feedback_pgr":null`, `"spend":{`, `"spec":null`, `"spec_sha256":""`, `"stopped":false`} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("campaign JSON lacks %s: %s", s, raw)
		}
	}
	// The list holds the same figures.
	if mustJSON(t, list.Campaigns[0]) != mustJSON(t, ci) {
		t.Errorf("list and show disagree:\n%s\n%s", mustJSON(t, list.Campaigns[0]), mustJSON(t, ci))
	}
	if code, _ := e.get("/v1/campaigns/c9", e.admin, nil); code != 404 {
		t.Errorf("unknown campaign: %d", code)
	}
	if code, _ := e.get("/v1/campaigns", alice, nil); code != 403 {
		t.Errorf("a researcher listed campaigns: %d", code)
	}
}

func TestCampaignSubmissions(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	bob := e.researcher("bob")
	right := e.preds(func(i int, r testbed.Row) int { return r.Label })
	mixed := e.preds(func(i int, r testbed.Row) int { return (i / 3) % 2 })
	var ids []string
	for i, sub := range []struct {
		tok  string
		body map[string]any
	}{
		{alice, map[string]any{"seeds": map[string]any{"1": mixed, "2": mixed, "3": mixed}, "note": "mixed"}},
		{bob, map[string]any{"predictions": right}},
		{alice, map[string]any{"predictions": right}},
	} {
		code, _, out := e.do("POST", "/v1/submissions", sub.tok, sub.body)
		if code != 201 {
			t.Fatalf("submission %d: %d %v", i, code, out)
		}
		ids = append(ids, out["id"].(string))
	}
	var got struct{ Submissions []SubmissionInfo }
	code, raw := e.get("/v1/campaigns/c1/submissions", e.admin, &got)
	if code != 200 || len(got.Submissions) != 3 {
		t.Fatalf("%d %s", code, raw)
	}
	for i, s := range got.Submissions {
		if s.ID != ids[i] {
			t.Errorf("submission %d is %s, want %s (ledger order)", i, s.ID, ids[i])
		}
		splits := map[string]bool{}
		for _, c := range s.Cells {
			splits[c.Split] = true
			if c.Accuracy == nil || c.Rows == 0 {
				t.Errorf("cell without figures: %+v", c)
			}
		}
		if !splits[testbed.SplitFeedback] || !splits[testbed.SplitHoldout] || s.Feedback == nil || s.Flags == nil {
			t.Errorf("submission %s: %+v", s.ID, s)
		}
	}
	if s := got.Submissions[0]; s.Seeds != 3 || s.Note != "mixed" || s.Researcher != "alice" || s.At.IsZero() {
		t.Errorf("first submission: %+v", s)
	}
	if s := got.Submissions[2]; len(s.Flags) == 0 || !strings.Contains(mustJSON(t, s.Flags), "near_duplicate") {
		t.Errorf("bob's twin not flagged in the listing: %+v", s.Flags)
	}
	for _, forbidden := range []string{"predictions", "accuracy_per_seed", "pgr_per_seed"} {
		if bytes.Contains(raw, []byte(forbidden)) {
			t.Errorf("the listing holds %q", forbidden)
		}
	}
	if code, _ := e.get("/v1/campaigns/c1/submissions", alice, nil); code != 403 {
		t.Errorf("a researcher listed submissions: %d", code)
	}
	if code, _ := e.get("/v1/campaigns/c9/submissions", e.admin, nil); code != 404 {
		t.Errorf("unknown campaign: %d", code)
	}
}

func TestFindingIdempotency(t *testing.T) {
	e := newEnv(t, 0)
	e.withForum()
	alice := e.setup("default", QuotaSpec{})
	bob := e.researcher("bob")
	finding := map[string]any{"type": "insight", "title": "weak labels are noisy", "family": "other", "body": "b", "metrics": map[string]any{"x": 1}}

	code, _, first := e.do("POST", "/v1/findings", alice, finding, "Idempotency-Key", "run-1/finding-1")
	if code != 201 {
		t.Fatalf("first: %d %v", code, first)
	}
	head := e.headSeq()
	code, _, again := e.do("POST", "/v1/findings", alice, finding, "Idempotency-Key", "run-1/finding-1")
	if code != 200 || again["id"] != first["id"] || again["title"] != first["title"] {
		t.Fatalf("retry: %d %v, first %v", code, again, first)
	}
	changed := map[string]any{"type": "insight", "title": "weak labels are clean", "family": "other", "body": "b"}
	if code, _, out := e.do("POST", "/v1/findings", alice, changed, "Idempotency-Key", "run-1/finding-1"); code != 409 || errCode(out) != "idempotency_conflict" {
		t.Errorf("same key, another finding: %d %v", code, out)
	}
	if code, _, out := e.do("POST", "/v1/findings", alice, finding, "Idempotency-Key", strings.Repeat("k", MaxFindingKey+1)); code != 400 {
		t.Errorf("long key: %d %v", code, out)
	}
	if e.headSeq() != head || e.countEvents(evFinding) != 1 {
		t.Fatalf("a retry or refusal stored something: head %d → %d, %d findings", head, e.headSeq(), e.countEvents(evFinding))
	}
	// The key is per author; no key is no idempotency.
	if code, _, out := e.do("POST", "/v1/findings", bob, finding, "Idempotency-Key", "run-1/finding-1"); code != 201 || out["id"] == first["id"] {
		t.Errorf("bob with alice's key: %d %v", code, out)
	}
	for range 2 {
		if code, _, _ := e.do("POST", "/v1/findings", alice, finding); code != 201 {
			t.Errorf("no key: %d", code)
		}
	}
	if n := e.countEvents(evFinding); n != 4 {
		t.Fatalf("%d findings, want 4", n)
	}

	// The index survives a restart.
	e.restart()
	e.withForum()
	if code, _, out := e.do("POST", "/v1/findings", alice, finding, "Idempotency-Key", "run-1/finding-1"); code != 200 || out["id"] != first["id"] {
		t.Errorf("retry after a restart: %d %v", code, out)
	}
	if code, _, out := e.do("POST", "/v1/findings", alice, changed, "Idempotency-Key", "run-1/finding-1"); code != 409 {
		t.Errorf("conflict after a restart: %d %v", code, out)
	}

	// A finding the ledger has but the forum store lacks (the first
	// request failed between the writes) is stored by the retry.
	lost := findingEvent{Finding: forum.Finding{ID: "fnd_lost", Campaign: "c1", Author: "alice", Type: "insight", Title: "lost", Family: "other", Body: "b"}, IdemKey: "k-lost"}
	lost.Request = findingRequestHash(forum.Finding{Type: "insight", Title: "lost", Family: "other", Body: "b"})
	if _, err := e.db.Append(context.Background(), store.Input{Kind: evFinding, Actor: "alice", Campaign: "c1", Body: lost}); err != nil {
		t.Fatal(err)
	}
	e.restart() // without a forum: no repair at start
	fs := e.withForum()
	code, _, out := e.do("POST", "/v1/findings", alice, map[string]any{"type": "insight", "title": "lost", "family": "other", "body": "b"}, "Idempotency-Key", "k-lost")
	if code != 200 || out["id"] != "fnd_lost" {
		t.Fatalf("retry of a half-stored finding: %d %v", code, out)
	}
	if _, _, err := fs.Get(context.Background(), "c1", "fnd_lost"); err != nil {
		t.Errorf("the retry did not store the finding: %v", err)
	}
}

func TestSnapshotDedup(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	bob := e.researcher("bob")
	push := func(tok string, files map[string]string, parent string) (int, string) {
		t.Helper()
		q := ""
		if parent != "" {
			q = "?parent=" + parent
		}
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/snapshots"+q, bytes.NewReader(tarGz(t, files)))
		req.Header.Set("Content-Type", "application/gzip")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m SnapshotMeta
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m.ID
	}
	a := map[string]string{"a.py": "x = 1\n"}
	b := map[string]string{"a.py": "x = 2\n"}
	code, first := push(alice, a, "")
	if code != 201 {
		t.Fatalf("push: %d", code)
	}
	if code, id := push(alice, a, ""); code != 200 || id != first {
		t.Fatalf("same tree, same parent: %d %s, want 200 %s", code, id, first)
	}
	if n := e.countEvents(evSnapshot); n != 1 {
		t.Fatalf("%d snapshot events after a repeat, want 1", n)
	}
	code, child := push(alice, b, first)
	if code != 201 || child == first {
		t.Fatalf("child: %d %s", code, child)
	}
	// The same tree under another parent, or from another author, is new.
	code, other := push(alice, a, child)
	if code != 201 || other == first {
		t.Errorf("same tree, another parent: %d %s", code, other)
	}
	if code, id := push(bob, a, ""); code != 201 || id == first {
		t.Errorf("bob's push of alice's tree: %d %s", code, id)
	}
	if n := e.countEvents(evSnapshot); n != 4 {
		t.Errorf("%d snapshot events, want 4", n)
	}
	e.restart()
	if code, id := push(alice, b, first); code != 200 || id != child {
		t.Errorf("repeat after a restart: %d %s, want %s", code, id, child)
	}
	if n := e.countEvents(evSnapshot); n != 4 {
		t.Errorf("%d snapshot events after the restart's repeat, want 4", n)
	}
}

func TestExportEvents(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.setup("default", QuotaSpec{})
	mixed := e.preds(func(i int, r testbed.Row) int { return (i / 3) % 2 })
	e.do("POST", "/v1/submissions", alice, map[string]any{"predictions": mixed})
	e.postTranscript(alice, batch("alice", 0, 7))
	e.control("c1", map[string]any{"action": "note", "researcher": "alice", "text": "<b> & co"})
	// Another campaign's events interleave.
	e.do("POST", "/v1/campaigns", e.admin, map[string]any{"id": "c2", "testbed": "chat"})
	_, _, tok := e.do("POST", "/v1/tokens", e.admin, map[string]string{"researcher": "bob", "campaign": "c2"})
	bob := tok["token"].(string)
	e.postTranscript(bob, batch("bob", 0, 5))
	e.postTranscript(alice, batch("alice", 7, 3))
	e.do("DELETE", "/v1/tokens/"+alice, e.admin, nil)

	var want []store.Event
	e.db.Scan(context.Background(), 1, func(ev store.Event) error {
		if ev.Campaign == "c1" {
			want = append(want, ev)
		}
		return nil
	})
	export := func(query string) (int, http.Header, []ExportEvent) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/campaigns/c1/events"+query, nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []ExportEvent
		if resp.StatusCode != 200 {
			return resp.StatusCode, resp.Header, nil
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev ExportEvent
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			out = append(out, ev)
		}
		return resp.StatusCode, resp.Header, out
	}
	code, hdr, got := export("")
	if code != 200 || hdr.Get("Content-Type") != "application/x-ndjson" || len(got) != len(want) {
		t.Fatalf("export: %d %s, %d events, want %d", code, hdr.Get("Content-Type"), len(got), len(want))
	}
	kinds := map[string]int{}
	for i, ev := range got {
		w := want[i]
		if ev.Seq != w.Seq || ev.Campaign != "c1" || ev.Kind != w.Kind || ev.Actor != w.Actor || !ev.At.Equal(w.At) ||
			!bytes.Equal(ev.Body, w.Body) || ev.Hash != hex.EncodeToString(w.Hash) {
			t.Fatalf("event %d: %+v, ledger %+v", i, ev, w)
		}
		kinds[ev.Kind]++
	}
	if kinds[evCampaign] != 1 || kinds[evToken] != 1 || kinds[evRevoke] != 1 || kinds[evAccepted] != 1 || kinds[evTranscript] != 10 || kinds[evControl] != 1 || kinds[evInit] != 0 {
		t.Errorf("kinds: %v", kinds)
	}
	_, _, tail := export("?since=" + itoa(want[3].Seq))
	if len(tail) != len(want)-4 || tail[0].Seq != want[4].Seq {
		t.Errorf("since: %d events from %+v", len(tail), tail)
	}
	if _, _, two := export("?since=" + itoa(want[1].Seq) + "&limit=2"); len(two) != 2 || two[0].Seq != want[2].Seq || two[1].Seq != want[3].Seq {
		t.Errorf("limit=2: %+v", two)
	}
	for q, status := range map[string]int{"?since=x": 400, "?limit=-1": 400} {
		if code, _, _ := export(q); code != status {
			t.Errorf("%s: %d, want %d", q, code, status)
		}
	}
	if code, _ := e.get("/v1/campaigns/c9/events", e.admin, nil); code != 404 {
		t.Errorf("unknown campaign: %d", code)
	}
}

// Concurrent retries of one finding store it once and all get it.
func TestFindingIdempotencyConcurrent(t *testing.T) {
	e := newEnv(t, 0)
	e.withForum()
	alice := e.setup("default", QuotaSpec{})
	body := `{"type": "insight", "title": "t", "family": "other", "body": "b"}`
	const n = 8
	type answer struct {
		code int
		id   string
		err  error
	}
	answers := make(chan answer, n)
	for range n {
		go func() {
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/findings", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+alice)
			req.Header.Set("Idempotency-Key", "same")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			var f forum.Finding
			json.NewDecoder(resp.Body).Decode(&f)
			answers <- answer{code: resp.StatusCode, id: f.ID}
		}()
	}
	created, ids := 0, map[string]bool{}
	for range n {
		a := <-answers
		if a.err != nil || (a.code != 201 && a.code != 200) {
			t.Fatalf("answer %+v", a)
		}
		if a.code == 201 {
			created++
		}
		ids[a.id] = true
	}
	if created != 1 || len(ids) != 1 || e.countEvents(evFinding) != 1 {
		t.Errorf("%d created, ids %v, %d finding events", created, ids, e.countEvents(evFinding))
	}
}
