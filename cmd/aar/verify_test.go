package main

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
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/builtin"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/sandbox/bwrap"
	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/snapshot"
	"github.com/aar-lab/aar/internal/testbed"
	"github.com/aar-lab/aar/internal/verify"
	"github.com/aar-lab/aar/internal/w2s"
	"github.com/aar-lab/aar/internal/web"
)

// hackSpec is a hack corpus entry's hack.json.
type hackSpec struct {
	Name  string `json:"name"`
	Study string `json:"study"`
	// Kind: "snapshot" (the method itself cheats), "submission" (the
	// submitted rows were edited), "cherry_pick" (seeds picked by score),
	// "probe" (a series of submissions that extracts labels).
	Kind string `json:"kind"`
	Edit *struct {
		Share float64 `json:"share"`
	} `json:"edit"`
	CherryPick *struct {
		Seeds int `json:"seeds"`
		Keep  int `json:"keep"`
	} `json:"cherry_pick"`
	Probe *struct {
		Group int `json:"group"`
		Steps int `json:"steps"`
	} `json:"probe"`
	ExpectFlags    []string `json:"expect_flags"`
	ExpectLabels   []string `json:"expect_labels"`
	ExpectSubFlags []string `json:"expect_submission_flags"`
	files          []snapshot.File
	honest         bool
}

// loadHacks reads testdata/hacks.
func loadHacks(t *testing.T) []hackSpec {
	t.Helper()
	root := filepath.Join("..", "..", "testdata", "hacks")
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []hackSpec
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		var h hackSpec
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "hack.json"))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&h); err != nil {
			t.Fatalf("%s/hack.json: %v", e.Name(), err)
		}
		fdir := filepath.Join(root, e.Name(), "files")
		_ = filepath.WalkDir(fdir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(fdir, p)
			h.files = append(h.files, snapshot.File{Path: filepath.ToSlash(rel), Mode: 0o644, Data: data})
			return nil
		})
		out = append(out, h)
	}
	return out
}

// corpusEnv is a lab on the honeypot testbed with a verifier.
type corpusEnv struct {
	lab      *lab.Lab
	admin    string
	tb       *testbed.Testbed
	view     string
	backend  *bwrap.Backend
	bin      string
	verifier *verify.Verifier
	weak     []string // the public view's weak seeds
}

func newCorpusEnv(t *testing.T) *corpusEnv {
	t.Helper()
	return newVerifyEnv(t, builtin.VerifyTestbed)
}

// newVerifyEnv is a lab with one installed built-in testbed and a verifier.
func newVerifyEnv(t *testing.T, name string) *corpusEnv {
	t.Helper()
	needSandbox(t)
	for _, p := range []string{"strace", "python3"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (.ci/run installs it)", p)
		}
	}
	bin := buildAar(t)
	data := t.TempDir()
	tbs, _ := filepath.Abs(filepath.Join("..", "..", "testbeds"))
	t.Setenv("AAR_TESTBEDS", tbs)
	// A fixed split and verification key: the corpus's figures are one
	// reproducible draw, not a new one each run.
	if code, _, errs := aar(t, data, "testbed", "install", name, "--split-seed", "20261129"); code != exitOK {
		t.Fatalf("install: %s", errs)
	}
	l, admin := newLab(t, data)
	tb, err := l.TestbedByName(name)
	if err != nil {
		t.Fatal(err)
	}
	view := filepath.Join(t.TempDir(), "view")
	if err := tb.WritePublic(view, false); err != nil {
		t.Fatal(err)
	}
	backend := &bwrap.Backend{Root: filepath.Join(data, "sandboxes")}
	vf, err := verify.New(verify.Options{Lab: l, Backend: backend, AarBinary: bin, WorkDir: filepath.Join(data, "verify"), Shortcuts: verify.HoneypotShortcuts, Key: []byte("hack-corpus-fixed-key")})
	if err != nil {
		t.Fatal(err)
	}
	l.SetVerifier(vf.Verify)
	e := &corpusEnv{lab: l, admin: admin, tb: tb, view: view, backend: backend, bin: bin, verifier: vf}
	for _, s := range tb.Soft {
		e.weak = append(e.weak, s.Seed)
	}
	return e
}

// researcher makes a campaign of its own (so that one entry's submissions
// are never near-duplicates of another's) and a researcher token in it.
func (e *corpusEnv) researcher(t *testing.T, name string) *lab.Identity {
	t.Helper()
	ctx := context.Background()
	if _, err := e.lab.CreateCampaign(ctx, lab.Campaign{ID: "hc-" + name, Testbed: e.tb.Manifest.Name}); err != nil {
		t.Fatal(err)
	}
	tok, err := e.lab.CreateToken(ctx, name, "hc-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return e.lab.Authenticate(tok)
}

// run runs a method's files over the public view for seeds, as a
// researcher would in their sandbox, and returns each seed's predictions as
// the submission's JSON.
func (e *corpusEnv) run(t *testing.T, name string, files []snapshot.File, seeds []string) map[string]map[string]int {
	t.Helper()
	c, err := verify.ParseContract(fileData(files, verify.ContractFile))
	if err != nil {
		t.Fatal(err)
	}
	runs := verify.Run(context.Background(), verify.RunSpec{Backend: e.backend, AarBinary: e.bin, ID: "corpus-" + name,
		Files: files, Command: c.Method.Command, View: e.view, Testbed: e.tb.Manifest.Name, Classes: len(e.tb.Manifest.Classes), Seeds: seeds})
	out := map[string]map[string]int{}
	for _, r := range runs {
		if r.Err != "" {
			t.Fatalf("%s seed %s: %s", name, r.Seed, r.Err)
		}
		out[r.Seed] = r.Preds
	}
	return out
}

func fileData(files []snapshot.File, p string) []byte {
	for _, f := range files {
		if f.Path == p {
			return f.Data
		}
	}
	return nil
}

// push stores files as the researcher's snapshot.
func (e *corpusEnv) push(t *testing.T, id *lab.Identity, files []snapshot.File) string {
	t.Helper()
	_, archive, err := snapshot.FromFiles(files, snapshot.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.lab.PushSnapshot(context.Background(), id, bytes.NewReader(archive), "")
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// submit sends seeds' predictions with a snapshot.
func (e *corpusEnv) submit(t *testing.T, id *lab.Identity, preds map[string]map[string]int, snap string) string {
	t.Helper()
	req := &lab.SubmitRequest{Seeds: map[string]json.RawMessage{}, Snapshot: snap}
	for seed, p := range preds {
		var b strings.Builder
		for rid, k := range p {
			fmt.Fprintf(&b, "{\"id\":%q,\"label\":%d}\n", rid, k)
		}
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		raw := "[" + strings.Join(lines, ",") + "]"
		req.Seeds[seed] = json.RawMessage(raw)
	}
	resp, err := e.lab.Submit(context.Background(), id, req, "")
	if err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

// corpusResult is one entry's outcome.
type corpusResult struct {
	name    string
	honest  bool
	flags   []string
	labels  []string
	seconds float64
	sealed  float64
	holdout float64
	hasPGR  bool
}

// TestHackCorpus runs every cheat of testdata/hacks and every built-in
// baseline through the lab on the honeypot testbed and aar verify's checks:
// each cheat must be flagged with its reason (visible in the review queue),
// no honest baseline may get a cheat flag, and every baseline must replay
// and land its sealed PGR within the interval of its holdout PGR.
func TestHackCorpus(t *testing.T) {
	e := newCorpusEnv(t)
	hacks := loadHacks(t)
	if len(hacks) < 8 {
		t.Fatalf("the corpus has %d entries, want at least 8", len(hacks))
	}
	for _, m := range w2s.Methods {
		hacks = append(hacks, hackSpec{Name: "baseline_" + m.Name, Kind: "snapshot", files: verify.BaselineFiles(m.Name), honest: true})
	}
	claimed := e.weak[:5]
	var mu sync.Mutex
	var results []corpusResult
	sem := make(chan struct{}, 3)
	t.Run("entries", func(t *testing.T) {
		for _, h := range hacks {
			t.Run(h.Name, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				id := e.researcher(t, h.Name)
				var sub string
				switch h.Kind {
				case "probe":
					e.probe(t, id, h)
					return
				case "snapshot":
					snap := e.push(t, id, h.files)
					sub = e.submit(t, id, e.run(t, h.Name, h.files, claimed), snap)
				case "submission":
					snap := e.push(t, id, h.files)
					preds := e.run(t, h.Name, h.files, claimed)
					edited := 0
					for _, seed := range claimed {
						ids := make([]string, 0, len(preds[seed]))
						for rid := range preds[seed] {
							ids = append(ids, rid)
						}
						sort.Strings(ids)
						// Override a share of the rows by id with the true labels.
						for i, rid := range ids {
							if float64(i%1000)/1000 < h.Edit.Share {
								if r := rowByID(e.tb, rid); r != nil && preds[seed][rid] != r.Label {
									preds[seed][rid] = r.Label
									edited++
								}
							}
						}
					}
					t.Logf("%s: %d rows overridden across %d seeds", h.Name, edited, len(claimed))
					sub = e.submit(t, id, preds, snap)
				case "cherry_pick":
					snap := e.push(t, id, h.files)
					all := e.run(t, h.Name, h.files, e.weak[:h.CherryPick.Seeds])
					type seedPGR struct {
						seed string
						pgr  float64
					}
					var ranked []seedPGR
					for seed, p := range all {
						rep, err := score.Score(e.tb, []score.Predictions{{Seed: seed, Labels: p}}, []string{testbed.SplitFeedback})
						if err != nil {
							t.Fatal(err)
						}
						ranked = append(ranked, seedPGR{seed, rep.Cell(testbed.SplitFeedback, testbed.GroupOverall).PGR.Mean})
					}
					sort.Slice(ranked, func(i, j int) bool { return ranked[i].pgr > ranked[j].pgr })
					kept := map[string]map[string]int{}
					for _, r := range ranked[:h.CherryPick.Keep] {
						kept[r.seed] = all[r.seed]
					}
					t.Logf("%s: feedback PGR per seed %v; kept the best %d", h.Name, ranked, h.CherryPick.Keep)
					sub = e.submit(t, id, kept, snap)
				default:
					t.Fatalf("unknown kind %q", h.Kind)
				}
				v, err := e.verifier.Verify(context.Background(), sub)
				if err != nil {
					t.Fatal(err)
				}
				res := corpusResult{name: h.Name, honest: h.honest, labels: v.Labels, seconds: v.Seconds}
				for _, f := range v.Flags {
					res.flags = append(res.flags, f.Kind)
				}
				var lines []string
				for _, c := range v.Checks {
					lines = append(lines, fmt.Sprintf("%s %s: %s", c.Check, c.Status, c.Summary))
				}
				t.Logf("%s: %s in %.1fs, flags %v, labels %v\n  %s", h.Name, v.Verdict, v.Seconds, res.flags, v.Labels, strings.Join(lines, "\n  "))
				if v.Sealed != nil {
					res.sealed, res.hasPGR = v.Sealed.Mean, true
					if c := subHoldout(e.lab, sub); c != nil {
						res.holdout = c.Mean
					}
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				if h.honest {
					if raw, err := e.lab.GetSubmission(&lab.Identity{Role: lab.RoleAdmin}, sub); err == nil && len(raw.(*lab.Submission).Flags) > 0 {
						t.Errorf("honest baseline %s's submission was flagged: %v", h.Name, raw.(*lab.Submission).Flags)
					}
					if len(v.Flags) > 0 {
						t.Errorf("honest baseline %s got cheat flags: %v", h.Name, v.Flags)
					}
					if v.Verdict != lab.VerdictVerified {
						t.Errorf("baseline %s: verdict %s, want verified", h.Name, v.Verdict)
					}
					// (Sealed against holdout PGR is checked on the real
					// testbeds by make verify-baselines: the honeypot's tiny
					// weak teacher makes its figures too noisy for a CI
					// check.)
					return
				}
				for _, want := range h.ExpectFlags {
					if !slices.Contains(res.flags, want) {
						t.Errorf("%s: want flag %s, got %v", h.Name, want, res.flags)
					}
				}
				for _, want := range h.ExpectLabels {
					if !slices.Contains(v.Labels, want) {
						t.Errorf("%s: want label %s, got %v", h.Name, want, v.Labels)
					}
				}
			})
		}
	})

	// The reasons are in the review queue.
	srv, err := web.New(e.lab, web.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	if resp, err := c.PostForm(ts.URL+"/login", url.Values{"token": {e.admin}, "next": {"/"}}); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	for _, h := range hacks {
		resp, err := c.Get(ts.URL + "/campaigns/hc-" + h.Name + "/review")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, k := range append(append([]string(nil), h.ExpectFlags...), h.ExpectSubFlags...) {
			if !strings.Contains(string(page), k) {
				t.Errorf("the review queue does not show %s's reason %q", h.Name, k)
			}
		}
	}

	// Figures.
	var caught, cheats, falseFlags, honest int
	var secs []float64
	for _, r := range results {
		secs = append(secs, r.seconds)
		if r.honest {
			honest++
			if len(r.flags) > 0 {
				falseFlags++
			}
			continue
		}
		cheats++
		if len(r.flags) > 0 {
			caught++
		}
	}
	sort.Float64s(secs)
	if len(secs) > 0 {
		var sum float64
		for _, s := range secs {
			sum += s
		}
		t.Logf("verified %d results: %d of %d verified cheats flagged, %d of %d honest baselines falsely flagged (false-flag rate %.2f); verify time per result mean %.1fs, max %.1fs",
			len(results), caught, cheats, falseFlags, honest, float64(falseFlags)/float64(max(honest, 1)), sum/float64(len(secs)), secs[len(secs)-1])
	}
	for _, r := range results {
		if r.honest && r.hasPGR {
			t.Logf("  %-44s sealed PGR %.3f, holdout PGR %.3f", r.name, r.sealed, r.holdout)
		}
	}
}

// probe submits a base and a series of group flips, as a label-extraction
// attack does, and checks the detector's flags on the submissions.
func (e *corpusEnv) probe(t *testing.T, id *lab.Identity, h hackSpec) {
	t.Helper()
	files := verify.BaselineFiles("vanilla_w2s")
	base := e.run(t, h.Name, files, e.weak[:1])[e.weak[0]]
	ids := make([]string, 0, len(base))
	for rid := range base {
		ids = append(ids, rid)
	}
	sort.Strings(ids)
	seen := map[string]bool{}
	e.submit(t, id, map[string]map[string]int{"0": base}, "")
	for step := 0; step < h.Probe.Steps; step++ {
		p := map[string]int{}
		for k, v := range base {
			p[k] = v
		}
		for _, rid := range ids[step*h.Probe.Group : (step+1)*h.Probe.Group] {
			p[rid] = 1 - p[rid]
		}
		sub := e.submit(t, id, map[string]map[string]int{"0": p}, "")
		raw, err := e.lab.GetSubmission(&lab.Identity{Role: lab.RoleAdmin}, sub)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range raw.(*lab.Submission).Flags {
			seen[f.Kind] = true
		}
	}
	for _, want := range h.ExpectSubFlags {
		if !seen[want] {
			t.Errorf("%s: want submission flag %s, got %v", h.Name, want, seen)
		}
	}
	t.Logf("%s: %d submissions of %d-row flips flagged %v", h.Name, h.Probe.Steps, h.Probe.Group, seen)
}

func rowByID(tb *testbed.Testbed, id string) *testbed.Row {
	for i := range tb.Test {
		if tb.Test[i].ID == id {
			return &tb.Test[i]
		}
	}
	return nil
}

func subHoldout(l *lab.Lab, sub string) *struct{ Mean, SE float64 } {
	raw, err := l.GetSubmission(&lab.Identity{Role: lab.RoleAdmin}, sub)
	if err != nil {
		return nil
	}
	c := raw.(*lab.Submission).Report.Cell(testbed.SplitHoldout, testbed.GroupOverall)
	if c == nil || c.PGR == nil {
		return nil
	}
	return &struct{ Mean, SE float64 }{c.PGR.Mean, c.PGR.SE}
}

// TestVerifyCLI runs a campaign with the built-in researcher, whose result
// aar run verifies at the end (--verify-top), then verifies it again with
// aar verify, and checks the ledger events, the report and bad input.
func TestVerifyCLI(t *testing.T) {
	needSandbox(t)
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace is not installed (.ci/run installs it)")
	}
	data := runData(t)
	bin := buildAar(t)
	cmd := exec.Command(bin, "run", "--data", data, "--testbed", "toy", "--researchers", "1", "--name", "vc", "--no-baselines", "--verify-top", "1")
	cmd.Env = append(os.Environ(), "ANTHROPIC_API_KEY=", "OPENAI_API_KEY=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aar run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "verifying result 1 of 1") {
		t.Fatalf("aar run did not verify its best result:\n%s", stderr.String())
	}
	var rep struct {
		Verified []struct {
			Submission string   `json:"submission"`
			Verdict    string   `json:"verdict"`
			Sealed     *float64 `json:"sealed_pgr"`
		} `json:"verified"`
	}
	b, err := os.ReadFile(filepath.Join(data, "runs", "vc", "report", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Verified) != 1 {
		t.Fatalf("report.json verified = %+v (%v)", rep.Verified, err)
	}
	v := rep.Verified[0]
	if v.Verdict != lab.VerdictVerified || v.Sealed == nil {
		t.Errorf("the built-in researcher's result: verdict %s, sealed PGR %v; want verified with a figure\n%s", v.Verdict, v.Sealed, stderr.String())
	}
	md, _ := os.ReadFile(filepath.Join(data, "runs", "vc", "report", "report.md"))
	if !strings.Contains(string(md), "## Verified results, ranked by sealed PGR") || !strings.Contains(string(md), v.Submission) {
		t.Errorf("report.md lacks the verified results:\n%s", md)
	}

	// aar verify again, as JSON.
	out, err := exec.Command(bin, "verify", "--data", data, v.Submission, "--json", "--no-transfer").Output()
	if err != nil {
		t.Fatalf("aar verify: %v", err)
	}
	var got lab.Verification
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("aar verify --json: %v\n%s", err, out)
	}
	checks := map[string]string{}
	for _, c := range got.Checks {
		checks[c.Check] = c.Status
	}
	for check, want := range map[string]string{"contract": "pass", "replay": "pass", "sealed": "pass", "teacher_ablation": "info", "sandbox_audit": "pass", "complexity": "info"} {
		if checks[check] != want {
			t.Errorf("check %s: %q, want %q (all: %v)", check, checks[check], want, checks)
		}
	}
	// Every check and the verdict are ledger events.
	kinds := map[string]int{}
	for _, e := range campaignEvents(t, bin, data, "vc") {
		kinds[e.Kind]++
	}
	if kinds["verify.check"] < 2*len(got.Checks)-1 || kinds["verify.done"] != 2 {
		t.Errorf("ledger: %d verify.check and %d verify.done events, want ≥ %d and 2", kinds["verify.check"], kinds["verify.done"], 2*len(got.Checks)-1)
	}

	// Bad input: an unknown id, changing nothing.
	before := kinds["verify.done"]
	c := exec.Command(bin, "verify", "--data", data, "sub_nope")
	var errb bytes.Buffer
	c.Stderr = &errb
	err = c.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(errb.String(), "neither a submission nor a snapshot") {
		t.Errorf("aar verify sub_nope: %v, %s", err, errb.String())
	}
	after := 0
	for _, e := range campaignEvents(t, bin, data, "vc") {
		if e.Kind == "verify.done" {
			after++
		}
	}
	if after != before {
		t.Errorf("a refused verify recorded a verification")
	}
}

// TestVerifyBuiltinBaselines (make verify-baselines; skipped unless
// AAR_VERIFY_BASELINES names testbeds, e.g. "metamath,reviews") verifies
// every built-in baseline on each testbed: replay, sealed PGR against
// holdout PGR, verify time; it writes a markdown table to
// $AAR_VERIFY_OUT (default docs/verify/baselines.md).
func TestVerifyBuiltinBaselines(t *testing.T) {
	names := os.Getenv("AAR_VERIFY_BASELINES")
	if names == "" {
		t.Skip("set AAR_VERIFY_BASELINES=metamath,reviews,... (make verify-baselines)")
	}
	out := os.Getenv("AAR_VERIFY_OUT")
	if out == "" {
		out = filepath.Join("..", "..", "docs", "verify", "baselines.md")
	}
	var b strings.Builder
	b.WriteString("| testbed | method | verdict | replay | sealed PGR [95% CI] | holdout PGR ± SE | holdout in the sealed CI | flags | verify s |\n|---|---|---|---|---|---|---|---|---|\n")
	var within, total int
	var secs []float64
	for _, name := range strings.Split(names, ",") {
		e := newVerifyEnv(t, strings.TrimSpace(name))
		for _, m := range w2s.Methods {
			files := verify.BaselineFiles(m.Name)
			id := e.researcher(t, m.Name)
			snap := e.push(t, id, files)
			sub := e.submit(t, id, e.run(t, m.Name, files, e.weak[:5]), snap)
			v, err := e.verifier.Verify(context.Background(), sub)
			if err != nil {
				t.Fatal(err)
			}
			replay, sealed, in := "", "—", "—"
			for _, c := range v.Checks {
				if c.Check == "replay" {
					replay = fmt.Sprintf("%v", c.Figures["agreement"])
				}
			}
			h := subHoldout(e.lab, sub)
			if v.Sealed != nil && v.SealedLo != nil {
				sealed = fmt.Sprintf("%.3f [%.3f, %.3f]", v.Sealed.Mean, *v.SealedLo, *v.SealedHi)
				total++
				if h != nil && h.Mean >= *v.SealedLo && h.Mean <= *v.SealedHi {
					within++
					in = "yes"
				} else {
					in = "no"
				}
			}
			hs := "—"
			if h != nil {
				hs = fmt.Sprintf("%.3f ± %.3f", h.Mean, h.SE)
			}
			var flags []string
			for _, f := range v.Flags {
				flags = append(flags, f.Kind)
			}
			secs = append(secs, v.Seconds)
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %.1f |\n", name, m.Name, v.Verdict, replay, sealed, hs, in, strings.Join(flags, ", "), v.Seconds)
			t.Logf("%s %s: %s, sealed %s, holdout %s, flags %v (%.1fs)", name, m.Name, v.Verdict, sealed, hs, flags, v.Seconds)
		}
		// What is measured so far, after each testbed.
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err == nil {
			_ = os.WriteFile(out, []byte(b.String()), 0o644)
		}
	}
	sort.Float64s(secs)
	fmt.Fprintf(&b, "\nHoldout PGR inside the sealed re-run's 95%% interval: %d of %d. Verify time per result: median %.1f s, max %.1f s (2 cores, no transfer).\n", within, total, secs[len(secs)/2], secs[len(secs)-1])
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}
