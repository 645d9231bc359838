package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	dockerclient "github.com/moby/moby/client"

	"github.com/aar-lab/aar/internal/sandbox/docker"
)

// TestRunDockerSandbox: a campaign end to end with --sandbox docker — every
// researcher's commands run in its own container (the transcript shows the
// container's cgroup and the researcher's uid), the submissions are scored,
// and no container is left when the run ends.
func TestRunDockerSandbox(t *testing.T) {
	needSandbox(t)
	ctx := context.Background()
	c, err := docker.NewClient(ctx)
	if err != nil {
		if os.Getenv("AAR_TEST_DOCKER") != "" {
			t.Fatalf("AAR_TEST_DOCKER is set but the engine does not answer: %v", err)
		}
		t.Skipf("no Docker engine (start dockerd; .ci/run does): %v", err)
	}
	defer c.Close()
	data := runData(t)
	bin := buildAar(t)
	script := filepath.Join(t.TempDir(), "turns.jsonl")
	os.WriteFile(script, []byte(`{"calls": [{"name": "bash", "input": {"command": "echo uid=$(id -u) engine=$(grep -c docker /proc/self/cgroup) net=$(ls /sys/class/net | tr '\\n' ,); aar w2s train --view /data --seed 42 --out p/42.jsonl"}}], "usage": {}}
{"calls": [{"name": "submit_predictions", "input": {"files": ["p/42.jsonl"]}}], "usage": {}}
{"text": "Done.", "usage": {}}
`), 0o644)
	cmd := exec.Command(bin, "run", "--data", data, "--testbed", "toy", "--researchers", "2", "--backend", "scripted", "--script", script,
		"--name", "dock", "--sandbox", "docker", "--verify-top", "0", "--no-baselines")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aar run --sandbox docker: %v\n%s", err, out)
	}
	evs := campaignEvents(t, bin, data, "dock")
	seen := map[string]bool{}
	subs := 0
	for _, e := range evs {
		switch {
		case e.Kind == "submission.accepted":
			subs++
		case e.Kind == "transcript" && strings.Contains(string(e.Body), "uid=1000 engine="):
			b := string(e.Body)
			if strings.Contains(b, `uid=1000 engine=0`) || !strings.Contains(b, `net=lo,`) {
				t.Errorf("%s's command did not run in a networkless container: %s", e.Actor, b)
			}
			seen[e.Actor] = true
		}
	}
	if len(seen) != 2 || subs != 2 {
		t.Errorf("container commands seen for %v, %d submissions (want 2 researchers, 2 submissions)\n%s", seen, subs, out)
	}
	res, err := c.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: make(dockerclient.Filters).Add("label", docker.LabelManaged+"=aar")})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range res.Items {
		if strings.HasPrefix(ct.Labels[docker.LabelSandbox], "dock-") {
			t.Errorf("container %s left after the run", ct.Labels[docker.LabelSandbox])
		}
	}
}
