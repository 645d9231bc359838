package labclient_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aar-lab/aar/internal/labclient"
)

// The supervisor's calls against a real lab: a campaign from a spec, a
// researcher added, given a token, paused, noted, resumed, stopped; the
// listings; the export; an idempotent finding.
func TestAdminCalls(t *testing.T) {
	ctx := context.Background()
	lf := startLab(t)
	alice, admin := client(t, lf.url, lf.researcher), client(t, lf.url, lf.admin)
	var le *labclient.Error

	spec := json.RawMessage(`{"name": "run-7", "researchers": [{"name": "bob", "direction": "<try> & see"}]}`)
	ci, err := admin.CreateCampaign(ctx, labclient.CampaignRequest{ID: "c2", Testbed: "chat", Quota: &labclient.QuotaSpec{PerResearcherPerHour: 5, PerCampaignPerHour: 50}, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	json.Compact(&compact, spec)
	sum := sha256.Sum256(compact.Bytes())
	if ci.ID != "c2" || ci.Policy != "default" || ci.Quota.PerCampaignPerHour != 50 || ci.SpecSHA256 != hex.EncodeToString(sum[:]) || !bytes.Equal(ci.Spec, compact.Bytes()) {
		t.Fatalf("created: %+v", ci)
	}
	if _, err := admin.CreateCampaign(ctx, labclient.CampaignRequest{ID: "c2", Testbed: "chat"}); !errors.As(err, &le) || le.Status != 409 {
		t.Errorf("duplicate campaign: %v", err)
	}

	seq, err := admin.Control(ctx, "c2", labclient.ControlRequest{Action: labclient.ControlAdd, Researcher: "bob", Config: json.RawMessage(`{"direction": "<try> & see"}`)})
	if err != nil || seq == 0 {
		t.Fatalf("add: %d %v", seq, err)
	}
	tok, err := admin.CreateToken(ctx, "bob", "c2")
	if err != nil {
		t.Fatal(err)
	}
	bob := client(t, lf.url, tok)
	if st, err := bob.MyControl(ctx, 0); err != nil || st.State != labclient.StateRunning || st.CampaignStopped || len(st.Notes) != 0 || st.Next != 0 {
		t.Fatalf("bob's control: %+v %v", st, err)
	}
	if _, err := admin.Control(ctx, "c2", labclient.ControlRequest{Action: labclient.ControlPause, Researcher: "bob"}); err != nil {
		t.Fatal(err)
	}
	note, err := admin.Control(ctx, "c2", labclient.ControlRequest{Action: labclient.ControlNote, Researcher: "bob", Text: "check the OOD cell"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := bob.MyControl(ctx, 0)
	if err != nil || st.State != labclient.StatePaused || len(st.Notes) != 1 || st.Notes[0].Text != "check the OOD cell" || st.Notes[0].Seq != note || st.Next != note {
		t.Fatalf("bob paused: %+v %v", st, err)
	}
	if st, err := bob.MyControl(ctx, st.Next); err != nil || len(st.Notes) != 0 || st.Next != note {
		t.Errorf("poll after the note: %+v %v", st, err)
	}
	if _, err := admin.Control(ctx, "c2", labclient.ControlRequest{Action: labclient.ControlResume, Researcher: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Control(ctx, "c2", labclient.ControlRequest{Action: labclient.ControlStop, Researcher: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Control(ctx, "c2", labclient.ControlRequest{Action: labclient.ControlResume, Researcher: "bob"}); !errors.As(err, &le) || le.Status != 409 {
		t.Errorf("resume after stop: %v", err)
	}
	if _, err := admin.Control(ctx, "c2", labclient.ControlRequest{Action: "explode"}); !errors.As(err, &le) || le.Status != 400 {
		t.Errorf("unknown action: %v", err)
	}
	evs, err := admin.ControlEvents(ctx, "c2", 0)
	if err != nil || len(evs) != 5 || evs[0].Action != "add" || evs[0].Researcher != "bob" || string(evs[0].Config) != `{"direction":"<try> & see"}` || evs[4].Action != "stop" {
		t.Fatalf("control events: %+v %v", evs, err)
	}
	if tail, err := admin.ControlEvents(ctx, "c2", evs[3].Seq); err != nil || len(tail) != 1 || tail[0].Seq != evs[4].Seq {
		t.Errorf("control events after %d: %+v %v", evs[3].Seq, tail, err)
	}
	if _, err := bob.ControlEvents(ctx, "c2", 0); !errors.As(err, &le) || le.Status != 403 {
		t.Errorf("a researcher read control events: %v", err)
	}

	// alice submits in c1; the listings show it.
	if _, err := alice.Submit(ctx, labclient.Submission{Seeds: map[string]json.RawMessage{"1": constant(lf.publicRows), "2": constant(lf.publicRows)}}, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AppendTranscript(ctx, []labclient.TranscriptEvent{{Session: "s", Type: "usage", Usage: &labclient.Usage{InputTokens: 9}, CostUSD: 0.5}}); err != nil {
		t.Fatal(err)
	}
	all, err := admin.Campaigns(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "c1" || all[1].ID != "c2" || all[1].SpecSHA256 != ci.SpecSHA256 {
		t.Fatalf("campaigns: %+v %v", all, err)
	}
	c1, err := admin.Campaign(ctx, "c1")
	if err != nil || len(c1.Researchers) != 1 {
		t.Fatalf("c1: %+v %v", c1, err)
	}
	if r := c1.Researchers[0]; r.Name != "alice" || r.State != labclient.StateRunning || r.Submissions != 1 || r.BestFeedbackPGR == nil ||
		r.Spend.CostUSD != 0.5 || r.Spend.InputTokens != 9 || r.Spend.ModelCalls != 1 || r.Spend.Researcher != "alice" {
		t.Errorf("alice in c1: %+v", r)
	}
	if c2, err := admin.Campaign(ctx, "c2"); err != nil || len(c2.Researchers) != 1 || c2.Researchers[0].State != labclient.StateStopped || c2.Stopped {
		t.Errorf("c2: %+v %v", c2, err)
	}
	if _, err := admin.Campaign(ctx, "nope"); !errors.As(err, &le) || le.Status != 404 {
		t.Errorf("unknown campaign: %v", err)
	}
	subs, err := admin.CampaignSubmissions(ctx, "c1")
	if err != nil || len(subs) != 1 || subs[0].Researcher != "alice" || subs[0].Seeds != 2 || !json.Valid(subs[0].Feedback) || !json.Valid(subs[0].Flags) {
		t.Fatalf("submissions: %+v %v", subs, err)
	}
	holdout := false
	for _, c := range subs[0].Cells {
		holdout = holdout || (c.Split == "holdout" && c.Accuracy != nil && c.Rows > 0)
	}
	if !holdout {
		t.Errorf("no holdout cell: %+v", subs[0].Cells)
	}

	// Export: NDJSON of c2's events only.
	var buf bytes.Buffer
	if err := admin.ExportEvents(ctx, "c2", 0, &buf); err != nil {
		t.Fatal(err)
	}
	n := 0
	for sc := bufio.NewScanner(&buf); sc.Scan(); n++ {
		var ev struct {
			Seq      int64  `json:"seq"`
			Kind     string `json:"kind"`
			Campaign string `json:"campaign"`
			Hash     string `json:"hash"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Campaign != "c2" || len(ev.Hash) != 64 {
			t.Fatalf("line %d: %s %v", n, sc.Bytes(), err)
		}
	}
	if n != 7 { // campaign, add, token, pause, note, resume, stop
		t.Errorf("%d exported events, want 7", n)
	}
	if err := admin.ExportEvents(ctx, "nope", 0, &buf); !errors.As(err, &le) || le.Status != 404 {
		t.Errorf("export of an unknown campaign: %v", err)
	}

	// An idempotent finding.
	f := map[string]any{"type": "insight", "title": "constant answers score 0", "family": "other", "body": "b"}
	first, err := alice.PostFindingIdem(ctx, f, "w1-f1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := alice.PostFindingIdem(ctx, f, "w1-f1")
	var a, b struct{ ID string }
	json.Unmarshal(first, &a)
	json.Unmarshal(again, &b)
	if err != nil || a.ID == "" || a.ID != b.ID {
		t.Fatalf("retried finding: %s / %s %v", first, again, err)
	}
	f["title"] = "something else"
	if _, err := alice.PostFindingIdem(ctx, f, "w1-f1"); !errors.As(err, &le) || le.Status != 409 || le.Code != "idempotency_conflict" {
		t.Errorf("same key, another finding: %v", err)
	}
	if page, err := alice.ListFindings(ctx, 0, 10); err != nil || bytes.Count(page, []byte(`"fnd_`)) != 1 {
		t.Errorf("findings after a retry: %s %v", page, err)
	}
}

// constant is n predictions of class 0.
func constant(n int) json.RawMessage {
	b, _ := json.Marshal(make([]int, n))
	return b
}
