package bwrap

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

func percentile(d []time.Duration, q float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(q*float64(len(d)-1))]
}

// BenchmarkExecTrue runs `true` in a live sandbox and, in the same run, a
// plain fork/exec of `true`, reporting p50/p99 of both and their ratio.
func BenchmarkExecTrue(b *testing.B) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("bubblewrap is not installed")
	}
	bk := &Backend{Root: filepath.Join(b.TempDir(), "sb")}
	s, err := bk.Create(context.Background(), sandbox.Spec{ID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy(context.Background())
	var box, plain []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if r, err := s.Exec(context.Background(), sandbox.ExecRequest{Argv: []string{"true"}}); err != nil || r.ExitCode != 0 {
			b.Fatal(err)
		}
		box = append(box, time.Since(t0))
		t0 = time.Now()
		if err := exec.Command("true").Run(); err != nil {
			b.Fatal(err)
		}
		plain = append(plain, time.Since(t0))
	}
	p50, p99, f50 := percentile(box, 0.5), percentile(box, 0.99), percentile(plain, 0.5)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(f50.Microseconds())/1000, "plain-p50-ms")
	b.ReportMetric(float64(p50)/float64(f50), "ratio")
}

// BenchmarkCreateDestroy makes and destroys a sandbox (with its cgroups and
// workspace tmpfs when root).
func BenchmarkCreateDestroy(b *testing.B) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("bubblewrap is not installed")
	}
	bk := &Backend{Root: filepath.Join(b.TempDir(), "sb")}
	var d []time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		s, err := bk.Create(context.Background(), sandbox.Spec{ID: fmt.Sprintf("cd%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Destroy(context.Background()); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
		i++
	}
	b.ReportMetric(float64(percentile(d, 0.5).Microseconds())/1000, "p50-ms")
}

// BenchmarkBusySandboxes measures an HTTP API's p99 latency idle and with 50
// sandboxes each running a busy loop (default limits), on this host's cores.
func BenchmarkBusySandboxes(b *testing.B) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		b.Skip("bubblewrap is not installed")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A little work, like scoring a small request.
		s := 0
		for i := range 20000 {
			s += i % 7
		}
		fmt.Fprint(w, s)
	}))
	defer srv.Close()
	probe := func(n int) time.Duration {
		var d []time.Duration
		for range n {
			t0 := time.Now()
			resp, err := http.Get(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			d = append(d, time.Since(t0))
			time.Sleep(2 * time.Millisecond)
		}
		return percentile(d, 0.99)
	}
	for b.Loop() {
		idle := probe(300)
		bk := &Backend{Root: filepath.Join(b.TempDir(), "sb")}
		ctx, cancel := context.WithCancel(context.Background())
		var boxes []sandbox.Sandbox
		var wg sync.WaitGroup
		for i := range 50 {
			s, err := bk.Create(ctx, sandbox.Spec{ID: fmt.Sprintf("busy%d", i)})
			if err != nil {
				b.Fatal(err)
			}
			boxes = append(boxes, s)
			wg.Go(func() { s.Exec(ctx, sandbox.ExecRequest{Shell: "while :; do :; done", Timeout: time.Minute}) })
		}
		time.Sleep(500 * time.Millisecond)
		busy := probe(300)
		cancel()
		for _, s := range boxes {
			s.Destroy(context.Background())
		}
		wg.Wait()
		b.ReportMetric(float64(idle.Microseconds())/1000, "idle-p99-ms")
		b.ReportMetric(float64(busy.Microseconds())/1000, "busy-p99-ms")
		b.ReportMetric(float64(busy)/float64(idle), "ratio")
	}
}
