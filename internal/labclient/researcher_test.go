package labclient_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	forumsqlite "github.com/aar-lab/aar/internal/forum/sqlite"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/store/sqlite"
	"github.com/aar-lab/aar/internal/testbed"
)

// newLab starts a lab with the study fixture's chat testbed, a campaign and
// a researcher; it returns the researcher's and the admin's clients.
func newLab(t *testing.T) (researcher, admin *labclient.Client) {
	t.Helper()
	f := startLab(t)
	return client(t, f.url, f.researcher), client(t, f.url, f.admin)
}

// labFixture is a running lab: its URL, alice's token in campaign c1, the
// admin token and the chat testbed's public test row count.
type labFixture struct {
	url, researcher, admin string
	publicRows             int
}

func startLab(t *testing.T) labFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tbs, err := testbed.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	fixture := "../testbed/testdata/study"
	seed := uint64(7)
	tb, err := tbs.Import(filepath.Join(fixture, "labeled_data", "chat"), testbed.ImportOptions{Name: "chat", Cache: filepath.Join(fixture, "cache_results"), SplitSeed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := forumsqlite.Open(ctx, filepath.Join(dir, "forum.db"))
	if err != nil {
		t.Fatal(err)
	}
	l, adminTok, err := lab.New(ctx, lab.Config{DataDir: dir, Ledger: db, Forum: fs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.Handler())
	t.Cleanup(func() { srv.Close(); fs.Close(); db.Close() })
	if _, err := l.CreateCampaign(ctx, lab.Campaign{ID: "c1", Testbed: "chat"}); err != nil {
		t.Fatal(err)
	}
	tok, err := l.CreateToken(ctx, "alice", "c1")
	if err != nil {
		t.Fatal(err)
	}
	return labFixture{url: srv.URL, researcher: tok, admin: adminTok, publicRows: len(tb.PublicTest())}
}

func client(t *testing.T, url, tok string) *labclient.Client {
	t.Helper()
	c, err := labclient.New(url, tok)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResearcherCalls(t *testing.T) {
	ctx := context.Background()
	cl, admin := newLab(t)

	// Transcript: append, page through, spend.
	var events []labclient.TranscriptEvent
	for i := range 25 {
		ev := labclient.TranscriptEvent{Session: "s1", Type: "message", Data: json.RawMessage(`{"i":` + strings.Repeat("1", 1+i%3) + `}`)}
		if i%4 == 0 {
			ev.Type, ev.Usage, ev.CostUSD = "usage", &labclient.Usage{InputTokens: 10, OutputTokens: 2, CacheReadTokens: 3, CacheWriteTokens: 1}, 0.25
		}
		if i%5 == 0 {
			ev.Session, ev.CPUSeconds = "s2", 1.5
		}
		events = append(events, ev)
	}
	events[3].Type = "tool_call"
	ack, err := cl.AppendTranscript(ctx, events)
	if err != nil || ack.Count != 25 || ack.Last-ack.First != 24 {
		t.Fatalf("append: %+v %v", ack, err)
	}
	var got []labclient.TranscriptEntry
	q := labclient.TranscriptQuery{Limit: 10}
	for {
		p, err := cl.Transcript(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Events...)
		if p.Total != 25 {
			t.Fatalf("total %d", p.Total)
		}
		if p.Next == nil {
			break
		}
		q.After = p.Next
	}
	for i, e := range got {
		if e.Pos != i || e.Seq != ack.First+int64(i) || e.Type != events[i].Type || string(e.Data) != string(events[i].Data) || e.At.IsZero() {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	if p, err := cl.Transcript(ctx, labclient.TranscriptQuery{Session: "s2"}); err != nil || p.Total != 5 || p.Events[1].Pos != 5 {
		t.Fatalf("session s2: %+v %v", p, err)
	}
	s, err := cl.Spend(ctx)
	want := labclient.Spend{Researcher: "alice", Campaign: "c1", InputTokens: 70, OutputTokens: 14, CacheReadTokens: 21, CacheWriteTokens: 7,
		CostUSD: 1.75, CPUSeconds: 7.5, ModelCalls: 7, ToolCalls: 1, TranscriptEvents: 25, Sessions: 2}
	if err != nil || s != want {
		t.Fatalf("spend\n got %+v\nwant %+v (%v)", s, want, err)
	}
	if cs, err := admin.CampaignSpend(ctx, "c1"); err != nil || cs.Total.CostUSD != 1.75 || len(cs.Researchers) != 1 || cs.Researchers[0] != want {
		t.Fatalf("campaign spend: %+v %v", cs, err)
	}
	// Another researcher's transcript is refused with a typed error.
	_, err = cl.Transcript(ctx, labclient.TranscriptQuery{Researcher: "bob"})
	var le *labclient.Error
	if !errors.As(err, &le) || le.Status != 403 || le.Code != "forbidden" {
		t.Errorf("another researcher's transcript: %v", err)
	}
	if _, err := cl.AppendTranscript(ctx, []labclient.TranscriptEvent{{Session: "s", Type: "note", Data: json.RawMessage(`{"x":"` + strings.Repeat("x", labclient.MaxTranscriptEvent) + `"}`)}}); !errors.As(err, &le) || le.Code != "event_too_large" {
		t.Errorf("oversized event: %v", err)
	}

	// Notebook.
	for _, text := range []string{"first", "second"} {
		if err := cl.AppendNotebook(ctx, text); err != nil {
			t.Fatal(err)
		}
	}
	if nb, err := cl.Notebook(ctx); err != nil || len(nb) != 2 || nb[1].Text != "second" || nb[1].Seq <= nb[0].Seq {
		t.Fatalf("notebook: %+v %v", nb, err)
	}

	// Leaderboard, validation, findings and snapshots on their usual paths.
	if b, err := cl.Leaderboard(ctx); err != nil || !json.Valid(b) {
		t.Errorf("leaderboard: %s %v", b, err)
	}
	if _, err := cl.Validate(ctx, map[string]any{"predictions": []int{0}}); !errors.As(err, &le) || le.Code != "invalid_predictions" {
		t.Errorf("validate: %v", err)
	}
	raw, err := cl.PostFinding(ctx, map[string]any{"type": "insight", "title": "weak labels are noisy", "family": "other", "body": "b"})
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ ID string }
	json.Unmarshal(raw, &f)
	if b, err := cl.GetFinding(ctx, f.ID); err != nil || !strings.Contains(string(b), "weak labels are noisy") {
		t.Errorf("get finding: %s %v", b, err)
	}
	if b, err := cl.ListFindings(ctx, 0, 10); err != nil || !strings.Contains(string(b), f.ID) {
		t.Errorf("list findings: %s %v", b, err)
	}
	if b, err := cl.SearchFindings(ctx, "noisy", 5); err != nil || !strings.Contains(string(b), f.ID) {
		t.Errorf("search findings: %s %v", b, err)
	}
	meta, err := cl.PushSnapshot(ctx, bytes.NewReader(tarGz(t, "a.py", "x = 1\n")), "")
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ ID string }
	json.Unmarshal(meta, &m)
	child, err := cl.PushSnapshot(ctx, bytes.NewReader(tarGz(t, "a.py", "x = 2\n")), m.ID)
	if err != nil || !strings.Contains(string(child), m.ID) {
		t.Fatalf("child snapshot: %s %v", child, err)
	}
	rc, err := cl.PullSnapshot(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	body, _ := io.ReadAll(tr)
	if err != nil || h.Name != "a.py" || string(body) != "x = 1\n" {
		t.Errorf("pulled snapshot: %v %v %q", h, err, body)
	}
	if _, err := cl.PullSnapshot(ctx, "snap_nope"); !errors.As(err, &le) || le.Status != 404 {
		t.Errorf("missing snapshot: %v", err)
	}
}

func tarGz(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	gz.Close()
	return buf.Bytes()
}
