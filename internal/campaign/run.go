package campaign

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/launch"
)

// Options configure a campaign run.
type Options struct {
	Spec *Spec
	// CampaignID names the campaign; Resume continues an existing one (its
	// spec comes from the lab).
	CampaignID string
	Resume     bool
	// Admin is an admin client of the lab; WorkerLab is the address workers
	// use (unix:///…/lab.sock for sandboxes).
	Admin     *labclient.Client
	WorkerLab string
	// Exe is the aar binary workers run; DataDir is passed to them (their
	// sandboxes and downloaded views live there).
	Exe     string
	DataDir string
	// Launcher starts the workers (default: LocalLauncher{Exe}, child
	// processes); WorkerArgs are added to every worker's aar researcher
	// arguments (e.g. --sandbox docker); WorkerData is the --data each
	// worker gets (default DataDir; a pod's own directory on a cluster).
	Launcher   launch.Launcher
	WorkerArgs []string
	WorkerData string
	// Env is added to every worker's environment (model keys); the worker's
	// token is added per worker.
	Env []string
	// Baselines, when set, returns the markdown of the baselines' results,
	// posted to the forum at the start (as the study did).
	Baselines func(ctx context.Context) (string, error)
	// Progress gets the live view; JSON streams events instead.
	Progress io.Writer
	JSON     bool
	TTY      bool
	// Every is how often progress is drawn (default 1 s on a TTY, 30 s
	// otherwise, 5 s for JSON).
	Every time.Duration
	// Grace is how long workers get to finish their call when stopping
	// (default 2 minutes) before they are killed.
	Grace time.Duration
	// Logs is where each worker's log is written (default
	// DATA/runs/CAMPAIGN/NAME.log).
	Logs string
}

// exit is how a worker ended.
type exit struct {
	summary []byte
	err     error
}

func mergeFields(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// Outcome is how a campaign run ended.
type Outcome struct {
	Campaign string            `json:"campaign"`
	Reason   string            `json:"reason"`
	Workers  map[string]string `json:"workers"` // researcher → how its worker ended
	Elapsed  time.Duration     `json:"elapsed_ns"`
}

// worker is one researcher's process.
type worker struct {
	name   string
	spec   ResearcherSpec
	proc   launch.Worker
	exit   chan exit
	done   chan struct{}
	mu     sync.Mutex
	action string
	state  string // starting, running, finished, failed, stopped
	reason string
}

func (w *worker) set(f func(w *worker)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w)
}

func (w *worker) get() (action, state, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.action, w.state, w.reason
}

// Supervisor runs one campaign.
type Supervisor struct {
	o        Options
	id       string
	spec     *Spec
	deadline time.Time
	start    time.Time

	mu      sync.Mutex
	workers map[string]*worker
	order   []string
	stopped bool
	events  *jsonEvents
	drawn   int // lines drawn in place on a TTY
}

// Start creates (or, with Resume, reopens) the campaign, posts the
// baselines, and starts a worker per researcher that has work left.
func Start(ctx context.Context, o Options) (*Supervisor, error) {
	if o.Launcher == nil {
		o.Launcher = launch.Local{Exe: o.Exe}
	}
	if o.WorkerData == "" {
		o.WorkerData = o.DataDir
	}
	if o.Every <= 0 {
		switch {
		case o.JSON:
			o.Every = 5 * time.Second
		case o.TTY:
			o.Every = time.Second
		default:
			o.Every = 30 * time.Second
		}
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	s := &Supervisor{o: o, workers: map[string]*worker{}, start: time.Now(), events: &jsonEvents{w: o.Progress, on: o.JSON}}
	var info labclient.CampaignInfo
	var err error
	if o.Resume {
		if info, err = o.Admin.Campaign(ctx, o.CampaignID); err != nil {
			return nil, fmt.Errorf("campaign %s: %w", o.CampaignID, err)
		}
		if info.Stopped {
			return nil, fmt.Errorf("campaign %s was stopped; it cannot be resumed (start a new one)", o.CampaignID)
		}
		var spec Spec
		if err := json.Unmarshal(info.Spec, &spec); err != nil || spec.Testbed == "" {
			return nil, fmt.Errorf("campaign %s has no campaign spec in the ledger: it was not started by aar run", o.CampaignID)
		}
		s.spec = &spec
	} else {
		s.spec = o.Spec
		req := labclient.CampaignRequest{ID: o.CampaignID, Testbed: s.spec.Testbed, Policy: s.spec.Policy, Spec: s.spec.JSON()}
		if q := s.spec.Quota; q != nil {
			req.Quota = &labclient.QuotaSpec{PerResearcherPerHour: q.PerResearcherPerHour, PerCampaignPerHour: q.PerCampaignPerHour}
		}
		if info, err = o.Admin.CreateCampaign(ctx, req); err != nil {
			return nil, fmt.Errorf("create campaign: %w", err)
		}
	}
	s.id = info.ID
	if s.spec.Hours > 0 {
		s.deadline = info.Created.Add(time.Duration(s.spec.Hours * float64(time.Hour)))
		if !time.Now().Before(s.deadline) {
			return nil, fmt.Errorf("campaign %s ended at %s (its %g hours are up)", s.id, s.deadline.Format(time.RFC3339), s.spec.Hours)
		}
	}
	if s.o.Logs == "" {
		s.o.Logs = filepath.Join(o.DataDir, "runs", s.id)
	}
	if err := os.MkdirAll(s.o.Logs, 0o755); err != nil {
		return nil, err
	}
	s.events.emit("campaign", map[string]any{"campaign": s.id, "testbed": s.spec.Testbed, "researchers": len(s.spec.Researchers), "resume": o.Resume, "spec_sha256": info.SpecSHA256})
	if o.Baselines != nil {
		if err := s.postBaselines(ctx); err != nil {
			return nil, err
		}
	}
	for _, r := range s.spec.Researchers {
		if err := s.launch(ctx, r); err != nil {
			s.Stop(context.WithoutCancel(ctx), "a worker failed to start")
			return nil, err
		}
	}
	return s, nil
}

// ID is the campaign's id.
func (s *Supervisor) ID() string { return s.id }

// Spec is the campaign's spec (from the lab on resume).
func (s *Supervisor) Spec() *Spec { return s.spec }

// postBaselines posts the baselines' results once per campaign (an
// idempotency key makes a resumed run post nothing new).
func (s *Supervisor) postBaselines(ctx context.Context) error {
	body, err := s.o.Baselines(ctx)
	if err != nil {
		return fmt.Errorf("baselines: %w", err)
	}
	tok, err := s.o.Admin.CreateToken(ctx, "baselines", s.id)
	if err != nil {
		return fmt.Errorf("baselines token: %w", err)
	}
	cl, err := labclient.New(s.o.WorkerLab, tok)
	if err != nil {
		return err
	}
	f := map[string]any{"type": "insight", "title": "Baselines: the fixed weak and ceiling figures and the built-in methods", "family": "other", "body": body}
	if _, err := cl.PostFindingIdem(ctx, f, "campaign-baselines"); err != nil {
		return fmt.Errorf("post baselines: %w", err)
	}
	return nil
}

// finishedReasons are how a worker ends when its work is done (a resumed
// campaign does not restart it).
var finishedReasons = []string{"the researcher finished", "dollar budget", "token budget", "time budget", "sandbox CPU budget",
	"tool-call budget", "model-call budget", "the script has no more turns", "the model refused", "stopped by the operator", "the same "}

// doneBefore reports whether a researcher's transcript ends with a stop
// that means its work is done.
func (s *Supervisor) doneBefore(ctx context.Context, name string) (bool, string, error) {
	q := labclient.TranscriptQuery{Campaign: s.id, Researcher: name, Limit: 1}
	page, err := s.o.Admin.Transcript(ctx, q)
	if err != nil || page.Total == 0 {
		return false, "", err
	}
	after := page.Total - 2
	q.After = &after
	if page, err = s.o.Admin.Transcript(ctx, q); err != nil || len(page.Events) == 0 {
		return false, "", err
	}
	e := page.Events[0]
	if e.Type != "stop" {
		return false, "", nil
	}
	var d struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(e.Data, &d)
	for _, r := range finishedReasons {
		if strings.HasPrefix(d.Reason, r) {
			return true, d.Reason, nil
		}
	}
	return false, d.Reason, nil
}

// launch starts one researcher's worker, unless a resumed campaign finds
// its work done.
func (s *Supervisor) launch(ctx context.Context, r ResearcherSpec) error {
	w := &worker{name: r.Name, spec: r, exit: make(chan exit, 1), done: make(chan struct{}), state: "starting"}
	s.mu.Lock()
	if _, dup := s.workers[r.Name]; dup {
		s.mu.Unlock()
		return fmt.Errorf("researcher %s is already in the campaign", r.Name)
	}
	s.workers[r.Name] = w
	s.order = append(s.order, r.Name)
	s.mu.Unlock()
	if s.o.Resume {
		done, why, err := s.doneBefore(ctx, r.Name)
		if err != nil {
			return err
		}
		if done {
			w.set(func(w *worker) { w.state, w.reason = "finished", why+" (before the resume)" })
			close(w.done)
			return nil
		}
	}
	tok, err := s.o.Admin.CreateToken(ctx, r.Name, s.id)
	if err != nil {
		return fmt.Errorf("token for %s: %w", r.Name, err)
	}
	args := []string{"researcher", "--lab", s.o.WorkerLab, "--testbed", s.spec.Testbed, "--direction", r.Direction,
		"--backend", r.Backend, "--name", r.Name, "--data", s.o.WorkerData, "--seed", strconv.FormatUint(r.Seed, 10),
		"--sharing", s.spec.Conditions.Sharing, "--workflow", s.spec.Conditions.Workflow, "--sandbox-prefix", s.id}
	add := func(flag, v string) {
		if v != "" {
			args = append(args, flag, v)
		}
	}
	add("--model", r.Model)
	add("--script", r.Script)
	add("--base-url", r.BaseURL)
	add("--cpu", r.CPU)
	add("--latency", s.spec.Latency)
	add("--agent-command", r.AgentCommand)
	add("--agent-files", r.AgentFiles)
	add("--profile", s.spec.Profile)
	if r.BudgetUSD > 0 {
		args = append(args, "--budget-usd", strconv.FormatFloat(r.BudgetUSD, 'f', -1, 64))
	}
	if !s.deadline.IsZero() {
		args = append(args, "--deadline", s.deadline.UTC().Format(time.RFC3339))
	}
	args = append(args, s.o.WorkerArgs...)
	ws := launch.Spec{Campaign: s.id, Researcher: r.Name, Args: args, Token: tok, Proxied: r.Backend == "agent-cli"}
	if !ws.Proxied {
		ws.Env = append(ws.Env, s.o.Env...)
	}
	logf, err := os.OpenFile(filepath.Join(s.o.Logs, r.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	proc, err := s.o.Launcher.Launch(ctx, ws, pw)
	if err != nil {
		logf.Close()
		pw.Close()
		return err
	}
	w.set(func(w *worker) { w.proc, w.state = proc, "running" })
	s.events.emit("researcher_started", mergeFields(map[string]any{"researcher": r.Name, "direction": r.Direction, "backend": r.Backend}, proc.Describe()))
	go func() {
		sum, err := proc.Wait()
		pw.Close()
		w.exit <- exit{sum, err}
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if a := actionOf(line, r.Name); a != "" {
				w.set(func(w *worker) { w.action = a })
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		ex := <-w.exit
		err := ex.err
		logf.Close()
		var sum struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(ex.summary, &sum)
		w.set(func(w *worker) {
			switch {
			case err == nil:
				w.state, w.reason = "finished", sum.Reason
			case sum.Reason != "":
				w.state, w.reason = "failed", sum.Reason
			default:
				w.state, w.reason = "failed", fmt.Sprintf("%v (see %s)", err, filepath.Join(s.o.Logs, r.Name+".log"))
			}
			if strings.HasPrefix(w.reason, "stopped") {
				w.state = "stopped"
			}
		})
		_, st, why := w.get()
		s.events.emit("researcher_exited", map[string]any{"researcher": r.Name, "state": st, "reason": why})
		close(w.done)
	}()
	return nil
}

// actionOf turns a worker's log line ("15:04:05 name: bash {…} → ok (2s)")
// into what it is doing.
func actionOf(line, name string) string {
	_, rest, ok := strings.Cut(line, " "+name+": ")
	if !ok {
		return ""
	}
	if strings.HasPrefix(rest, "says: ") {
		return ""
	}
	return rest
}

// Wait follows the campaign until every worker has ended or ctx ends (then
// it stops them cleanly): it draws progress and carries out the operator's
// "add" and campaign "stop" controls.
func (s *Supervisor) Wait(ctx context.Context) (*Outcome, error) {
	var since int64
	if evs, err := s.o.Admin.ControlEvents(ctx, s.id, 0); err == nil && len(evs) > 0 {
		since = evs[len(evs)-1].Seq // controls before this run were carried out by the run before
		if s.o.Resume {
			for _, e := range evs {
				if e.Action == "add" {
					var r ResearcherSpec
					if json.Unmarshal(e.Config, &r) == nil && r.Name != "" {
						if err := s.launch(ctx, s.fill(r)); err != nil {
							s.events.emit("error", map[string]any{"error": err.Error()})
						}
					}
				}
			}
		}
	}
	tick := time.NewTicker(min(s.o.Every, 2*time.Second))
	defer tick.Stop()
	lastDraw := time.Time{}
	var info labclient.CampaignInfo
	reason := "every researcher finished"
	for {
		if s.allDone() {
			break
		}
		select {
		case <-ctx.Done():
			reason = "interrupted: stopped cleanly"
			s.Stop(context.WithoutCancel(ctx), "the operator interrupted aar run")
			s.draw(info, true)
			return s.outcome(reason), nil
		case <-tick.C:
		}
		evs, err := s.o.Admin.ControlEvents(ctx, s.id, since)
		if err == nil {
			for _, e := range evs {
				since = e.Seq
				switch {
				case e.Action == "add":
					var r ResearcherSpec
					if err := json.Unmarshal(e.Config, &r); err != nil || r.Name == "" {
						r = ResearcherSpec{Name: e.Researcher}
					}
					r.Name = e.Researcher
					if err := s.launch(ctx, s.fill(r)); err != nil {
						s.events.emit("error", map[string]any{"error": err.Error()})
					}
				case e.Action == "stop" && e.Researcher == "":
					reason = "stopped by the operator (aar runs stop)"
					s.Stop(ctx, "")
				}
			}
		}
		if time.Since(lastDraw) >= s.o.Every {
			if i, err := s.o.Admin.Campaign(ctx, s.id); err == nil {
				info = i
			}
			s.draw(info, false)
			lastDraw = time.Now()
		}
	}
	if i, err := s.o.Admin.Campaign(context.WithoutCancel(ctx), s.id); err == nil {
		info = i
	}
	s.draw(info, true)
	return s.outcome(reason), nil
}

// fill completes an added researcher's spec from the campaign's defaults.
func (s *Supervisor) fill(r ResearcherSpec) ResearcherSpec {
	if r.Backend == "" {
		r.Backend = s.spec.Backend
	}
	if r.Model == "" {
		r.Model = s.spec.Model
	}
	if r.Script == "" {
		r.Script = s.spec.Script
	}
	if r.CPU == "" {
		r.CPU = s.spec.CPU
	}
	if r.Direction == "" {
		r.Direction = Undirected
	}
	if r.Seed == 0 {
		r.Seed = uint64(len(s.order) + 1)
	}
	return r
}

func (s *Supervisor) allDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		select {
		case <-w.done:
		default:
			return false
		}
	}
	return true
}

// Stop records a campaign stop in the ledger (when note is not empty),
// asks every worker to finish its current step, and kills those still
// running after the grace period.
func (s *Supervisor) Stop(ctx context.Context, note string) {
	s.mu.Lock()
	already := s.stopped
	s.stopped = true
	ws := make([]*worker, 0, len(s.workers))
	for _, w := range s.workers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	if already {
		return
	}
	if note != "" {
		if _, err := s.o.Admin.Control(ctx, s.id, labclient.ControlRequest{Action: "stop", Text: note}); err != nil {
			s.events.emit("error", map[string]any{"error": "record the stop: " + err.Error()})
		}
	}
	for _, w := range ws {
		w.mu.Lock()
		if w.proc != nil {
			w.proc.Stop()
		}
		w.mu.Unlock()
	}
	deadline := time.After(s.o.Grace)
	for _, w := range ws {
		select {
		case <-w.done:
		case <-deadline:
			for _, v := range ws {
				v.mu.Lock()
				if v.proc != nil {
					v.proc.Kill()
				}
				v.mu.Unlock()
			}
			for _, v := range ws {
				<-v.done
			}
			return
		}
	}
}

func (s *Supervisor) outcome(reason string) *Outcome {
	o := &Outcome{Campaign: s.id, Reason: reason, Workers: map[string]string{}, Elapsed: time.Since(s.start)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, w := range s.workers {
		_, st, why := w.get()
		o.Workers[name] = st + ": " + why
	}
	return o
}

// jsonEvents writes one JSON object per line when on.
type jsonEvents struct {
	mu sync.Mutex
	w  io.Writer
	on bool
}

func (j *jsonEvents) emit(kind string, fields map[string]any) {
	if !j.on {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	m := map[string]any{"event": kind, "at": time.Now().UTC().Format(time.RFC3339Nano)}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"event": "error", "error": errors.New("unencodable event").Error()})
	}
	fmt.Fprintf(j.w, "%s\n", b)
}
