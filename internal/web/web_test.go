package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/forum"
	forumsqlite "github.com/aar-lab/aar/internal/forum/sqlite"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/snapshot"
	ledger "github.com/aar-lab/aar/internal/store/sqlite"
	"github.com/aar-lab/aar/internal/testbed"
)

const fixture = "../testbed/testdata/study"

type env struct {
	lab           *lab.Lab
	srv           *httptest.Server
	admin, alice  string
	private       []string // texts that must never be served
	bobTok        string
	transcriptLen int
	snap          string
}

func newEnv(t *testing.T, events int) *env {
	t.Helper()
	dir := t.TempDir()
	tbs, err := testbed.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(7)
	tb, err := tbs.Import(filepath.Join(fixture, "labeled_data", "chat"), testbed.ImportOptions{Name: "chat", Cache: filepath.Join(fixture, "cache_results"), SplitSeed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := ledger.Open(ctx, filepath.Join(dir, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := forumsqlite.Open(ctx, filepath.Join(dir, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	l, admin, err := lab.New(ctx, lab.Config{DataDir: dir, Ledger: db, Forum: fs})
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.SetWeb(w.Handler())
	srv := httptest.NewServer(l.Handler())
	t.Cleanup(func() { srv.Close(); fs.Close(); db.Close() })
	if _, err := l.CreateCampaign(ctx, lab.Campaign{ID: "c1", Testbed: "chat", Policy: "default", Spec: json.RawMessage(`{"researchers": [{"name": "alice", "direction": "look at the weak labels"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateCampaign(ctx, lab.Campaign{ID: "c2", Testbed: "chat", Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	alice, _ := l.CreateToken(ctx, "alice", "c1")
	bob, _ := l.CreateToken(ctx, "bob", "c1")
	e := &env{lab: l, srv: srv, admin: admin, alice: alice, bobTok: bob}
	for _, r := range tb.Labeled {
		e.private = append(e.private, strings.Trim(string(r.Fields["prompt"]), `"`))
	}
	// alice's transcript: events of every type, many of them.
	id := l.Authenticate(alice)
	var batch []lab.TranscriptEvent
	for i := range events {
		typ, data := "tool_call", fmt.Sprintf(`{"id": "c%d", "name": "bash", "input": "{\"command\": \"echo %d\"}"}`, i, i)
		switch i % 4 {
		case 1:
			typ, data = "tool_result", fmt.Sprintf(`{"id": "c%d", "name": "bash", "text": "exit code 0\n%d", "is_error": false}`, i-1, i)
		case 2:
			typ, data = "message", `{"role": "assistant", "parts": [{"kind": "text", "text": "thinking about <b>weak</b> labels"}]}`
		case 3:
			typ, data = "usage", `{"model": "claude-sonnet-5-5"}`
		}
		ev := lab.TranscriptEvent{Session: "s1", Type: typ, Data: json.RawMessage(data)}
		if typ == "usage" {
			ev.Usage, ev.CostUSD = &lab.Usage{InputTokens: 100, OutputTokens: 10}, 0.0003
		}
		batch = append(batch, ev)
		if len(batch) == 500 || i == events-1 {
			if _, err := l.AppendTranscript(ctx, id, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	e.transcriptLen = events
	// Findings and a line of two snapshots by alice.
	for i, f := range []forum.Finding{
		{Type: "hypothesis", Title: "confidence weighting may help", Family: "confidence weighting", Body: "weights by weak confidence"},
		{Type: "insight", Title: "weak labels are noisy near the boundary", Family: "data filtering", Body: "histogram of confidences"},
		{Type: "error", Title: "bootstrap diverged", Family: "self-training", Body: "NaN loss at epoch 2"},
	} {
		who := id
		if i == 2 {
			who = l.Authenticate(bob)
		}
		if _, err := l.PostFinding(ctx, who, f); err != nil {
			t.Fatal(err)
		}
	}
	var parent string
	for i, content := range []string{"print('v1')\n", "print('v2')\nprint('more')\n"} {
		_, archive, err := snapshot.FromFiles([]snapshot.File{{Path: "method.py", Mode: 0o644, Data: []byte(content)}, {Path: fmt.Sprintf("notes%d.md", i), Mode: 0o644, Data: []byte("notes")}}, snapshot.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := l.PushSnapshot(ctx, id, bytes.NewReader(archive), parent)
		if err != nil {
			t.Fatal(err)
		}
		parent = m.ID
	}
	e.snap = parent
	return e
}

// browser is a client with a cookie jar, like a browser.
func (e *env) browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func (e *env) login(t *testing.T, c *http.Client, tok string) {
	t.Helper()
	resp, err := c.PostForm(e.srv.URL+"/login", url.Values{"token": {tok}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Campaigns") {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestLoginSessionsAndCSRF(t *testing.T) {
	e := newEnv(t, 10)
	c := e.browser(t)
	// Not logged in: to the login page, nothing else.
	code, body := get(t, c, e.srv.URL+"/campaigns/c1")
	if code != 200 || !strings.Contains(body, `name="token"`) || strings.Contains(body, "c1") && strings.Contains(body, "Researchers") {
		t.Fatalf("anonymous: %d %.200s", code, body)
	}
	resp, _ := c.PostForm(e.srv.URL+"/login", url.Values{"token": {"aar_wrong"}})
	if resp.StatusCode != 401 {
		t.Errorf("a wrong token: %d", resp.StatusCode)
	}
	resp.Body.Close()
	e.login(t, c, e.admin)
	u, _ := url.Parse(e.srv.URL)
	cookies := c.Jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != cookieName {
		t.Fatalf("cookies %v", cookies)
	}
	// The Set-Cookie attributes.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r2, err := noFollow.PostForm(e.srv.URL+"/login", url.Values{"token": {e.admin}})
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	sc := strings.Join(r2.Header.Values("Set-Cookie"), "; ")
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("Set-Cookie: %q", sc)
	}
	code, body = get(t, c, e.srv.URL+"/campaigns/c1")
	if code != 200 || !strings.Contains(body, "Operate") || !strings.Contains(body, "alice") {
		t.Fatalf("campaign page: %d", code)
	}
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	// A state-changing request without the CSRF token changes nothing.
	resp, _ = c.PostForm(e.srv.URL+"/campaigns/c1/control", url.Values{"action": {"pause"}, "researcher": {"alice"}})
	if resp.StatusCode != 403 {
		t.Errorf("control without CSRF: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if info, _ := e.lab.CampaignInfoOf("c1"); stateOf(info, "alice") != "running" {
		t.Fatal("a refused form changed state")
	}
	resp, _ = c.PostForm(e.srv.URL+"/campaigns/c1/control", url.Values{"action": {"pause"}, "researcher": {"alice"}, "csrf": {m[1]}})
	resp.Body.Close()
	if info, _ := e.lab.CampaignInfoOf("c1"); stateOf(info, "alice") != "paused" {
		t.Errorf("pause from the dashboard: alice is %s", stateOf(info, "alice"))
	}
	resp, _ = c.PostForm(e.srv.URL+"/campaigns/c1/control", url.Values{"action": {"note"}, "researcher": {"alice"}, "text": {"look at OOD"}, "csrf": {m[1]}})
	resp.Body.Close()
	// Logging out ends the session.
	resp, _ = c.PostForm(e.srv.URL+"/logout", url.Values{"csrf": {m[1]}})
	resp.Body.Close()
	if _, body := get(t, c, e.srv.URL+"/campaigns/c1"); !strings.Contains(body, `name="token"`) {
		t.Error("still logged in after logging out")
	}
	// A revoked token ends its sessions.
	c2 := e.browser(t)
	e.login(t, c2, e.bobTok)
	if err := e.lab.RevokeToken(context.Background(), e.bobTok); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, c2, e.srv.URL+"/"); !strings.Contains(body, `name="token"`) {
		t.Error("a revoked token's session still works")
	}
}

func stateOf(info *lab.CampaignInfo, name string) string {
	for _, r := range info.Researchers {
		if r.Name == name {
			return r.State
		}
	}
	return ""
}

func TestResearcherSeesOnlyTheirs(t *testing.T) {
	e := newEnv(t, 10)
	c := e.browser(t)
	e.login(t, c, e.alice)
	if code, _ := get(t, c, e.srv.URL+"/campaigns/c2"); code != 403 {
		t.Errorf("another campaign: %d", code)
	}
	if code, _ := get(t, c, e.srv.URL+"/campaigns/c1/researchers/bob/transcript"); code != 403 {
		t.Errorf("another researcher's transcript: %d", code)
	}
	code, body := get(t, c, e.srv.URL+"/campaigns/c1")
	if code != 200 || strings.Contains(body, "holdout") || strings.Contains(body, "Operate") || strings.Contains(body, "Submissions") {
		t.Errorf("a researcher's campaign page shows admin figures: %d", code)
	}
	code, body = get(t, c, e.srv.URL+"/campaigns/c1/researchers/alice/transcript")
	if code != 200 || !strings.Contains(body, "tool call · bash") {
		t.Errorf("own transcript: %d", code)
	}
	m := csrfRe.FindStringSubmatch(body)
	resp, _ := c.PostForm(e.srv.URL+"/campaigns/c1/control", url.Values{"action": {"stop"}, "csrf": {m[1]}})
	if resp.StatusCode != 403 {
		t.Errorf("a researcher stopping the campaign: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

// A 100,000-event transcript opens on one page of 200 events: the first
// paint costs one page however long the transcript is.
func TestLongTranscript(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 100,000 events")
	}
	e := newEnv(t, 100_000)
	c := e.browser(t)
	e.login(t, c, e.admin)
	start := time.Now()
	code, body := get(t, c, e.srv.URL+"/campaigns/c1/researchers/alice/transcript")
	first := time.Since(start)
	if code != 200 || strings.Count(body, `class="ev `) != pageSize || !strings.Contains(body, "100000 events") {
		t.Fatalf("first page: %d, %d events", code, strings.Count(body, `class="ev `))
	}
	if strings.Contains(body, "<b>weak</b>") {
		t.Error("transcript text is not escaped")
	}
	start = time.Now()
	code, body = get(t, c, e.srv.URL+"/campaigns/c1/researchers/alice/transcript?after=99000")
	later := time.Since(start)
	if code != 200 || !strings.Contains(body, "#99001 ") {
		t.Errorf("a late page: %d", code)
	}
	// A link by ledger seq finds its position by binary search.
	page, _ := e.lab.Transcript(context.Background(), e.lab.Authenticate(e.admin), lab.TranscriptQuery{Campaign: "c1", Researcher: "alice", After: 76542, Limit: 1})
	seq := page.Events[0].Seq
	code, body = get(t, c, fmt.Sprintf("%s/campaigns/c1/researchers/alice/transcript?seq=%d", e.srv.URL, seq))
	if code != 200 || !strings.Contains(body, fmt.Sprintf(`id="seq-%d" class="ev ev-`, seq)) || !strings.Contains(body, "target") {
		t.Errorf("link by seq: %d", code)
	}
	if first > time.Second || later > time.Second {
		t.Errorf("pages of a 100,000-event transcript took %s and %s (target: under 1 s)", first, later)
	}
	t.Logf("100,000-event transcript: first page %s, page at 99,000 %s", first, later)
}

func TestLiveStream(t *testing.T) {
	e := newEnv(t, 10)
	c := e.browser(t)
	e.login(t, c, e.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/campaigns/c1/stream", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	n, _ := io.ReadAtLeast(resp.Body, buf, 200)
	got := string(buf[:n])
	if resp.Header.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(got, "event: update\ndata: ") || !strings.Contains(got, "Researchers") {
		t.Errorf("stream: %s %.300s", resp.Header.Get("Content-Type"), got)
	}
}

// TestCrawlHoldsNoSecrets follows every link of the dashboard as an admin
// and as a researcher; no page holds a token or a weak teacher's labelled
// row.
func TestCrawlHoldsNoSecrets(t *testing.T) {
	e := newEnv(t, 50)
	hrefRe := regexp.MustCompile(`href="(/[^"#]*)`)
	for _, who := range []string{e.admin, e.alice} {
		c := e.browser(t)
		e.login(t, c, who)
		seen := map[string]bool{}
		queue := []string{"/"}
		for len(queue) > 0 && len(seen) < 200 {
			p := queue[0]
			queue = queue[1:]
			if seen[p] {
				continue
			}
			seen[p] = true
			code, body := get(t, c, e.srv.URL+p)
			if code != 200 && code != 403 {
				t.Errorf("%s: %d", p, code)
			}
			for _, tok := range []string{e.admin, e.alice, e.bobTok} {
				if strings.Contains(body, tok) {
					t.Errorf("%s holds a token", p)
				}
			}
			for _, row := range e.private {
				if len(row) > 20 && strings.Contains(body, row) {
					t.Errorf("%s holds a labelled row", p)
				}
			}
			for _, m := range hrefRe.FindAllStringSubmatch(body, -1) {
				if u := strings.ReplaceAll(m[1], "&amp;", "&"); !seen[u] && !strings.HasPrefix(u, "/static/") {
					queue = append(queue, u)
				}
			}
		}
		if len(seen) < 3 {
			t.Errorf("crawl saw only %v", seen)
		}
	}
	if len(e.private) < 4 {
		t.Fatalf("only %d private rows to look for", len(e.private))
	}
}

func TestForumSnapshotsAnalysis(t *testing.T) {
	e := newEnv(t, 10)
	c := e.browser(t)
	e.login(t, c, e.alice)
	code, body := get(t, c, e.srv.URL+"/campaigns/c1/forum")
	if code != 200 || !strings.Contains(body, "confidence weighting may help") || !strings.Contains(body, "bootstrap diverged") {
		t.Fatalf("forum: %d", code)
	}
	if _, body := get(t, c, e.srv.URL+"/campaigns/c1/forum?type=error"); strings.Contains(body, "confidence weighting may help") || !strings.Contains(body, "bootstrap diverged") {
		t.Error("the type filter does not filter")
	}
	if _, body := get(t, c, e.srv.URL+"/campaigns/c1/forum?q=noisy+boundary"); !strings.Contains(body, "weak labels are noisy") || strings.Contains(body, "bootstrap diverged") {
		t.Error("search")
	}
	_, body = get(t, c, e.srv.URL+"/campaigns/c1/forum")
	fid := regexp.MustCompile(`/campaigns/c1/forum/(fnd_[A-Za-z0-9_-]+)">confidence`).FindStringSubmatch(body)
	if fid == nil {
		t.Fatal("no link to the finding")
	}
	code, body = get(t, c, e.srv.URL+"/campaigns/c1/forum/"+fid[1])
	m := csrfRe.FindStringSubmatch(body)
	if code != 200 || m == nil || !strings.Contains(body, "weights by weak confidence") {
		t.Fatalf("finding: %d", code)
	}
	resp, _ := c.PostForm(e.srv.URL+"/campaigns/c1/forum/"+fid[1]+"/comment", url.Values{"body": {"worth a try on OOD"}, "csrf": {m[1]}})
	resp.Body.Close()
	resp, _ = c.PostForm(e.srv.URL+"/campaigns/c1/forum/"+fid[1]+"/comment", url.Values{"vote": {"up"}, "csrf": {m[1]}})
	resp.Body.Close()
	if _, body := get(t, c, e.srv.URL+"/campaigns/c1/forum/"+fid[1]); !strings.Contains(body, "worth a try on OOD") || !strings.Contains(body, "score 1") {
		t.Errorf("comment and vote not shown")
	}
	code, body = get(t, c, e.srv.URL+"/campaigns/c1/snapshots/"+e.snap)
	if code != 200 || !strings.Contains(body, "method.py") || !strings.Contains(body, "&#43;print(&#39;more&#39;)") {
		t.Fatalf("snapshot: %d\n%s", code, body)
	}
	if _, body := get(t, c, e.srv.URL+"/campaigns/c1/snapshots/"+e.snap+"?file=method.py"); !strings.Contains(body, "print(&#39;v2&#39;)") {
		t.Error("file view")
	}
	// The analysis is for admins.
	if code, _ := get(t, c, e.srv.URL+"/campaigns/c1/analysis"); code != 403 {
		t.Errorf("a researcher's analysis: %d", code)
	}
	a := e.browser(t)
	e.login(t, a, e.admin)
	code, body = get(t, a, e.srv.URL+"/campaigns/c1/analysis")
	if code != 200 || !strings.Contains(body, "active researchers") || !strings.Contains(body, "<svg") {
		t.Fatalf("analysis: %d", code)
	}
}

func TestEntropy(t *testing.T) {
	if h := entropy([]string{"a", "b"}); h != 1 {
		t.Errorf("two equal families: %v bits", h)
	}
	if h := entropy([]string{"a", "a", "a"}); h != 0 {
		t.Errorf("one family: %v bits", h)
	}
	if h := entropy([]string{"a", "b", "c", "d"}); h != 2 {
		t.Errorf("four equal families: %v bits", h)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fs := []forum.Finding{{Author: "a", Family: "x", At: start.Add(time.Minute)}, {Author: "b", Family: "y", At: start.Add(2 * time.Minute)},
		{Author: "a", Family: "y", At: start.Add(3 * time.Minute)}}
	rows := diversity(fs, start, 3, 200)
	if len(rows) != 3 || rows[1].Entropy != 1 || rows[2].Entropy != 0 || rows[1].Lo > rows[1].Entropy || rows[1].Hi < rows[1].Entropy {
		t.Errorf("diversity: %+v", rows)
	}
}

// TestReviewVerify: the review page's Verify button runs the lab's
// verifier in the background, and its verdict, checks and flag reasons
// show on the item page and in the queue. (The verifier here records a
// verification the way aar verify's does; aar verify itself is tested
// against real sandboxes in cmd/aar.)
func TestReviewVerify(t *testing.T) {
	e := newEnv(t, 10)
	ctx := context.Background()
	id := e.lab.Authenticate(e.alice)
	preds := make([]int, 0)
	tb, err := e.lab.TestbedByName("chat")
	if err != nil {
		t.Fatal(err)
	}
	for range tb.PublicTest() {
		preds = append(preds, 0)
	}
	raw, _ := json.Marshal(preds)
	sub, err := e.lab.Submit(ctx, id, &lab.SubmitRequest{Predictions: raw, Snapshot: e.snap}, "")
	if err != nil {
		t.Fatal(err)
	}
	c := e.browser(t)
	e.login(t, c, e.admin)
	_, page := get(t, c, e.srv.URL+"/campaigns/c1/review/"+sub.ID)
	m := csrfRe.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "Not verified yet") {
		t.Fatalf("item page before verification:\n%s", page)
	}
	noFollow := &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.PostForm(e.srv.URL+"/campaigns/c1/review/"+sub.ID+"/verify", url.Values{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("without a verifier: %d, want 503", resp.StatusCode)
	}
	started := make(chan string, 1)
	e.lab.SetVerifier(func(ctx context.Context, subject string) (*lab.Verification, error) {
		started <- subject
		v := &lab.Verification{ID: "ver_test", Subject: subject, Submission: subject, Campaign: "c1", Testbed: "chat", Verdict: lab.VerdictFlagged,
			Flags:  []lab.VerifyFlag{{Kind: "replay_mismatch", Check: "replay", Reason: "the claimed seeds regenerate only 90.00% of the submitted rows"}},
			Checks: []lab.VerifyCheck{{Check: "replay", Status: "flag", Summary: "the claimed seeds regenerate only 90.00% of the submitted rows"}}}
		return v, e.lab.RecordVerification(ctx, v)
	})
	resp, err = noFollow.PostForm(e.srv.URL+"/campaigns/c1/review/"+sub.ID+"/verify", url.Values{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("verify: %d, want 303", resp.StatusCode)
	}
	if got := <-started; got != sub.ID {
		t.Fatalf("verified %s, want %s", got, sub.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, page = get(t, c, e.srv.URL+"/campaigns/c1/review/"+sub.ID)
		if strings.Contains(page, "ver_test") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"flagged", "replay_mismatch", "regenerate only 90.00%", "Verify again"} {
		if !strings.Contains(page, want) {
			t.Errorf("item page lacks %q", want)
		}
	}
	_, queue := get(t, c, e.srv.URL+"/campaigns/c1/review")
	if !strings.Contains(queue, sub.ID) || !strings.Contains(queue, "replay_mismatch") {
		t.Errorf("the queue does not hold the flagged submission with its reason:\n%s", queue)
	}
	// The leaderboard marks it flagged and holds it back from researchers.
	b, err := e.lab.Leaderboard(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range b.Submissions {
		if s.Submission == sub.ID {
			t.Errorf("a flagged submission is on the researchers' board: %+v", s)
		}
	}
	// Without a CSRF token nothing runs.
	resp, _ = noFollow.PostForm(e.srv.URL+"/campaigns/c1/review/"+sub.ID+"/verify", nil)
	resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		t.Error("verify without a CSRF token was accepted")
	}
}
