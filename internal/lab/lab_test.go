package lab

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/forum"
	forumsqlite "github.com/aar-lab/aar/internal/forum/sqlite"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/store/sqlite"
	"github.com/aar-lab/aar/internal/testbed"
)

const fixture = "../testbed/testdata/study"

type env struct {
	t      *testing.T
	dir    string
	db     *sqlite.DB
	lab    *Lab
	srv    *httptest.Server
	admin  string
	public []testbed.Row
}

// newEnv imports the study fixture and starts a lab on a random port.
func newEnv(t *testing.T, maxBody int64) *env {
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
	e := &env{t: t, dir: dir, public: tb.PublicTest()}
	e.start(maxBody)
	return e
}

func (e *env) start(maxBody int64) {
	db, err := sqlite.Open(context.Background(), filepath.Join(e.dir, "lab.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	l, admin, err := New(context.Background(), Config{DataDir: e.dir, Ledger: db, CheckpointEvery: 5, MaxBody: maxBody})
	if err != nil {
		e.t.Fatal(err)
	}
	if admin != "" {
		e.admin = admin
	}
	e.db, e.lab = db, l
	e.srv = httptest.NewServer(l.Handler())
	e.t.Cleanup(func() { e.srv.Close(); db.Close() })
}

func (e *env) restart() {
	e.srv.Close()
	e.db.Close()
	e.start(0)
}

func (e *env) do(method, path, tok string, body any, headers ...string) (int, http.Header, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", ct)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, resp.Header, out
}

func (e *env) setup(policy string, quota QuotaSpec) string {
	e.t.Helper()
	if code, _, out := e.do("POST", "/v1/campaigns", e.admin, map[string]any{"id": "c1", "testbed": "chat", "policy": policy, "quota": quota}); code != 201 {
		e.t.Fatalf("campaign: %d %v", code, out)
	}
	code, _, out := e.do("POST", "/v1/tokens", e.admin, map[string]string{"researcher": "alice", "campaign": "c1"})
	if code != 201 {
		e.t.Fatalf("token: %d %v", code, out)
	}
	return out["token"].(string)
}

// preds returns a prediction array in public order: row i gets f(i).
func (e *env) preds(f func(i int, r testbed.Row) int) []int {
	out := make([]int, len(e.public))
	for i, r := range e.public {
		out[i] = f(i, r)
	}
	return out
}

func (e *env) countEvents(kind string) int {
	n := 0
	e.db.Scan(context.Background(), 1, func(ev store.Event) error {
		if ev.Kind == kind {
			n++
		}
		return nil
	})
	return n
}

func TestSubmissionFlow(t *testing.T) {
	e := newEnv(t, 0)
	if e.admin == "" || !strings.HasPrefix(e.admin, "aar_") {
		t.Fatalf("no admin token at first start: %q", e.admin)
	}
	tok := e.setup("default", QuotaSpec{PerResearcherPerHour: 3, PerCampaignPerHour: 100})
	mixed := e.preds(func(i int, r testbed.Row) int { return (i / 3) % 2 })

	code, hdr, out := e.do("POST", "/v1/submissions", tok, map[string]any{"seeds": map[string]any{"42": mixed, "43": mixed}, "note": "n"}, "Idempotency-Key", "k1")
	if code != 201 || out["id"] == nil || hdr.Get("X-Aar-Ledger-Head") == "" {
		t.Fatalf("submit: %d %v", code, out)
	}
	raw, _ := json.Marshal(out)
	for _, forbidden := range []string{"holdout", "sealed", "correct", "distribution", "label"} {
		if strings.Contains(string(raw), forbidden) {
			t.Errorf("a researcher's response holds %q: %s", forbidden, raw)
		}
	}
	// A retry with the same key is the same submission, not a new one.
	code2, _, again := e.do("POST", "/v1/submissions", tok, map[string]any{"seeds": map[string]any{"42": mixed, "43": mixed}, "note": "n"}, "Idempotency-Key", "k1")
	if code2 != 200 || again["id"] != out["id"] || again["replayed"] != true {
		t.Fatalf("retry: %d %v", code2, again)
	}
	if n := e.countEvents(evAccepted); n != 1 {
		t.Fatalf("%d accepted events after a retry, want 1", n)
	}
	// Quota: 3 per hour.
	for i := range 2 {
		if code, _, out := e.do("POST", "/v1/submissions", tok, map[string]any{"predictions": e.preds(func(j int, r testbed.Row) int { return (j + i) % 2 })}); code != 201 {
			t.Fatalf("submission %d: %d %v", i, code, out)
		}
	}
	code, hdr, out = e.do("POST", "/v1/submissions", tok, map[string]any{"predictions": mixed})
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("over quota: %d %v", code, out)
	}
	// Validation is free.
	if code, _, out := e.do("POST", "/v1/validate", tok, map[string]any{"predictions": mixed}); code != 200 || out["ok"] != true {
		t.Fatalf("validate: %d %v", code, out)
	}
	// The ledger verifies, with checkpoints every 5 entries.
	if r, err := store.Verify(context.Background(), e.db, nil, nil); err != nil || !r.OK || r.Checkpoints == 0 {
		t.Fatalf("ledger: %+v %v", r, err)
	}

	// After a restart the state is the same: the idempotency key, the
	// submissions and the quota survive; no new admin token is printed.
	e.restart()
	if code, _, again := e.do("POST", "/v1/submissions", tok, map[string]any{"seeds": map[string]any{"42": mixed, "43": mixed}, "note": "n"}, "Idempotency-Key", "k1"); code != 200 || again["replayed"] != true {
		t.Fatalf("retry after restart: %d %v", code, again)
	}
	if code, _, out := e.do("POST", "/v1/submissions", tok, map[string]any{"predictions": mixed}); code != 429 {
		t.Fatalf("quota after restart: %d %v", code, out)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, 4096)
	tok := e.setup("default", QuotaSpec{})
	good := e.preds(func(i int, r testbed.Row) int { return i % 2 })
	objs := func(mut func([]map[string]any) []map[string]any) []map[string]any {
		var o []map[string]any
		for i, r := range e.public {
			o = append(o, map[string]any{"id": r.ID, "label": good[i]})
		}
		return mut(o)
	}
	cases := []struct {
		name, tok string
		body      any
		ct        string
		status    int
		code      string
	}{
		{"no token", "", map[string]any{"predictions": good}, "", 401, "unauthorized"},
		{"bad token", "aar_nope", map[string]any{"predictions": good}, "", 401, "unauthorized"},
		{"wrong content type", tok, `{"predictions":[0]}`, "text/plain", 415, "unsupported_media_type"},
		{"not json", tok, `{"predictions": [0,1,`, "", 400, "invalid_json"},
		{"unknown field", tok, `{"preds": [0]}`, "", 400, "invalid_json"},
		{"too large", tok, `{"predictions": [` + strings.Repeat("0,", 5000) + `0]}`, "", 413, "body_too_large"},
		{"wrong length", tok, map[string]any{"predictions": good[:5]}, "", 400, "invalid_predictions"},
		{"bad label", tok, map[string]any{"predictions": append([]int{7}, good[1:]...)}, "", 400, "invalid_predictions"},
		{"NaN", tok, `{"predictions": [NaN]}`, "", 400, "invalid_json"},
		{"unknown id", tok, map[string]any{"predictions": objs(func(o []map[string]any) []map[string]any { o[0]["id"] = "test-nope"; return o })}, "", 400, "invalid_predictions"},
		{"duplicate id", tok, map[string]any{"predictions": objs(func(o []map[string]any) []map[string]any { o[1]["id"] = o[0]["id"]; return o })}, "", 400, "invalid_predictions"},
		{"missing rows", tok, map[string]any{"predictions": objs(func(o []map[string]any) []map[string]any { return o[:10] })}, "", 400, "incomplete_predictions"},
		{"no predictions", tok, map[string]any{"note": "x"}, "", 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			switch b := tc.body.(type) {
			case string:
				body = []byte(b)
			default:
				body, _ = json.Marshal(b)
			}
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/submissions", bytes.NewReader(body))
			ct := tc.ct
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			if tc.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tc.tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Error struct{ Code, Message string }
			}
			json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != tc.status || out.Error.Code != tc.code || out.Error.Message == "" {
				t.Errorf("%d %+v, want %d %s", resp.StatusCode, out.Error, tc.status, tc.code)
			}
		})
	}
	if n := e.countEvents(evAccepted); n != 0 {
		t.Errorf("%d submissions stored from bad requests", n)
	}
	if n := e.countEvents(evRejected); n < 5 {
		t.Errorf("only %d rejection events", n)
	}
	// Roles.
	if code, _, _ := e.do("POST", "/v1/tokens", tok, map[string]string{"researcher": "eve", "campaign": "c1"}); code != 403 {
		t.Errorf("researcher made a token: %d", code)
	}
	if code, _, _ := e.do("GET", "/healthz", "", nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	code, _, api := e.do("GET", "/v1/openapi.json", "", nil)
	if code != 200 || !strings.Contains(fmt.Sprint(api["paths"]), "/v1/submissions") || !strings.Contains(fmt.Sprint(api["paths"]), "x-aar-role:admin") {
		t.Errorf("openapi: %d %v", code, api)
	}
	// A revoked token stops working.
	if code, _, _ := e.do("DELETE", "/v1/tokens/"+tok, e.admin, nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _, _ := e.do("POST", "/v1/validate", tok, map[string]any{"predictions": good}); code != 401 {
		t.Errorf("revoked token: %d", code)
	}
}

func TestLeaderboardAndReview(t *testing.T) {
	e := newEnv(t, 0)
	tok := e.setup("default", QuotaSpec{})
	right := e.preds(func(i int, r testbed.Row) int { return r.Label })
	code, _, out := e.do("POST", "/v1/submissions", tok, map[string]any{"predictions": right})
	if code != 201 {
		t.Fatalf("%d %v", code, out)
	}
	// An almost identical resubmission is a probe: flagged and withheld.
	tweak := append([]int(nil), right...)
	tweak[0] = 1 - tweak[0]
	code, _, probe := e.do("POST", "/v1/submissions", tok, map[string]any{"predictions": tweak})
	if code != 201 || probe["withheld_from_leaderboard"] != true {
		t.Fatalf("probe: %d %v", code, probe)
	}
	_, _, board := e.do("GET", "/v1/leaderboard", tok, nil)
	var b Board
	raw, _ := json.Marshal(board)
	if err := json.Unmarshal(raw, &b); err != nil || len(b.Submissions) != 1 || b.Submissions[0].Submission != out["id"] || b.Submissions[0].Holdout != nil || b.Submissions[0].Flags != nil || b.Weak == nil {
		t.Fatalf("researcher leaderboard: %v %v", board, err)
	}
	_, _, aboard := e.do("GET", "/v1/leaderboard?campaign=c1", e.admin, nil)
	raw, _ = json.Marshal(aboard)
	if err := json.Unmarshal(raw, &b); err != nil || len(b.Submissions) != 1 || b.Submissions[0].Holdout == nil || b.Submissions[0].Gap == nil {
		t.Fatalf("admin leaderboard: %v %v", aboard, err)
	}
	code, _, adminSub := e.do("GET", "/v1/submissions/"+probe["id"].(string), e.admin, nil)
	if code != 200 || !strings.Contains(fmt.Sprint(adminSub["flags"]), "near_duplicate") || adminSub["report"] == nil {
		t.Fatalf("admin view: %d %v", code, adminSub)
	}
	code, _, own := e.do("GET", "/v1/submissions/"+probe["id"].(string), tok, nil)
	if code != 200 || own["report"] != nil || own["flags"] != nil {
		t.Fatalf("researcher view: %d %v", code, own)
	}
	if code, _, _ := e.do("POST", "/v1/reviews", e.admin, map[string]string{"submission": probe["id"].(string), "decision": "cleared"}); code != 200 {
		t.Fatalf("review: %d", code)
	}
	code, _, own = e.do("GET", "/v1/submissions/"+probe["id"].(string), tok, nil)
	if code != 200 || own["withheld_from_leaderboard"] != false {
		t.Errorf("cleared submission still withheld: %v", own)
	}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestSnapshots(t *testing.T) {
	e := newEnv(t, 0)
	tok := e.setup("default", QuotaSpec{})
	push := func(tok string, body []byte, ct, query string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/snapshots"+query, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := push(tok, tarGz(t, map[string]string{"a.py": "x = 1\n"}), "application/gzip", "")
	if code != 201 || !strings.HasPrefix(out["id"].(string), "snap_") {
		t.Fatalf("push: %d %v", code, out)
	}
	first := out["id"].(string)
	cases := []struct {
		name   string
		body   []byte
		ct     string
		query  string
		status int
		code   string
	}{
		{"json content type", tarGz(t, map[string]string{"a": "b"}), "application/json", "", 415, "unsupported_media_type"},
		{"path traversal", tarGz(t, map[string]string{"../../etc/x": "b"}), "application/gzip", "", 400, "invalid_archive"},
		{"not gzip", []byte("plain text"), "application/gzip", "", 400, "invalid_archive"},
		{"unknown parent", tarGz(t, map[string]string{"a": "b"}), "application/gzip", "?parent=snap_nope", 404, "unknown_snapshot"},
	}
	for _, tc := range cases {
		code, out := push(tok, tc.body, tc.ct, tc.query)
		errObj, _ := out["error"].(map[string]any)
		if code != tc.status || errObj == nil || errObj["code"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, out, tc.status, tc.code)
		}
	}
	// Another campaign's researcher cannot see the snapshot.
	e.do("POST", "/v1/campaigns", e.admin, map[string]any{"id": "c2", "testbed": "chat"})
	_, _, other := e.do("POST", "/v1/tokens", e.admin, map[string]string{"researcher": "bob", "campaign": "c2"})
	if code, _, _ := e.do("GET", "/v1/snapshots/"+first, other["token"].(string), nil); code != 404 {
		t.Errorf("another campaign read the snapshot: %d", code)
	}
	if code, _, meta := e.do("GET", "/v1/snapshots/"+first, tok, nil); code != 200 || meta["files"] != float64(1) {
		t.Errorf("own snapshot: %d %v", code, meta)
	}
	if n := e.countEvents(evSnapshot); n != 1 {
		t.Errorf("%d snapshot events, want 1 (refusals store nothing)", n)
	}
	// An upload over the lab's limit is refused with 413.
	small := newEnv(t, 0)
	small.srv.Close()
	small.db.Close()
	db, _ := sqlite.Open(context.Background(), filepath.Join(small.dir, "lab.db"))
	defer db.Close()
	l, _, err := New(context.Background(), Config{DataDir: small.dir, Ledger: db, MaxArchive: 512})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	l.CreateCampaign(context.Background(), Campaign{ID: "c", Testbed: "chat"})
	rtok, _ := l.CreateToken(context.Background(), "r", "c")
	big := tarGz(t, map[string]string{"a.txt": strings.Repeat("incompressible? no, but long enough ", 2000), "b.txt": fmt.Sprint(time.Now().UnixNano())})
	req, _ := http.NewRequest("POST", srv.URL+"/v1/snapshots", bytes.NewReader(append(big, bytes.Repeat([]byte{0}, 1024)...)))
	req.Header.Set("Content-Type", "application/gzip")
	req.Header.Set("Authorization", "Bearer "+rtok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("oversized archive: %d", resp.StatusCode)
	}
}

func TestFindingBadInput(t *testing.T) {
	e := newEnv(t, 0)
	fs, err := forumsqlite.Open(context.Background(), filepath.Join(e.dir, "forum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	e.lab.cfg.Forum = fs
	tok := e.setup("default", QuotaSpec{})
	base := func() map[string]any {
		return map[string]any{"type": "insight", "title": "t", "family": "other", "body": "b"}
	}
	cases := []struct {
		name   string
		mut    func(m map[string]any)
		status int
		code   string
	}{
		{"unknown type", func(m map[string]any) { m["type"] = "rumour" }, 400, "invalid_finding"},
		{"unknown family", func(m map[string]any) { m["family"] = "magic" }, 400, "invalid_finding"},
		{"no title", func(m map[string]any) { m["title"] = "  " }, 400, "invalid_finding"},
		{"metrics not an object", func(m map[string]any) { m["metrics"] = []int{1, 2} }, 400, "invalid_finding"},
		{"another campaign", func(m map[string]any) { m["campaign"] = "c9" }, 403, "wrong_campaign"},
		{"result without submission", func(m map[string]any) { m["type"] = "result" }, 400, "result_incomplete"},
		{"unknown snapshot", func(m map[string]any) { m["snapshot"] = "snap_x" }, 404, "unknown_snapshot"},
		{"unknown field", func(m map[string]any) { m["colour"] = "red" }, 400, "invalid_json"},
	}
	for _, tc := range cases {
		m := base()
		tc.mut(m)
		code, _, out := e.do("POST", "/v1/findings", tok, m)
		errObj, _ := out["error"].(map[string]any)
		if code != tc.status || errObj == nil || errObj["code"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, out, tc.status, tc.code)
		}
	}
	if code, _, out := e.do("POST", "/v1/findings", tok, base()); code != 201 {
		t.Fatalf("good finding: %d %v", code, out)
	}
	if n := e.countEvents(evFinding); n != 1 {
		t.Errorf("%d finding events, want 1 (refusals store nothing)", n)
	}
	if code, _, _ := e.do("POST", "/v1/findings/fnd_nope/votes", tok, map[string]int{"value": 1}); code != 404 {
		t.Errorf("vote on a missing finding: %d", code)
	}
	if code, _, _ := e.do("POST", "/v1/findings/fnd_nope/comments", tok, map[string]string{"body": "x"}); code != 404 {
		t.Errorf("comment on a missing finding: %d", code)
	}
}

// After a restart the probe detector still knows the campaign's earlier
// submissions, and a finding the ledger has but the forum store lacks (a
// crash between the two writes) is stored.
func TestRestartRepairs(t *testing.T) {
	e := newEnv(t, 0)
	fs, err := forumsqlite.Open(context.Background(), filepath.Join(e.dir, "forum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	e.lab.cfg.Forum = fs
	tok := e.setup("default", QuotaSpec{})
	mixed := e.preds(func(i int, r testbed.Row) int { return (i / 3) % 2 })
	if code, _, out := e.do("POST", "/v1/submissions", tok, map[string]any{"predictions": mixed}); code != 201 {
		t.Fatalf("%d %v", code, out)
	}
	// A finding that reached the ledger only.
	lost := forum.Finding{ID: "fnd_lost", Campaign: "c1", Author: "alice", Type: "insight", Title: "lost", Family: "other", Body: "b", At: time.Now().UTC()}
	if _, err := e.db.Append(context.Background(), store.Input{Kind: evFinding, Actor: "alice", Campaign: "c1", Body: lost}); err != nil {
		t.Fatal(err)
	}
	e.srv.Close()
	e.db.Close()
	db, err := sqlite.Open(context.Background(), filepath.Join(e.dir, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, _, err := New(context.Background(), Config{DataDir: e.dir, Ledger: db, Forum: fs})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fs.Get(context.Background(), "c1", "fnd_lost"); err != nil {
		t.Errorf("the lost finding was not repaired: %v", err)
	}
	id := l.Authenticate(tok)
	tweak := append([]int(nil), mixed...)
	tweak[0] = 1 - tweak[0]
	raw, _ := json.Marshal(tweak)
	resp, err := l.Submit(context.Background(), id, &SubmitRequest{Predictions: raw}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Withheld {
		t.Error("a near-duplicate of a submission from before the restart was not flagged")
	}
}

// A sealed row's id is answered exactly like an id that does not exist, so
// errors cannot map the sealed rows.
func TestSealedIDsLookUnknown(t *testing.T) {
	e := newEnv(t, 0)
	tok := e.setup("default", QuotaSpec{})
	tb, err := e.lab.testbedFor("chat")
	if err != nil {
		t.Fatal(err)
	}
	var sealed string
	for _, r := range tb.Test {
		if tb.Splits[r.ID] == testbed.SplitSealed {
			sealed = r.ID
			break
		}
	}
	answer := func(id string) string {
		var objs []map[string]any
		for i, r := range e.public {
			objs = append(objs, map[string]any{"id": r.ID, "label": i % 2})
		}
		objs = append(objs, map[string]any{"id": id, "label": 0})
		code, _, out := e.do("POST", "/v1/validate", tok, map[string]any{"predictions": objs})
		return fmt.Sprint(code, out["error"])
	}
	s, u := answer(sealed), answer("test-0000000000000000")
	if s != u || !strings.Contains(s, "no test row has this id") {
		t.Errorf("sealed id answered %q, unknown id %q", s, u)
	}
}
