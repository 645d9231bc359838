package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/campaign"
	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/pgtest"
)

// runData makes a data directory with the toy testbed installed.
func runData(t testing.TB) string {
	t.Helper()
	src := t.TempDir()
	writeToyTestbed(t, src)
	data := t.TempDir()
	if code, _, errs := aar(t, data, "testbed", "install", "toy", "--from", src, "--seeds", "6"); code != exitOK {
		t.Fatalf("install: %s", errs)
	}
	return data
}

func needSandbox(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and runs sandboxes")
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)")
	}
}

// ledgerEvent is one line of aar runs events.
type ledgerEvent struct {
	Seq      int64           `json:"seq"`
	Kind     string          `json:"kind"`
	Actor    string          `json:"actor"`
	Campaign string          `json:"campaign"`
	Body     json.RawMessage `json:"body"`
}

// campaignEvents reads every ledger event of a campaign through aar runs
// events (which opens the lab in data when none runs there).
func campaignEvents(t *testing.T, bin, data, id string) []ledgerEvent {
	t.Helper()
	out, err := exec.Command(bin, "runs", "events", id, "--data", data).Output()
	if err != nil {
		t.Fatalf("aar runs events %s: %v", id, err)
	}
	var evs []ledgerEvent
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e ledgerEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("events line: %v", err)
		}
		evs = append(evs, e)
	}
	return evs
}

// sessionDirections maps each researcher to the direction and system
// prompt its first session recorded.
func sessionDirections(t *testing.T, evs []ledgerEvent) (map[string]string, map[string]string) {
	dirs, prompts := map[string]string{}, map[string]string{}
	for _, e := range evs {
		if e.Kind != "transcript" {
			continue
		}
		var b struct {
			Type string `json:"type"`
			Data struct {
				Direction string `json:"direction"`
				System    string `json:"system"`
			} `json:"data"`
		}
		if json.Unmarshal(e.Body, &b) == nil && b.Type == "session" && b.Data.System != "" {
			dirs[e.Actor], prompts[e.Actor] = b.Data.Direction, b.Data.System
		}
	}
	return dirs, prompts
}

// TestRunNineDirections: a 9-researcher scripted campaign runs every
// built-in direction end to end; --undirected gives every researcher the
// same prompt.
func TestRunNineDirections(t *testing.T) {
	needSandbox(t)
	data := runData(t)
	bin := buildAar(t)
	script := filepath.Join(t.TempDir(), "turns.jsonl")
	os.WriteFile(script, []byte(`{"text": "Looking.", "calls": [{"name": "bash", "input": {"command": "head -c 80 /data/testbed.json"}}], "usage": {"input_tokens": 10, "output_tokens": 5}}
{"text": "Done.", "usage": {"input_tokens": 20, "output_tokens": 5}}
`), 0o644)
	for _, undirected := range []bool{false, true} {
		id := "dirs"
		args := []string{"run", "--data", data, "--testbed", "toy", "--backend", "scripted", "--script", script, "--researchers", "9", "--no-baselines", "--json"}
		if undirected {
			id = "undirected"
			args = append(args, "--undirected")
		}
		args = append(args, "--name", id)
		cmd := exec.Command(bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aar run %s: %v\n%s", id, err, stderr.String())
		}
		if !strings.Contains(stdout.String(), `"event":"researcher_exited"`) || !strings.Contains(stdout.String(), `"event":"progress"`) {
			t.Errorf("--json stream lacks events:\n%s", stdout.String())
		}
		dirs, prompts := sessionDirections(t, campaignEvents(t, bin, data, id))
		if len(dirs) != 9 {
			t.Fatalf("%s: %d researchers recorded a session, want 9", id, len(dirs))
		}
		distinct := map[string]bool{}
		for name, d := range dirs {
			distinct[d] = true
			if !strings.Contains(prompts[name], d) {
				t.Errorf("%s: %s's prompt lacks its direction", id, name)
			}
		}
		if undirected {
			first := ""
			for _, p := range prompts {
				if first == "" {
					first = p
				} else if p != first {
					t.Error("undirected researchers got different prompts")
				}
			}
			if len(distinct) != 1 || !distinct[campaign.Undirected] {
				t.Errorf("undirected directions: %v", distinct)
			}
			continue
		}
		for _, d := range campaign.Directions {
			if !distinct[d.Text] || dirs[d.Name] != d.Text {
				t.Errorf("direction %s (%q) was not run by researcher %s", d.Name, d.Family, d.Name)
			}
		}
	}
}

// TestRunKillResume SIGKILLs aar run mid-campaign, resumes it, and checks
// that no accepted submission, finding or snapshot was lost or duplicated
// and that the ledger verifies.
func TestRunKillResume(t *testing.T) {
	needSandbox(t)
	data := runData(t)
	bin := buildAar(t)
	// Wait for some accepted work, then kill -9 the supervisor (and its
	// embedded lab) mid-flight.
	cmd, _, _ := startRun(t, bin, data, "kr", 8)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// Its workers die with it.
	time.Sleep(500 * time.Millisecond)
	if procs := processesMentioning(data); len(procs) > 0 {
		t.Errorf("processes outlived the killed aar run: %v", procs)
	}
	before := campaignEvents(t, bin, data, "kr")
	resume := exec.Command(bin, "run", "--data", data, "--resume", "kr")
	var rerr bytes.Buffer
	resume.Stderr = &rerr
	if err := resume.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, rerr.String())
	}
	if !strings.Contains(rerr.String(), "every researcher finished") {
		t.Errorf("resume output:\n%s", rerr.String())
	}
	after := campaignEvents(t, bin, data, "kr")
	ids := func(evs []ledgerEvent) (map[string]int, map[string]int) {
		byID, byContent := map[string]int{}, map[string]int{}
		for _, e := range evs {
			var b map[string]any
			json.Unmarshal(e.Body, &b)
			switch e.Kind {
			case "submission.accepted":
				byID["sub "+b["id"].(string)]++
				byContent["sub "+e.Actor+" "+b["predictions_sha256"].(string)]++
			case "finding.posted":
				f, _ := b["finding"].(map[string]any)
				if f == nil {
					f = b
				}
				byID["finding "+f["id"].(string)]++
				byContent["finding "+e.Actor+" "+f["type"].(string)+" "+f["title"].(string)+" "+f["body"].(string)]++
			case "snapshot.pushed":
				byID["snap "+b["id"].(string)]++
				byContent["snap "+e.Actor+" "+b["tree"].(string)+" "+fmtAny(b["parent"])]++
			}
		}
		return byID, byContent
	}
	pre, _ := ids(before)
	post, content := ids(after)
	if len(pre) == 0 {
		t.Fatal("nothing was accepted before the kill")
	}
	for id := range pre {
		if post[id] != 1 {
			t.Errorf("%s: %d times after the resume, want 1", id, post[id])
		}
	}
	for k, n := range content {
		if n > 1 {
			t.Errorf("duplicated after the resume (%d×): %.120s", n, k)
		}
	}
	if len(post) <= len(pre) {
		t.Errorf("the resumed run accepted nothing new (%d before, %d after)", len(pre), len(post))
	}
	if code, out, errs := aar(t, data, "ledger", "verify"); code != 0 || !strings.Contains(out, "ledger verifies") {
		t.Errorf("ledger verify: %d %s %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(data, "runs", "kr", "report", "report.md")); err != nil {
		t.Errorf("no report after the resumed run: %v", err)
	}
	t.Logf("before the kill: %d submissions/findings/snapshots; after the resume: %d", len(pre), len(post))
}

func fmtAny(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// processesMentioning lists live processes whose command line holds s.
func processesMentioning(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, s) && !strings.Contains(cmd, "go test") {
			st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if !strings.Contains(string(st), ") Z ") {
				out = append(out, e.Name()+": "+cmd)
			}
		}
	}
	return out
}

// startRun starts aar run in the background and returns it once its
// researchers have made at least minSubs submissions, with an admin client
// from its control file.
func startRun(t *testing.T, bin, data, id string, minSubs int, extra ...string) (*exec.Cmd, *bytes.Buffer, *labclient.Client) {
	t.Helper()
	args := append([]string{"run", "--data", data, "--testbed", "toy", "--researchers", "3", "--name", id, "--no-baselines"}, extra...)
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		b, err := os.ReadFile(filepath.Join(data, "runs", id, "control.json"))
		if err != nil {
			continue
		}
		var c struct{ Lab, Token string }
		json.Unmarshal(b, &c)
		cl, _ := labclient.New(c.Lab, c.Token)
		info, err := cl.Campaign(context.Background(), id)
		if err != nil {
			continue
		}
		n := 0
		for _, r := range info.Researchers {
			n += r.Submissions
		}
		if n >= minSubs {
			return cmd, &stderr, cl
		}
	}
	t.Fatalf("no progress in 3 minutes:\n%s", stderr.String())
	return nil, nil, nil
}

// TestRunInterrupt: Ctrl-C stops a campaign cleanly — workers finish their
// step, sandboxes are destroyed, the report is written, the ledger verifies.
func TestRunInterrupt(t *testing.T) {
	needSandbox(t)
	data := runData(t)
	bin := buildAar(t)
	cmd, stderr, _ := startRun(t, bin, data, "int", 3)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("aar run after Ctrl-C: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted: stopped cleanly") {
		t.Errorf("output:\n%s", stderr.String())
	}
	if procs := processesMentioning(data); len(procs) > 0 {
		t.Errorf("processes outlived the stop: %v", procs)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "sandboxes")); len(ents) > 0 {
		t.Errorf("sandboxes left: %d", len(ents))
	}
	evs := campaignEvents(t, bin, data, "int")
	stops := 0
	var reasons []string
	for _, e := range evs {
		var b struct {
			Type string
			Data struct{ Reason string }
		}
		if e.Kind == "transcript" && json.Unmarshal(e.Body, &b) == nil && b.Type == "stop" {
			reasons = append(reasons, e.Actor+": "+b.Data.Reason)
			if b.Data.Reason == "stopped by the operator" {
				stops++
			}
		}
	}
	if stops != 3 {
		t.Errorf("%d researchers recorded an operator stop, want 3: %q", stops, reasons)
	}
	if _, err := os.Stat(filepath.Join(data, "runs", "int", "report", "report.md")); err != nil {
		t.Error(err)
	}
	if code, out, _ := aar(t, data, "ledger", "verify"); code != 0 || !strings.Contains(out, "ledger verifies") {
		t.Errorf("ledger verify: %s", out)
	}
}

// TestRunsControl: from another terminal, aar runs pauses and resumes a
// researcher, sends one a note, and stops the campaign.
func TestRunsControl(t *testing.T) {
	needSandbox(t)
	data := runData(t)
	bin := buildAar(t)
	cmd, stderr, cl := startRun(t, bin, data, "ctl", 2)
	runs := func(args ...string) string {
		out, err := exec.Command(bin, append([]string{"runs", "--data", data}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("aar runs %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	runs("pause", "ctl", "elicit")
	paused := false
	for range 100 {
		info, err := cl.Campaign(context.Background(), "ctl")
		if err == nil {
			for _, r := range info.Researchers {
				if r.Name == "elicit" && r.State == "paused" {
					paused = true
				}
			}
		}
		if paused {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !paused {
		t.Fatal("elicit never showed as paused")
	}
	if out := runs("show", "ctl"); !strings.Contains(out, "paused") {
		t.Errorf("runs show:\n%s", out)
	}
	runs("note", "ctl", "reweight", "try fewer epochs next")
	time.Sleep(2 * time.Second)
	runs("resume", "ctl", "elicit")
	time.Sleep(time.Second)
	runs("stop", "ctl")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("aar run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped by the operator (aar runs stop)") {
		t.Errorf("output:\n%s", stderr.String())
	}
	kinds := map[string]map[string]bool{}
	for _, e := range campaignEvents(t, bin, data, "ctl") {
		if e.Kind != "transcript" {
			continue
		}
		var b struct{ Type string }
		json.Unmarshal(e.Body, &b)
		if kinds[e.Actor] == nil {
			kinds[e.Actor] = map[string]bool{}
		}
		kinds[e.Actor][b.Type] = true
	}
	if !kinds["elicit"]["paused"] || !kinds["elicit"]["resumed"] {
		t.Errorf("elicit's transcript: %v", kinds["elicit"])
	}
	if !kinds["reweight"]["operator_note"] {
		t.Errorf("reweight's transcript has no operator note: %v", kinds["reweight"])
	}
	if out := runs("list"); !strings.Contains(out, "ctl") || !strings.Contains(out, "stopped") {
		t.Errorf("runs list:\n%s", out)
	}
}

// TestRunExternalLab: aar run against a lab it does not embed (--lab and an
// admin token): the campaign, its workers and its report go through the
// API alone.
func TestRunExternalLab(t *testing.T) {
	needSandbox(t)
	data := runData(t)
	bin := buildAar(t)
	l, admin := newLab(t, data)
	sock := filepath.Join(t.TempDir(), "lab.sock")
	serveLab(t, l, sock)
	script := filepath.Join(t.TempDir(), "turns.jsonl")
	os.WriteFile(script, []byte(`{"calls": [{"name": "bash", "input": {"command": "aar w2s train --view /data --seed 42 --out p/42.jsonl"}}], "usage": {}}
{"calls": [{"name": "submit_predictions", "input": {"files": ["p/42.jsonl"]}}], "usage": {}}
{"text": "Done.", "usage": {}}
`), 0o644)
	cmd := exec.Command(bin, "run", "--data", data, "--lab", "unix://"+sock, "--testbed", "toy", "--researchers", "2", "--backend", "scripted", "--script", script, "--name", "ext")
	cmd.Env = append(os.Environ(), "AAR_TOKEN="+admin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aar run --lab: %v\n%s", err, out)
	}
	cl, _ := labclient.New("unix://"+sock, admin)
	info, err := cl.Campaign(context.Background(), "ext")
	if err != nil {
		t.Fatal(err)
	}
	subs := 0
	for _, r := range info.Researchers {
		subs += r.Submissions
	}
	if subs != 2 || info.SpecSHA256 == "" {
		t.Errorf("campaign on the external lab: %d submissions, spec %q", subs, info.SpecSHA256)
	}
	rep, err := os.ReadFile(filepath.Join(data, "runs", "ext", "report", "report.md"))
	if err != nil || !strings.Contains(string(rep), "| elicit |") {
		t.Errorf("report (%v):\n%s", err, rep)
	}
}

// TestRunOnPostgresLab: a campaign on a lab whose ledger and forum are
// PostgreSQL (the cluster set-up): aar lab --db postgres://…, aar run --lab,
// transcripts, spend, the report, and the ledger verifying.
func TestRunOnPostgresLab(t *testing.T) {
	needSandbox(t)
	db := pgtest.FreshDatabase(t)
	data := runData(t)
	bin := buildAar(t)
	sock := filepath.Join(t.TempDir(), "lab.sock")
	lab, admin, _ := startLabProcess(t, bin, "--data", data, "--db", db, "--socket", sock)
	script := filepath.Join(t.TempDir(), "turns.jsonl")
	os.WriteFile(script, []byte(`{"calls": [{"name": "bash", "input": {"command": "aar w2s train --view /data --seed 42 --out p/42.jsonl"}}], "usage": {"input_tokens": 100, "output_tokens": 10}}
{"calls": [{"name": "submit_predictions", "input": {"files": ["p/42.jsonl"]}}, {"name": "notebook", "input": {"action": "append", "text": "submitted seed 42"}}], "usage": {"input_tokens": 200, "output_tokens": 20}}
{"text": "Done.", "usage": {}}
`), 0o644)
	cmd := exec.Command(bin, "run", "--data", data, "--lab", "unix://"+sock, "--testbed", "toy", "--researchers", "3", "--backend", "scripted", "--script", script, "--name", "pg")
	cmd.Env = append(os.Environ(), "AAR_TOKEN="+admin)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aar run on a PostgreSQL lab: %v\n%s", err, b)
	}
	cl, _ := labclient.New("unix://"+sock, admin)
	info, err := cl.Campaign(context.Background(), "pg")
	if err != nil {
		t.Fatal(err)
	}
	subs, calls := 0, int64(0)
	for _, r := range info.Researchers {
		subs += r.Submissions
		calls += r.Spend.ToolCalls
	}
	if subs != 3 || calls != 9 {
		t.Errorf("on PostgreSQL: %d submissions (want 3), %d tool calls (want 9)", subs, calls)
	}
	if _, err := os.Stat(filepath.Join(data, "runs", "pg", "report", "events.jsonl")); err != nil {
		t.Error(err)
	}
	lab.Process.Kill()
	lab.Wait()
	if code, out, errs := aar(t, data, "ledger", "verify", "--db", db); code != 0 || !strings.Contains(out, "ledger verifies") {
		t.Errorf("ledger verify on PostgreSQL: %d %s %s", code, out, errs)
	}
}

// TestRunBadInput: mistakes are refused with the fix named, before a lab is
// opened or anything runs.
func TestRunBadInput(t *testing.T) {
	data := t.TempDir()
	bad := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(bad, []byte("testbed: metamath\nresearcherz: 3\n"), 0o644)
	dirs := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(dirs, []byte("# nothing\n\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--testbed", "nosuch"}, exitNotFound, `testbed "nosuch" not found`},
		{[]string{"--backend", "gpt"}, exitUsage, `backend "gpt"`},
		{[]string{"-f", bad}, exitInput, "researcherz"},
		{[]string{"--directions", dirs}, exitInput, "holds no direction"},
		{[]string{"--policy", "lenient"}, exitUsage, `policy "lenient"`},
		{[]string{"--sharing", "everything"}, exitUsage, "conditions.sharing"},
		{[]string{"--researchers", "1001"}, exitUsage, "at most 1000"},
		{[]string{"--resume", "x", "--testbed", "toy"}, exitUsage, "--resume takes the campaign's spec from the ledger"},
		{[]string{"--lab", "http://127.0.0.1:1"}, exitUsage, "needs an admin token"},
		{[]string{"--backend", "agent-cli"}, exitUsage, "the agent-cli backend needs agent_command"},
		{[]string{"--verify-top", "-1"}, exitUsage, "--verify-top -1"},
		{[]string{"--sandbox", "vm"}, exitUsage, `--sandbox "vm": give local, docker or kubernetes`},
		{[]string{"--sandbox", "kubernetes"}, exitUsage, "--sandbox kubernetes needs --lab"},
		{[]string{"--gpus", "2"}, exitUsage, "--gpus applies to --sandbox docker or kubernetes"},
		{[]string{"--docker-image", "x"}, exitUsage, "--docker-image and --docker-runtime apply to --sandbox docker only"},
	} {
		t.Setenv("AAR_TOKEN", "")
		code, _, errs := aar(t, data, append([]string{"run"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("aar run %v: exit %d (want %d), %q (want %q)", c.args, code, c.code, errs, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "lab.db")); err == nil {
		t.Error("a refused aar run created a lab")
	}
}

// startLabProcess runs `aar lab ARGS --addr 127.0.0.1:0` as a user would and
// returns it with the admin token and the dashboard's base URL it printed.
func startLabProcess(t *testing.T, bin string, args ...string) (*exec.Cmd, string, string) {
	t.Helper()
	lab := exec.Command(bin, append(append([]string{"lab"}, args...), "--addr", "127.0.0.1:0")...)
	out, _ := lab.StdoutPipe()
	lab.Stderr = os.Stderr
	if err := lab.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Process.Kill(); lab.Wait() })
	sc := bufio.NewScanner(out)
	var admin, base string
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "aar_") {
			admin = line
		}
		if m := regexp.MustCompile(`dashboard: (http://[0-9.:]+)/`).FindStringSubmatch(line); m != nil {
			base = m[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if admin == "" || base == "" {
		t.Fatal("the lab did not print its admin token and address")
	}
	return lab, admin, base
}
