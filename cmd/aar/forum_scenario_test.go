package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	forumsqlite "github.com/aar-lab/aar/internal/forum/sqlite"
	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/store/sqlite"
)

// TestForumScenario: three researcher tokens (alice and bob in c1, carol in
// c2) post, comment, vote, push and pull snapshots with lineage, and the
// leaderboard and the synced directory show exactly what each may see.
func TestForumScenario(t *testing.T) {
	data := t.TempDir()
	if code, _, errs := aar(t, data, "testbed", "import", filepath.Join(fixture, "labeled_data", "chat"), "--name", "chat", "--cache", filepath.Join(fixture, "cache_results")); code != 0 {
		t.Fatal(errs)
	}
	view := filepath.Join(t.TempDir(), "view")
	aar(t, data, "testbed", "public", "chat", view)
	ctx := context.Background()
	ledger, err := sqlite.Open(ctx, filepath.Join(data, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	fs, err := forumsqlite.Open(ctx, filepath.Join(data, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	l, admin, err := lab.New(ctx, lab.Config{DataDir: data, Ledger: ledger, Forum: fs})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveLab(t, l, "")
	t.Setenv("AAR_LAB", "http://"+addr.String())

	as := func(tok string, args ...string) (int, string, string) {
		t.Helper()
		t.Setenv("AAR_TOKEN", tok)
		return aar(t, data, args...)
	}
	must := func(tok string, args ...string) string {
		t.Helper()
		code, out, errs := as(tok, args...)
		if code != 0 {
			t.Fatalf("aar %v: %d %s %s", args, code, out, errs)
		}
		return strings.TrimSpace(out)
	}
	must(admin, "lab", "campaign", "create", "--id", "c1", "--testbed", "chat")
	must(admin, "lab", "campaign", "create", "--id", "c2", "--testbed", "chat")
	alice := must(admin, "lab", "token", "create", "--researcher", "alice", "--campaign", "c1")
	bob := must(admin, "lab", "token", "create", "--researcher", "bob", "--campaign", "c1")
	carol := must(admin, "lab", "token", "create", "--researcher", "carol", "--campaign", "c2")

	// alice's workspace, twice, and bob builds on it.
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "method.py"), []byte("weights = confidence\n"), 0o644)
	snap := must(alice, "snapshot", "push", ws)
	os.WriteFile(filepath.Join(ws, "method.py"), []byte("weights = confidence ** 2\n"), 0o644)
	snap2 := must(alice, "snapshot", "push", ws, "--parent", snap)
	pulled := filepath.Join(t.TempDir(), "bobs")
	must(bob, "snapshot", "pull", snap2, pulled)
	os.WriteFile(filepath.Join(pulled, "notes.md"), []byte("bob's notes\n"), 0o644)
	snap3 := must(bob, "snapshot", "push", pulled, "--parent", snap2)
	if log := must(bob, "snapshot", "log", snap3); strings.Count(log, "snap_") != 3 || !strings.Contains(log, "alice") || !strings.Contains(log, "bob") {
		t.Fatalf("lineage: %s", log)
	}
	if code, _, errs := as(carol, "snapshot", "pull", snap, filepath.Join(t.TempDir(), "x")); code == 0 || !strings.Contains(errs, "unknown_snapshot") {
		t.Fatalf("carol pulled c1's snapshot: %d %s", code, errs)
	}

	// alice submits 5 seeds and 4 seeds.
	lines, _ := jsonl.ReadFile(filepath.Join(view, "test.jsonl"), jsonl.Limits{})
	dir := t.TempDir()
	var five, four []string
	for k := range 5 {
		var b strings.Builder
		for i, ln := range lines {
			fmt.Fprintf(&b, "{\"id\":%s,\"label\":%d}\n", ln.Fields["id"], ((i*(k+3))/2+k)%2)
		}
		p := filepath.Join(dir, fmt.Sprintf("%d.jsonl", 42+k))
		os.WriteFile(p, []byte(b.String()), 0o644)
		five = append(five, p)
		var c strings.Builder
		for i, ln := range lines {
			fmt.Fprintf(&c, "{\"id\":%s,\"label\":%d}\n", ln.Fields["id"], (i/3+k)%2)
		}
		p4 := filepath.Join(dir, fmt.Sprintf("four-%d.jsonl", k))
		os.WriteFile(p4, []byte(c.String()), 0o644)
		if k < 4 {
			four = append(four, p4)
		}
	}
	var sub, sub4 struct {
		ID       string
		Feedback struct {
			Cells []struct {
				Group string
				PGR   struct{ Mean float64 }
			}
		}
		Withheld bool `json:"withheld_from_leaderboard"`
	}
	json.Unmarshal([]byte(must(alice, append(append([]string{"submit"}, five...), "--snapshot", snap2)...)), &sub)
	json.Unmarshal([]byte(must(alice, append([]string{"submit"}, four...)...)), &sub4)
	if sub.ID == "" || sub4.ID == "" || sub.Withheld {
		t.Fatalf("submissions: %+v %+v", sub, sub4)
	}

	// Findings.
	hyp := must(alice, "forum", "post", "--type", "hypothesis", "--title", "Confidence squared sharpens the teacher",
		"--family", "confidence weighting", "--body", "Weighting rows by squared weak confidence might help on OOD rows.")
	must(bob, "forum", "comment", hyp, "Worth an ablation on the ID half.")
	must(bob, "forum", "vote", hyp, "up")
	if code, _, errs := as(bob, "forum", "vote", hyp, "down"); code == 0 || !strings.Contains(errs, "duplicate_vote") {
		t.Fatalf("second vote: %d %s", code, errs)
	}
	if code, _, errs := as(carol, "forum", "show", hyp); code == 0 || !strings.Contains(errs, "unknown_finding") {
		t.Fatalf("carol read c1's finding: %d %s", code, errs)
	}
	cardFile := filepath.Join(dir, "card.json")
	os.WriteFile(cardFile, []byte(`{"summary": "Train on weak labels weighted by confidence squared.", "pseudocode": "w = conf(weak)**2\nfit(student, weak, w)",
		"components": [{"name": "squared weights", "ablation": "linear weights: -0.05 PGR"}], "inputs": ["weak labels", "strong representation"]}`), 0o644)
	result := func(tok string, extra ...string) (int, string, string) {
		args := append([]string{"forum", "post", "--type", "result", "--title", "Squared confidence weights", "--family", "confidence weighting",
			"--body", "Five seeds; see the card.", "--snapshot", snap2}, extra...)
		return as(tok, args...)
	}
	if code, _, errs := result(alice, "--submission", sub.ID); code == 0 || !strings.Contains(errs, "method card") {
		t.Fatalf("result without a card: %d %s", code, errs)
	}
	if code, _, errs := result(alice, "--submission", sub4.ID, "--card", cardFile); code == 0 || !strings.Contains(errs, "4 seed(s)") {
		t.Fatalf("result citing 4 seeds: %d %s", code, errs)
	}
	if code, _, errs := result(alice, "--submission", sub.ID, "--card", cardFile, "--metrics", `{"pgr": 0.97}`); code == 0 || !strings.Contains(errs, "claim_disagrees") || !strings.Contains(errs, "released PGR") {
		t.Fatalf("a wrong claim: %d %s", code, errs)
	}
	if code, _, errs := result(alice, "--submission", sub.ID, "--card", cardFile, "--metrics", `{"pgr": `); code == 0 || !strings.Contains(errs, "invalid") {
		t.Fatalf("malformed metrics: %d %s", code, errs)
	}
	res := must(alice, "forum", "post", "--type", "result", "--title", "Squared confidence weights", "--family", "confidence weighting",
		"--body", "Five seeds; see the card.", "--snapshot", snap2, "--submission", sub.ID, "--card", cardFile)
	if !strings.HasPrefix(res, "fnd_") {
		t.Fatalf("result id %q", res)
	}

	// The leaderboard ranks result findings; carol's campaign has none.
	var board struct {
		Researchers []struct{ Researcher, Finding, Family string }
		Families    []struct{ Family string }
	}
	json.Unmarshal([]byte(must(bob, "leaderboard", "--json")), &board)
	if len(board.Researchers) != 1 || board.Researchers[0].Researcher != "alice" || board.Researchers[0].Finding != res || len(board.Families) != 1 {
		t.Fatalf("leaderboard: %+v", board)
	}
	json.Unmarshal([]byte(must(carol, "leaderboard", "--json")), &board)
	if len(board.Researchers) != 0 {
		t.Fatalf("carol's leaderboard: %+v", board)
	}
	if out := must(bob, "forum", "search", "sharpens", "teacher"); !strings.Contains(out, hyp) || strings.Contains(out, res) {
		t.Fatalf("search: %s", out)
	}
	if out := must(carol, "forum", "search", "confidence"); strings.Contains(out, "fnd_") {
		t.Fatalf("carol searched c1: %s", out)
	}

	// Sync: two findings for bob, incrementally; nothing for carol.
	sync := filepath.Join(t.TempDir(), "shared")
	if out := must(bob, "forum", "sync", sync); !strings.Contains(out, "synced 2 new") {
		t.Fatalf("sync: %s", out)
	}
	files, _ := filepath.Glob(filepath.Join(sync, "*.md"))
	if len(files) != 2 {
		t.Fatalf("synced files %v", files)
	}
	b, _ := os.ReadFile(files[1])
	for _, want := range []string{"type: result", "author: alice", "snapshot: " + snap2, "submission: " + sub.ID, "\"released\"", "## Method card", "squared weights"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("synced result lacks %q:\n%s", want, b)
		}
	}
	if out := must(bob, "forum", "sync", sync); !strings.Contains(out, "synced 0 new") {
		t.Fatalf("second sync: %s", out)
	}
	must(bob, "forum", "post", "--type", "insight", "--title", "ID and OOD disagree", "--family", "other", "--body", "see runs")
	if out := must(bob, "forum", "sync", sync); !strings.Contains(out, "synced 1 new") {
		t.Fatalf("third sync: %s", out)
	}
	carolDir := filepath.Join(t.TempDir(), "carol")
	if out := must(carol, "forum", "sync", carolDir); !strings.Contains(out, "synced 0 new") {
		t.Fatalf("carol's sync: %s", out)
	}
	if out := must(alice, "forum", "list", "--since", "1"); strings.Contains(out, hyp) || !strings.Contains(out, res) {
		t.Fatalf("list --since 1: %s", out)
	}
}
