package labsim

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/stats"
	"github.com/aar-lab/aar/internal/store"
)

// Result is one run's measurements. Latencies are in milliseconds, as the
// researcher saw them (client side, the network and queueing included);
// ServerMeanMs is the time inside the lab's handler.
type Result struct {
	Store       string  `json:"store"`
	Researchers int     `json:"researchers"`
	Campaigns   int     `json:"campaigns"`
	Transport   string  `json:"transport"`
	TestRows    int     `json:"test_rows"`
	Seconds     float64 `json:"seconds"`

	Requests          int64   `json:"requests"`
	Errors            int64   `json:"errors"`
	RequestsPerSec    float64 `json:"requests_per_sec"`
	SubmissionsPerSec float64 `json:"submissions_per_sec"` // scored and accepted
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
	// Steps taken, in all and by the slowest and fastest researcher.
	Steps    int64 `json:"steps"`
	StepsMin int64 `json:"steps_min"`
	StepsMax int64 `json:"steps_max"`
	// PeakInflight is the most requests inside the lab's handler at once.
	PeakInflight int64        `json:"peak_inflight"`
	Kinds        []KindResult `json:"kinds"`
	Sent         Sent         `json:"sent"`

	Ledger LedgerGrowth `json:"ledger"`
	Forum  ForumUsage   `json:"forum"`
	// StoreBytes is the database's growth (SQLite: lab.db and its WAL,
	// ledger and forum; PostgreSQL: the run's database); SnapshotBytes the
	// snapshot store's size on disk.
	StoreBytes    int64    `json:"store_bytes"`
	SnapshotBytes int64    `json:"snapshot_bytes"`
	CPU           CPUUsage `json:"cpu"`
	// Replay is how long a restarted lab takes to read this ledger back.
	Replay Replay `json:"replay"`

	Verified    *store.Report `json:"verified,omitempty"`
	FirstErrors []string      `json:"first_errors,omitempty"`
}

// Replay is a lab's start over the run's ledger: every event is read
// and folded into memory before the lab serves. HeapBytes is the live heap
// that lab holds afterwards (its in-memory indexes; the testbed and the
// probe detector's window included).
type Replay struct {
	Events       int64   `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	HeapBytes    int64   `json:"heap_bytes"`
}

// KindResult is one kind of request.
type KindResult struct {
	Kind     string  `json:"kind"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	PerSec   float64 `json:"per_sec"`
	Share    float64 `json:"share"` // of all requests
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	// ServerMeanMs is the mean time in the lab's handler; ServerShare this
	// kind's share of all handler time.
	ServerMeanMs float64 `json:"server_mean_ms"`
	ServerShare  float64 `json:"server_share"`
}

// LedgerGrowth is what the run added to the ledger and how long appending
// took.
type LedgerGrowth struct {
	Events       int64       `json:"events"`
	EventsPerSec float64     `json:"events_per_sec"`
	BodyBytes    int64       `json:"body_bytes"`
	BytesPerSec  float64     `json:"body_bytes_per_sec"`
	ByKind       []KindBytes `json:"by_kind"`
	// Appends is how many Append calls (a transcript batch is one);
	// AppendBusy the share of wall time an append was in progress (they
	// are serialised, so 1 means saturated).
	Appends         int64   `json:"appends"`
	EventsPerAppend float64 `json:"events_per_append"`
	AppendBusy      float64 `json:"append_busy"`
	AppendMeanMs    float64 `json:"append_mean_ms"`
	AppendP99Ms     float64 `json:"append_p99_ms"`
}

// KindBytes is the events of one ledger kind and their bodies' bytes.
type KindBytes struct {
	Kind   string `json:"kind"`
	Events int64  `json:"events"`
	Bytes  int64  `json:"bytes"`
}

// ForumUsage is the forum store's calls: Busy is the mean number in
// progress.
type ForumUsage struct {
	Busy float64   `json:"busy"`
	Ops  []ForumOp `json:"ops"`
}

// ForumOp is one forum store operation.
type ForumOp struct {
	Op     string  `json:"op"`
	Calls  int64   `json:"calls"`
	MeanMs float64 `json:"mean_ms"`
}

// CPUUsage is the CPU used during the run, in cores (1 = one core busy
// the whole time): this process (the lab and the simulated researchers),
// and the whole machine (also PostgreSQL and anything else running).
type CPUUsage struct {
	Cores        int     `json:"cores"`
	Process      float64 `json:"process_cores"`
	Machine      float64 `json:"machine_cores"`
	ProcessPerRq float64 `json:"process_ms_per_request"` // CPU ms of this process per request
	// Load1 is the machine's one-minute load average at the end of the
	// run: above the core count, other work competed for the CPU.
	Load1 float64 `json:"load1"`
}

// collect merges the researchers' logs and the server's timings.
func (res *Result) collect(rs []*researcher, srv *serverStats, elapsed time.Duration) {
	var all []float64
	var serverTotal int64
	for _, k := range Kinds {
		serverTotal += srv.kinds[k].nanos.Load()
	}
	res.StepsMin = -1
	for _, r := range rs {
		res.Steps += r.steps
		if res.StepsMin < 0 || r.steps < res.StepsMin {
			res.StepsMin = r.steps
		}
		res.StepsMax = max(res.StepsMax, r.steps)
		res.Sent.TranscriptEvents += r.sent.TranscriptEvents
		res.Sent.Submissions += r.sent.Submissions
		res.Sent.Snapshots += r.sent.Snapshots
		res.Sent.Findings += r.sent.Findings
		res.Sent.Results += r.sent.Results
		for _, e := range r.errText {
			if len(res.FirstErrors) < 10 {
				res.FirstErrors = append(res.FirstErrors, e)
			}
		}
	}
	for _, k := range Kinds {
		var ms []float64
		kr := KindResult{Kind: k}
		for _, r := range rs {
			ms = append(ms, r.stats[k].ms...)
			kr.Errors += r.stats[k].errors
		}
		if len(ms) == 0 {
			continue
		}
		slices.Sort(ms)
		kr.Requests = int64(len(ms))
		kr.PerSec = float64(len(ms)) / elapsed.Seconds()
		kr.P50Ms, kr.P99Ms, kr.MaxMs = quantile(ms, 0.5), quantile(ms, 0.99), ms[len(ms)-1]
		if sk := srv.kinds[k]; sk.n.Load() > 0 {
			kr.ServerMeanMs = float64(sk.nanos.Load()) / float64(sk.n.Load()) / 1e6
			if serverTotal > 0 {
				kr.ServerShare = float64(sk.nanos.Load()) / float64(serverTotal)
			}
		}
		res.Kinds = append(res.Kinds, kr)
		res.Requests += kr.Requests
		res.Errors += kr.Errors
		all = append(all, ms...)
		if k == KindSubmit {
			res.SubmissionsPerSec = float64(res.Sent.Submissions) / elapsed.Seconds()
		}
	}
	for i := range res.Kinds {
		res.Kinds[i].Share = float64(res.Kinds[i].Requests) / float64(res.Requests)
	}
	slices.Sort(all)
	if len(all) > 0 {
		res.P50Ms, res.P99Ms = quantile(all, 0.5), quantile(all, 0.99)
	}
	res.RequestsPerSec = float64(res.Requests) / elapsed.Seconds()
	res.PeakInflight = srv.peak.Load()
}

// Kind returns the result of one kind (zero when none ran).
func (res *Result) Kind(k string) KindResult {
	for _, kr := range res.Kinds {
		if kr.Kind == k {
			return kr
		}
	}
	return KindResult{Kind: k}
}

// LedgerKind returns the ledger growth of one event kind.
func (g LedgerGrowth) LedgerKind(kind string) KindBytes {
	for _, k := range g.ByKind {
		if k.Kind == kind {
			return k
		}
	}
	return KindBytes{Kind: kind}
}

func sortKindBytes(ks []KindBytes) {
	slices.SortFunc(ks, func(a, b KindBytes) int {
		if a.Bytes != b.Bytes {
			return int(b.Bytes - a.Bytes)
		}
		return strings.Compare(a.Kind, b.Kind)
	})
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// quantile is stats.Quantile of sorted values (never called with none).
func quantile(sorted []float64, q float64) float64 { return stats.Quantile(sorted, q) }

// cpuTicks is a reading of /proc: this process's and the machine's busy
// CPU time in clock ticks (zero where /proc is missing).
type cpuTicks struct {
	process, machine int64
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func readCPU() cpuTicks {
	var t cpuTicks
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// Fields after the command's closing parenthesis: utime and stime
		// are the 12th and 13th.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 13 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				s, _ := strconv.ParseInt(f[12], 10, 64)
				t.process = u + s
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		// cpu user nice system idle iowait irq softirq steal ...
		for i := 1; i < len(f); i++ {
			if i == 4 || i == 5 { // idle, iowait
				continue
			}
			n, _ := strconv.ParseInt(f[i], 10, 64)
			t.machine += n
		}
		if len(f) > 9 { // guest and guest_nice are already in user and nice
			for _, i := range []int{9, 10} {
				if i < len(f) {
					n, _ := strconv.ParseInt(f[i], 10, 64)
					t.machine -= n
				}
			}
		}
	}
	return t
}

// since is the CPU used between two readings, in cores.
func (t cpuTicks) since(before cpuTicks, elapsed time.Duration) CPUUsage {
	s := elapsed.Seconds()
	var load float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			load, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return CPUUsage{Load1: load, Cores: runtime.NumCPU(), Process: float64(t.process-before.process) / clockTicks / s,
		Machine: float64(t.machine-before.machine) / clockTicks / s}
}
