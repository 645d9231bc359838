package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/jsonl"
)

const fixture = "../../internal/testbed/testdata/study"

// aar runs the command line in-process with --data set and returns the exit
// code, stdout and stderr.
func aar(t testing.TB, data string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if data != "" {
		args = append([]string{"--data", data}, args...)
	}
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestEndToEnd(t *testing.T) {
	data := t.TempDir()
	code, out, errs := aar(t, data, "testbed", "import", filepath.Join(fixture, "labeled_data", "chat"),
		"--name", "chat", "--cache", filepath.Join(fixture, "cache_results"), "--split-seed", "4")
	if code != exitOK {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	for _, w := range []string{"imported testbed chat", "feedback 16, holdout 16, sealed 8", "OOD rm_bench_chat", "study's chat preset"} {
		if !strings.Contains(out, w) {
			t.Errorf("import output lacks %q:\n%s", w, out)
		}
	}

	code, out, _ = aar(t, data, "testbed", "list", "--json")
	var list []map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["name"] != "chat" {
		t.Errorf("list --json: exit %d %s", code, out)
	}
	code, out, _ = aar(t, data, "testbed", "show", "chat")
	if code != exitOK || !strings.Contains(out, "sealed    ood      4") || !strings.Contains(out, "A=0, B=1") {
		t.Errorf("show: exit %d\n%s", code, out)
	}

	pub := filepath.Join(t.TempDir(), "public")
	if code, out, errs = aar(t, data, "testbed", "public", "chat", pub); code != exitOK {
		t.Fatalf("public: exit %d %s %s", code, out, errs)
	}
	// Predict "A" for every public row, as a JSON array in public order and
	// as JSONL.
	lines, err := jsonl.ReadFile(filepath.Join(pub, "test.jsonl"), jsonl.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	arr := make([]int, len(lines))
	var jl strings.Builder
	for _, ln := range lines {
		fmt.Fprintf(&jl, "{\"id\":%s,\"label\":0}\n", ln.Fields["id"])
	}
	ab, _ := json.Marshal(arr)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := write("1.json", string(ab)), write("2.jsonl", jl.String())

	code, out, errs = aar(t, data, "score", "--testbed", "chat", "--json", a, b)
	if code != exitOK {
		t.Fatalf("score: exit %d %s", code, errs)
	}
	var rep struct {
		Seeds []string
		Cells []struct {
			Split, Group string
			Rows         int
			Accuracy     struct{ Mean, SE float64 }
			PGR          *struct{ Mean float64 }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	// "A" everywhere is right on exactly the label-A half of every cell:
	// accuracy 0.5; PGR overall (0.5−0.375)/0.5 = 0.25, ID (0.5−0.5)/0.5 = 0,
	// OOD (0.5−0.25)/0.5 = 0.5.
	wantPGR := map[string]float64{"overall": 0.25, "id": 0, "ood": 0.5}
	if len(rep.Cells) != 6 || len(rep.Seeds) != 2 || rep.Seeds[0] != "1" {
		t.Fatalf("report: %s", out)
	}
	for _, c := range rep.Cells {
		if c.Accuracy.Mean != 0.5 || c.Accuracy.SE != 0 || c.PGR == nil || c.PGR.Mean != wantPGR[c.Group] {
			t.Errorf("%s/%s: %+v", c.Split, c.Group, c)
		}
	}
	code, out, _ = aar(t, data, "score", "--testbed", "chat", "--split", "feedback", "--compare", b, a)
	if code != exitOK || !strings.Contains(out, "feedback  overall  16    0.5000") || !strings.Contains(out, "+0.0000 [+0.0000, +0.0000]") {
		t.Errorf("score text: exit %d\n%s", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	data := t.TempDir()
	good := filepath.Join(fixture, "labeled_data", "chat")
	cases := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"unknown command", []string{"frobnicate"}, exitUsage, "Try: aar --help"},
		{"unknown subcommand", []string{"testbed", "frob"}, exitUsage, "Try: aar testbed --help"},
		{"missing name", []string{"testbed", "import", good}, exitUsage, "--name is required"},
		{"bad flag", []string{"testbed", "list", "--colour"}, exitUsage, "unknown flag"},
		{"too many args", []string{"testbed", "show", "a", "b"}, exitUsage, "Try: aar testbed show --help"},
		{"bad split", []string{"score", "--testbed", "x", "--split", "train", "p"}, exitUsage, "use feedback, holdout, sealed or all"},
		{"bad seed", []string{"testbed", "import", good, "--name", "x", "--split-seed", "-3"}, exitUsage, "--split-seed"},
		{"not found", []string{"testbed", "show", "nope"}, exitNotFound, `testbed "nope" not found`},
		{"score not found", []string{"score", "--testbed", "nope", "p.jsonl"}, exitNotFound, "not found"},
		{"invalid input", []string{"testbed", "import", filepath.Join(fixture, "cache_results"), "--name", "x"}, exitInput, "train_label.jsonl: file does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := aar(t, data, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, want %d; stderr %q lacks %q?", code, tc.code, errs, tc.want)
			}
		})
	}
	// Nothing was imported by any of them.
	if _, out, _ := aar(t, data, "testbed", "list"); !strings.Contains(out, "no testbeds yet") {
		t.Errorf("list after failures: %s", out)
	}
	if code, out, _ := aar(t, data, "--help"); code != exitOK || !strings.Contains(out, "Exit codes") {
		t.Errorf("--help: %d %s", code, out)
	}
}

func TestDataDirResolution(t *testing.T) {
	g := &globals{}
	t.Setenv("AAR_DATA", "/tmp/from-env")
	if d, _ := g.dataDir(); d != "/tmp/from-env" {
		t.Errorf("AAR_DATA: %s", d)
	}
	g.data = "/tmp/from-flag"
	if d, _ := g.dataDir(); d != "/tmp/from-flag" {
		t.Errorf("--data: %s", d)
	}
	g.data = ""
	t.Setenv("AAR_DATA", "")
	t.Setenv("XDG_DATA_HOME", "/tmp/xdg")
	if d, _ := g.dataDir(); d != "/tmp/xdg/aar" {
		t.Errorf("XDG_DATA_HOME: %s", d)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/tmp/home")
	if d, _ := g.dataDir(); d != "/tmp/home/.local/share/aar" {
		t.Errorf("default: %s", d)
	}
}
