package labmcp_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/lab"
)

// TestMCPTypeScriptClient runs the official TypeScript SDK
// (testdata/tsclient, @modelcontextprotocol/sdk pinned in its
// package.json) against a real lab, as a client independent of the Go SDK.
// It needs node and a directory where `npm ci` was run for that package:
// AAR_TEST_MCP_TS=internal/labmcp/testdata/tsclient (.ci/run sets it).
func TestMCPTypeScriptClient(t *testing.T) {
	dir := os.Getenv("AAR_TEST_MCP_TS")
	if dir == "" {
		t.Skip("set AAR_TEST_MCP_TS to a directory where `npm ci` was run for internal/labmcp/testdata/tsclient (.ci/run does)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("AAR_TEST_MCP_TS is set but node is not installed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil {
		t.Fatalf("AAR_TEST_MCP_TS=%s has no node_modules/@modelcontextprotocol/sdk: run npm ci there", dir)
	}
	// Run this repository's script from inside dir, so that its imports
	// resolve to dir's node_modules.
	src, err := os.ReadFile(filepath.Join("testdata", "tsclient", "index.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.CreateTemp(dir, ".aar-test-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(script.Name()) })
	if _, err := script.Write(src); err != nil {
		t.Fatal(err)
	}
	script.Close()

	e := newEnv(t)
	ctx := context.Background()
	alice := e.id(e.alice)
	if _, err := e.lab.PostFinding(ctx, alice, forum.Finding{Type: "insight", Title: "typescript clients work", Body: "the same tools", Family: "other"}); err != nil {
		t.Fatal(err)
	}
	seeds := map[string]any{"42": e.preds(func(i int) int { return (i / 3) % 2 }), "43": e.preds(func(i int) int { return (i/3 + 1) % 2 })}
	seedsFile := filepath.Join(t.TempDir(), "seeds.json")
	if err := os.WriteFile(seedsFile, mustJSON(t, seeds), 0o644); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, node, script.Name())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AAR_MCP_URL="+e.tcp+"/mcp", "AAR_TOKEN="+e.alice, "AAR_SEEDS_FILE="+seedsFile)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	type answer struct {
		IsError    bool           `json:"isError"`
		Structured map[string]any `json:"structured"`
		Text       string         `json:"text"`
	}
	var out struct {
		Server struct {
			Name string `json:"name"`
		} `json:"server"`
		Protocol string `json:"protocol"`
		Tools    []struct {
			Name     string   `json:"name"`
			Required []string `json:"required"`
		} `json:"tools"`
		Leaderboard       answer `json:"leaderboard"`
		LeaderboardAfter  answer `json:"leaderboard_after"`
		NotebookAppend    answer `json:"notebook_append"`
		NotebookRead      answer `json:"notebook_read"`
		SearchFindings    answer `json:"search_findings"`
		SubmitPredictions answer `json:"submit_predictions"`
		ForbiddenField    answer `json:"forbidden_field"`
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("the script's output: %v\n%s", err, stdout)
	}
	t.Logf("TypeScript SDK: server %s, protocol %s", out.Server.Name, out.Protocol)
	var names []string
	for _, tl := range out.Tools {
		names = append(names, tl.Name)
		if tl.Name == "submit_predictions" && !slices.Equal(tl.Required, []string{"seeds"}) {
			t.Errorf("submit_predictions' schema requires %v", tl.Required)
		}
	}
	if !slices.Equal(names, wantTools) {
		t.Fatalf("tools: %v", names)
	}
	for name, a := range map[string]answer{"leaderboard": out.Leaderboard, "notebook_append": out.NotebookAppend, "notebook_read": out.NotebookRead,
		"search_findings": out.SearchFindings, "submit_predictions": out.SubmitPredictions, "leaderboard (after)": out.LeaderboardAfter} {
		if a.IsError || a.Structured == nil {
			t.Fatalf("%s: %+v", name, a)
		}
		var fromText map[string]any
		if err := json.Unmarshal([]byte(a.Text), &fromText); err != nil {
			t.Errorf("%s: the text is not JSON: %v", name, err)
		}
	}
	if str(out.Leaderboard.Structured, "campaign") != "c1" || len(out.Leaderboard.Structured["submissions"].([]any)) != 0 {
		t.Fatalf("leaderboard before submitting: %v", out.Leaderboard.Structured)
	}
	sameJSON(t, "leaderboard after submitting", out.LeaderboardAfter.Structured, must[*lab.Board](t)(e.lab.Leaderboard(ctx, alice, "")))
	nb := must[[]lab.NotebookEntry](t)(e.lab.Notebook(alice, "", ""))
	if len(nb) != 1 || nb[0].Text != "from the TypeScript SDK" {
		t.Fatalf("the lab's notebook: %+v", nb)
	}
	sameJSON(t, "notebook_append", out.NotebookAppend.Structured, nb[0])
	sameJSON(t, "notebook_read", out.NotebookRead.Structured["entries"], nb)
	sameJSON(t, "search_findings", out.SearchFindings.Structured["findings"], must[[]forum.Finding](t)(e.lab.SearchFindings(ctx, alice, "", "typescript", 5)))
	if fs, _ := out.SearchFindings.Structured["findings"].([]any); len(fs) != 1 {
		t.Fatalf("search_findings: %v", out.SearchFindings.Structured)
	}
	subs := must[[]lab.SubmissionInfo](t)(e.lab.CampaignSubmissions("c1"))
	if len(subs) != 1 || subs[0].ID != str(out.SubmitPredictions.Structured, "id") || subs[0].Seeds != 2 || subs[0].Note != "ts client" {
		t.Fatalf("the lab's submissions: %+v, the script's: %v", subs, out.SubmitPredictions.Structured)
	}
	released := must[any](t)(e.lab.GetSubmission(alice, subs[0].ID)).(map[string]any)
	sameJSON(t, "submit_predictions' feedback", out.SubmitPredictions.Structured["feedback"], released["feedback"])
	if !out.ForbiddenField.IsError || !strings.Contains(out.ForbiddenField.Text, "extra") {
		t.Errorf("an unknown argument: %+v", out.ForbiddenField)
	}
}
