package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/labclient"
)

// BenchmarkCampaignScale runs one campaign of AAR_SCALE_RESEARCHERS
// (default 200) scripted researchers, each a real worker process with a
// real bubblewrap sandbox, model latency simulated (2 s a turn), and
// reports the peak memory of the workers and their sandboxes per
// researcher, the supervisor's (with the embedded lab) peak memory, and the
// p50/p99 latency of lab API calls made meanwhile (the leaderboard, a
// submission listing and health). Run it with make bench-campaign.
func BenchmarkCampaignScale(b *testing.B) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("bubblewrap is not installed")
	}
	n := 200
	if v, err := strconv.Atoi(os.Getenv("AAR_SCALE_RESEARCHERS")); err == nil && v > 0 {
		n = v
	}
	data := runData(b)
	bin := buildAar(b)
	script := filepath.Join(b.TempDir(), "turns.jsonl")
	var turns strings.Builder
	for i := range 4 {
		fmt.Fprintf(&turns, `{"text": "step %d", "calls": [{"name": "bash", "input": {"command": "head -c 100 /data/test.jsonl >/dev/null; echo %d"}}], "usage": {"input_tokens": 2000, "output_tokens": 100}}`+"\n", i, i)
	}
	turns.WriteString(`{"calls": [{"name": "notebook", "input": {"action": "append", "text": "done"}}], "usage": {"input_tokens": 2000, "output_tokens": 50}}` + "\n")
	turns.WriteString(`{"text": "Done.", "usage": {"input_tokens": 2000, "output_tokens": 10}}` + "\n")
	os.WriteFile(script, []byte(turns.String()), 0o644)
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("scale%d", i)
		cmd := exec.Command(bin, "run", "--data", data, "--testbed", "toy", "--backend", "scripted", "--script", script, "--latency", "2s",
			"--researchers", strconv.Itoa(n), "--name", id, "--no-baselines", "--json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Stdout = &bytes.Buffer{}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var (
			mu                       sync.Mutex
			peakWorkers, peakSuper   int64
			peakProcs, peakResearchr int
			lat                      []time.Duration
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // memory sampler
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(250 * time.Millisecond):
				}
				super, workers, procs, researchers := treeRSS(cmd.Process.Pid)
				mu.Lock()
				peakSuper, peakWorkers = max(peakSuper, super), max(peakWorkers, workers)
				peakProcs, peakResearchr = max(peakProcs, procs), max(peakResearchr, researchers)
				mu.Unlock()
			}
		}()
		go func() { // API prober
			defer wg.Done()
			var cl *labclient.Client
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if cl == nil {
					b, err := os.ReadFile(filepath.Join(data, "runs", id, "control.json"))
					if err != nil {
						continue
					}
					var c struct{ Lab, Token string }
					json.Unmarshal(b, &c)
					cl, _ = labclient.New(c.Lab, c.Token)
				}
				for _, path := range []string{"/v1/leaderboard?campaign=" + id, "/healthz", "/v1/campaigns/" + id + "/control?since=0"} {
					t0 := time.Now()
					if _, err := cl.Do(context.Background(), "GET", path, nil, nil, nil); err != nil {
						continue
					}
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			}
		}()
		err := <-done
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatalf("aar run: %v\n%s", err, tail(stderr.String(), 3000))
		}
		elapsed := time.Since(start)
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) == 0 {
			b.Fatal("no API call was timed")
		}
		p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(float64(peakWorkers)/float64(n)/(1<<20), "MB/researcher")
		b.ReportMetric(float64(peakSuper)/(1<<20), "MB-supervisor+lab")
		b.ReportMetric(p(0.5), "api-p50-ms")
		b.ReportMetric(p(0.99), "api-p99-ms")
		b.ReportMetric(elapsed.Seconds(), "s/campaign")
		b.ReportMetric(float64(peakResearchr), "peak-workers")
		b.Logf("%d researchers: %s; peak %d worker processes and %d processes under them; %d API calls timed",
			n, elapsed.Round(time.Second), peakResearchr, peakProcs, len(lat))
	}
}

// treeRSS sums the resident memory of pid (the supervisor with its lab)
// and, separately, of all its descendants (workers and their sandboxes).
func treeRSS(pid int) (super, workers int64, procs, researchers int) {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				children[pp] = append(children[pp], p)
			}
		}
	}
	super = rss(pid)
	stack := append([]int(nil), children[pid]...)
	researchers = len(children[pid])
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		workers += rss(p)
		procs++
		stack = append(stack, children[p]...)
	}
	return super, workers, procs, researchers
}

func rss(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
