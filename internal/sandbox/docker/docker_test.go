package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/aar-lab/aar/internal/sandbox"
	"github.com/aar-lab/aar/internal/sandbox/bwrap"
	"github.com/aar-lab/aar/internal/sandbox/sandboxtest"
)

var (
	engineOnce sync.Once
	engine     *client.Client
	image      string
	engineErr  error
)

// needEngine connects to the Docker engine (.ci/run starts one) and builds
// the sandbox image once per test binary, with the aar built for the test.
func needEngine(t testing.TB) (*client.Client, string) {
	t.Helper()
	engineOnce.Do(func() {
		ctx := context.Background()
		if engine, engineErr = NewClient(ctx); engineErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "aar-docker-test-")
		if err != nil {
			engineErr = err
			return
		}
		defer os.RemoveAll(dir)
		aar := filepath.Join(dir, "aar")
		build := exec.Command("go", "build", "-o", aar, "github.com/aar-lab/aar/cmd/aar")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			engineErr = fmt.Errorf("build aar: %v\n%s", err, out)
			return
		}
		image, engineErr = EnsureImage(ctx, engine, ImageOptions{AarBinary: aar, Progress: os.Stderr})
	})
	if engine == nil {
		if os.Getenv("AAR_TEST_DOCKER") != "" {
			t.Fatalf("AAR_TEST_DOCKER is set but the engine does not answer: %v", engineErr)
		}
		t.Skipf("no Docker engine (start dockerd; .ci/run does): %v", engineErr)
	}
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine, image
}

func newBackend(t testing.TB) *Backend {
	c, img := needEngine(t)
	return &Backend{Client: c, Image: img}
}

// uniqueID keeps sandbox ids of concurrent test binaries apart.
func uniqueID(id string) string { return fmt.Sprintf("t%d-%s", os.Getpid(), id) }

// TestBattery runs the attack battery of the local sandbox (sandboxtest)
// against containers, with the engine's own view of what is left.
func TestBattery(t *testing.T) {
	b := newBackend(t)
	sandboxtest.Run(t, sandboxtest.Harness{
		New: func(t *testing.T, spec sandbox.Spec) sandbox.Sandbox {
			spec.ID = uniqueID(spec.ID)
			s, err := b.Create(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Destroy(context.Background()) })
			return s
		},
		Limits: true,
		ForkRefused: func(s sandbox.Sandbox) int {
			ev, err := os.ReadFile("/sys/fs/cgroup/pids/docker/" + s.(*box).id + "/pids.events")
			if err != nil {
				return -1 // cgroup v2 or a remote engine: the in-sandbox count decides
			}
			n := 0
			fmt.Sscanf(string(ev), "max %d", &n)
			return n
		},
		Alive: func(s sandbox.Sandbox) int {
			// Processes in the container besides its init and sleep.
			b, err := os.ReadFile("/sys/fs/cgroup/pids/docker/" + s.(*box).id + "/cgroup.procs")
			if err != nil {
				return 0
			}
			return max(0, len(strings.Fields(string(b)))-2)
		},
		AfterDestroy: func(t *testing.T, s sandbox.Sandbox) {
			if _, err := b.Client.ContainerInspect(context.Background(), s.(*box).id, client.ContainerInspectOptions{}); !isNotFound(err) {
				t.Errorf("container left after Destroy: %v", err)
			}
		},
	})
}

// TestImage: the image holds the toolchain and the researcher, and nothing
// of the host's secrets or source trees.
func TestImage(t *testing.T) {
	b := newBackend(t)
	s, err := b.Create(context.Background(), sandbox.Spec{ID: uniqueID("image")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy(context.Background())
	r, err := s.Exec(context.Background(), sandbox.ExecRequest{Shell: `cat /etc/passwd; ls /etc; ls /root 2>&1; ls /usr/lib; aar version; python3 -c 'import sklearn; print("sklearn", sklearn.__version__)'`})
	if err != nil {
		t.Fatal(err)
	}
	out := string(r.Stdout) + string(r.Stderr)
	for _, want := range []string{"researcher:x:1000:1000", "sklearn ", "aar ", "Permission denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("image lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"shadow", "sudoers", "ssh\n", "\ngo\n", "google-cloud-sdk", "jvm", "chromium"} {
		if strings.Contains(out, bad) {
			t.Errorf("image holds %q:\n%s", strings.TrimSpace(bad), out)
		}
	}
}

// TestReap: containers a crashed aar left are found by label and removed;
// others are not touched.
func TestReap(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	mine, err := b.Create(ctx, sandbox.Spec{ID: uniqueID("camp-a-r1")})
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.Create(ctx, sandbox.Spec{ID: uniqueID("camp-b-r1")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Destroy(ctx)
	// The process that made mine "crashes": only the engine knows it now.
	removed, err := b.Reap(ctx, uniqueID("camp-a-"))
	if err != nil || len(removed) != 1 || removed[0] != mine.ID() {
		t.Fatalf("reap: %v %v", removed, err)
	}
	if _, err := b.Client.ContainerInspect(ctx, mine.(*box).id, client.ContainerInspectOptions{}); !isNotFound(err) {
		t.Errorf("reaped container still there: %v", err)
	}
	if r, err := other.Exec(ctx, sandbox.ExecRequest{Shell: "echo alive"}); err != nil || string(r.Stdout) != "alive\n" {
		t.Errorf("the other campaign's sandbox: %+v %v", r, err)
	}
	if _, err := mine.Exec(ctx, sandbox.ExecRequest{Shell: "true"}); err == nil || !strings.Contains(err.Error(), "exited") && !strings.Contains(err.Error(), "No such container") {
		t.Errorf("exec in a reaped sandbox: %v", err)
	}
}

// TestCreateErrors: bad input is refused before anything is made.
func TestCreateErrors(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	for _, tc := range []struct {
		spec sandbox.Spec
		want string
	}{
		{sandbox.Spec{ID: "Bad ID"}, "lower-case"},
		{sandbox.Spec{ID: uniqueID("nodata"), Data: "/nonexistent/view"}, "sandbox data /nonexistent/view"},
		{sandbox.Spec{ID: uniqueID("prof"), Profile: "gpu"}, "aar sandbox image build --profile gpu"},
	} {
		if _, err := b.Create(ctx, tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create(%+v) = %v, want an error naming %q", tc.spec, err, tc.want)
		}
	}
	gb := &Backend{Client: b.Client, Image: b.Image, GPUs: "lots"}
	if _, err := gb.Create(ctx, sandbox.Spec{ID: uniqueID("gpus")}); err == nil || !strings.Contains(err.Error(), "--gpus") {
		t.Errorf("bad --gpus: %v", err)
	}
	res, err := b.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", LabelSandbox+"="+uniqueID("gpus"))})
	if err != nil || len(res.Items) != 0 {
		t.Errorf("a refused Create left %d containers (%v)", len(res.Items), err)
	}
	// A busy id is refused by the engine, naming it.
	s, err := b.Create(ctx, sandbox.Spec{ID: uniqueID("twice")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy(ctx)
	if _, err := b.Create(ctx, sandbox.Spec{ID: uniqueID("twice")}); err == nil || !strings.Contains(err.Error(), ContainerName(uniqueID("twice"))) {
		t.Errorf("second Create with the same id: %v", err)
	}
}

// TestHostConfig: the isolation a container gets, field by field, and
// GPUs passed through as a device request.
func TestHostConfig(t *testing.T) {
	b := &Backend{GPUs: "2", Runtime: "runsc"}
	lim := sandbox.Limits{MemoryBytes: 1 << 30, Pids: 100, OpenFiles: 50, FileBytes: 1 << 20, WorkspaceBytes: 1 << 25, TmpBytes: 1 << 24}.WithDefaults()
	hc, err := b.hostConfig(sandbox.Spec{ID: "x", Data: "/v", Shared: "/s", LabSocket: "/l.sock", AarBinary: "/aar"}, lim)
	if err != nil {
		t.Fatal(err)
	}
	if hc.NetworkMode != "none" || !hc.ReadonlyRootfs || len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || hc.SecurityOpt[0] != "no-new-privileges:true" || hc.Runtime != "runsc" || hc.Privileged {
		t.Errorf("isolation: %+v", hc)
	}
	if hc.Memory != 1<<30 || hc.MemorySwap != 1<<30 || *hc.PidsLimit != 100 {
		t.Errorf("limits: memory %d swap %d pids %d", hc.Memory, hc.MemorySwap, *hc.PidsLimit)
	}
	want := []string{"/v:/data:ro", "/s:/shared:ro", "/l.sock:/run/aar/lab.sock:ro", "/aar:/usr/local/bin/aar:ro"}
	if fmt.Sprint(hc.Binds) != fmt.Sprint(want) {
		t.Errorf("binds %v, want %v", hc.Binds, want)
	}
	if !strings.Contains(hc.Tmpfs["/workspace"], fmt.Sprintf("size=%d", 1<<25)) || !strings.Contains(hc.Tmpfs["/tmp"], fmt.Sprintf("size=%d", 1<<24)) {
		t.Errorf("tmpfs %v", hc.Tmpfs)
	}
	if len(hc.DeviceRequests) != 1 || hc.DeviceRequests[0].Count != 2 || hc.DeviceRequests[0].Capabilities[0][0] != "gpu" {
		t.Errorf("gpus: %+v", hc.DeviceRequests)
	}
	b.GPUs = "all"
	if hc, _ := b.hostConfig(sandbox.Spec{ID: "x"}, lim); hc.DeviceRequests[0].Count != -1 || len(hc.Binds) != 0 {
		t.Errorf("all gpus: %+v, binds %v", hc.DeviceRequests, hc.Binds)
	}
}

func percentile(d []time.Duration, q float64) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[int(q*float64(len(d)-1))]
}

func reportPercentiles(b *testing.B, name string, d []time.Duration) {
	b.ReportMetric(float64(percentile(d, 0.5).Microseconds())/1000, name+"p50-ms")
	b.ReportMetric(float64(percentile(d, 0.99).Microseconds())/1000, name+"p99-ms")
}

// BenchmarkStart measures a sandbox's start — create it and run its first
// command (`true`) — as a container and, side by side in the same run, as
// the local bubblewrap sandbox (the reference), with the ratio of the p50s.
// Destroying is not timed.
func BenchmarkStart(b *testing.B) {
	bk := newBackend(b)
	local := &bwrap.Backend{Root: filepath.Join(b.TempDir(), "sb")}
	ctx := context.Background()
	var dock, bw []time.Duration
	for i := 0; b.Loop(); i++ {
		for _, c := range []struct {
			bk  sandbox.Backend
			out *[]time.Duration
		}{{bk, &dock}, {local, &bw}} {
			t0 := time.Now()
			s, err := c.bk.Create(ctx, sandbox.Spec{ID: uniqueID(fmt.Sprintf("start-%d", i))})
			if err != nil {
				b.Fatal(err)
			}
			if r, err := s.Exec(ctx, sandbox.ExecRequest{Argv: []string{"true"}}); err != nil || r.ExitCode != 0 {
				b.Fatal(r, err)
			}
			*c.out = append(*c.out, time.Since(t0))
			b.StopTimer()
			s.Destroy(ctx)
			b.StartTimer()
		}
	}
	reportPercentiles(b, "docker-", dock)
	reportPercentiles(b, "bwrap-", bw)
	b.ReportMetric(float64(percentile(dock, 0.5))/float64(percentile(bw, 0.5)), "ratio")
}

// BenchmarkExecTrue measures one command (`true`) in a live sandbox, as a
// container and as the local bubblewrap sandbox side by side.
func BenchmarkExecTrue(b *testing.B) {
	bk := newBackend(b)
	local := &bwrap.Backend{Root: filepath.Join(b.TempDir(), "sb")}
	ctx := context.Background()
	ds, err := bk.Create(ctx, sandbox.Spec{ID: uniqueID("bench-exec")})
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Destroy(ctx)
	ls, err := local.Create(ctx, sandbox.Spec{ID: "bench-exec"})
	if err != nil {
		b.Fatal(err)
	}
	defer ls.Destroy(ctx)
	var dock, bw []time.Duration
	for b.Loop() {
		for _, c := range []struct {
			s   sandbox.Sandbox
			out *[]time.Duration
		}{{ds, &dock}, {ls, &bw}} {
			t0 := time.Now()
			if r, err := c.s.Exec(ctx, sandbox.ExecRequest{Argv: []string{"true"}}); err != nil || r.ExitCode != 0 {
				b.Fatal(r, err)
			}
			*c.out = append(*c.out, time.Since(t0))
		}
	}
	reportPercentiles(b, "docker-", dock)
	reportPercentiles(b, "bwrap-", bw)
	b.ReportMetric(float64(percentile(dock, 0.5))/float64(percentile(bw, 0.5)), "ratio")
}
