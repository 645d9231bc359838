// Package agent is the researcher: the loop that lets a model (or the
// built-in search policy) work on a W2S testbed through tools — a shell and
// files in its sandbox, and the lab's scorer, forum, snapshots, leaderboard
// and notebook — under budgets it enforces, recording every step in the
// lab's transcript store.
//
// The loop runs in the worker process (`aar researcher`), outside the
// sandbox (which never holds the model key or the transcript) and outside
// the lab (so it never holds a label). Each step is: check the stop
// conditions and budget → call the model → validate its tool calls → run
// them → persist the step.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/llm"
	"github.com/aar-lab/aar/internal/sandbox"
)

// Config configures one researcher.
type Config struct {
	Researcher string
	Testbed    string
	Direction  string
	Backend    llm.Backend
	Model      string
	// Consult, when set, backs the consult tool (a stronger model or a
	// larger thinking budget), metered like any call.
	Consult *ConsultConfig
	Prices  llm.Prices
	Budget  Budget
	Lab     *labclient.Client
	Sandbox sandbox.Sandbox
	// Prompt is the system prompt template (nil: the default).
	Prompt *template.Template
	// MaxTokens bounds each reply (default 4096); ThinkingBudget > 0 turns
	// extended thinking on.
	MaxTokens      int
	ThinkingBudget int
	// ContextTokens is the model's context window (default 200,000); a
	// fresh session starts when a call's prompt passes FreshAt of it
	// (default 0.8).
	ContextTokens int
	FreshAt       float64
	// Nudges is how many times a model that ends its turn without calling a
	// tool is told to go on (0: the default, 2; negative: never).
	Nudges int
	// RepeatLimit stops the researcher when the same tool call (name and
	// input) comes this many times in a row (default 3).
	RepeatLimit int
	// ResultBytes caps a tool result shown to the model (default 16 KiB);
	// TranscriptBytes caps one in the transcript (default 64 KiB).
	ResultBytes     int
	TranscriptBytes int
	// Secrets are strings (keys, tokens) scrubbed from everything the
	// model or the transcript sees.
	Secrets []string
	// Refresh, when set, runs at each session start and at most every
	// RefreshEvery (default 60 s) between steps: the worker syncs the forum
	// copy the sandbox sees at /shared.
	Refresh      func(ctx context.Context) error
	RefreshEvery time.Duration
	// Control, when set, is asked before each step for the operator's
	// state for this researcher and new notes; Carry seeds the meter with an
	// earlier run's spend (a resumed worker).
	Control func(ctx context.Context) (Control, error)
	Carry   *Carry
	// Sharing is SharingSync (default), SharingSearch or SharingNone;
	// Workflow "suggested" adds the prescribed workflow to the prompt.
	Sharing  string
	Workflow string
	// Log gets one line per step (nil: discarded).
	Log io.Writer
	Now func() time.Time
}

// Control is what the operator says: State "running", "paused" or
// "stopped", and notes to show the researcher.
type Control struct {
	State string
	Notes []string
}

// Carry is spend carried over from an earlier run of the researcher.
type Carry struct {
	Usage      llm.Usage
	USD        float64
	CPU        time.Duration
	ModelCalls int
	ToolCalls  int
}

// ConsultConfig is the consult tool's model setting.
type ConsultConfig struct {
	Backend        llm.Backend
	Model          string
	MaxTokens      int
	ThinkingBudget int
}

// Summary is how a researcher's run ended.
type Summary struct {
	Reason string `json:"reason"`
	// Final is the model's last text (capped at 4 KiB).
	Final    string `json:"final,omitempty"`
	Sessions int    `json:"sessions"`
	Steps    int    `json:"steps"`
	Status   Status `json:"status"`
}

// Researcher runs the loop.
type Researcher struct {
	cfg     Config
	tools   *Toolbox
	env     *Env
	meter   *Meter
	rec     *recorder
	system  string
	price   llm.Price
	log     io.Writer
	session int
	msgs    []llm.Message
	// lastPrompt is the prompt size of the last call; pending estimates
	// what has been added since.
	lastPrompt   int64
	pendingChars int
	cursor       int64 // forum cursor for session digests
	repeatKey    string
	repeats      int
	nudged       int
	steps        int
	lastPos      int64
	refreshed    time.Time
	final        string
	stopping     atomic.Bool
	notes        []string
}

// Stop asks the researcher to stop at the next step boundary: the call in
// flight finishes and is recorded.
func (r *Researcher) Stop() { r.stopping.Store(true) }

// New prepares a researcher: checks the config, reads the public manifest
// from the sandbox and renders the system prompt.
func New(ctx context.Context, cfg Config) (*Researcher, error) {
	if cfg.Backend == nil || cfg.Lab == nil || cfg.Sandbox == nil {
		return nil, errors.New("agent: a backend, a lab client and a sandbox are required")
	}
	if cfg.Researcher == "" {
		return nil, errors.New("agent: the researcher has no name")
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 4096
	}
	if cfg.ContextTokens <= 0 {
		cfg.ContextTokens = 200_000
	}
	if cfg.FreshAt <= 0 || cfg.FreshAt >= 1 {
		cfg.FreshAt = 0.8
	}
	switch {
	case cfg.Nudges == 0:
		cfg.Nudges = 2
	case cfg.Nudges < 0:
		cfg.Nudges = 0
	}
	if cfg.RepeatLimit <= 0 {
		cfg.RepeatLimit = 3
	}
	if cfg.ResultBytes <= 0 {
		cfg.ResultBytes = 16 << 10
	}
	if cfg.TranscriptBytes <= 0 {
		cfg.TranscriptBytes = 64 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Prices == nil {
		cfg.Prices = llm.DefaultPrices()
	}
	price, ok := cfg.Prices.Lookup(cfg.Model)
	if !ok && cfg.Budget.USD > 0 {
		return nil, fmt.Errorf("agent: no price for model %q, so a dollar budget cannot be enforced: add it to a prices file (--prices FILE: {\"%s\": {\"input\": USD per Mtok, \"output\": …}})", cfg.Model, cfg.Model)
	}
	if cfg.Consult != nil && cfg.Budget.USD > 0 {
		if _, ok := cfg.Prices.Lookup(cfg.Consult.Model); !ok {
			return nil, fmt.Errorf("agent: no price for the consult model %q: add it to a prices file", cfg.Consult.Model)
		}
	}
	r := &Researcher{cfg: cfg, price: price, log: cfg.Log}
	if r.log == nil {
		r.log = io.Discard
	}
	switch cfg.Sharing {
	case "":
		cfg.Sharing = SharingSync
	case SharingSync, SharingSearch, SharingNone:
	default:
		return nil, fmt.Errorf("agent: sharing %q: use sync, search or none", cfg.Sharing)
	}
	switch cfg.Workflow {
	case "", "none", "suggested":
	default:
		return nil, fmt.Errorf("agent: workflow %q: use none or suggested", cfg.Workflow)
	}
	r.cfg = cfg
	r.meter = NewMeter(cfg.Budget, cfg.Now)
	if c := cfg.Carry; c != nil {
		r.meter.Carry(c.Usage, c.USD, c.CPU, c.ModelCalls, c.ToolCalls)
	}
	r.tools = newToolbox(cfg.Consult != nil, cfg.Sharing)
	r.env = &Env{Sandbox: cfg.Sandbox, Lab: cfg.Lab, Researcher: cfg.Researcher, Testbed: cfg.Testbed, Meter: r.meter,
		Position: func() int64 { return r.lastPos }}
	if cfg.Consult != nil {
		r.env.Consult = r.consult
	}
	r.rec = &recorder{lab: cfg.Lab, scrub: r.scrub, now: cfg.Now}
	var tools []string
	for _, d := range r.tools.Defs() {
		tools = append(tools, d.Name+": "+firstSentence(d.Description))
	}
	var err error
	r.system, err = sandboxPrompt(ctx, cfg.Sandbox, cfg.Prompt, PromptData{Researcher: cfg.Researcher, Direction: cfg.Direction,
		Budget: cfg.Budget.String(), Tools: tools, Workflow: cfg.Workflow == "suggested", Sharing: cfg.Sharing})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// sandboxPrompt renders the researcher prompt (tmpl, or the default) for
// what the sandbox holds: d with the testbed read from /data/testbed.json,
// whether /data has features, and the toolkit's methods filled in.
func sandboxPrompt(ctx context.Context, sb sandbox.Sandbox, tmpl *template.Template, d PromptData) (string, error) {
	if tmpl == nil {
		var err error
		if tmpl, err = ParsePrompt(defaultPrompt); err != nil {
			return "", err
		}
	}
	manifest, err := sb.Exec(ctx, sandbox.ExecRequest{Argv: []string{"cat", "/data/testbed.json"}})
	if err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	if manifest.ExitCode != 0 {
		return "", fmt.Errorf("sandbox has no public view at /data (cat /data/testbed.json: %s)", strings.TrimSpace(string(manifest.Stderr)))
	}
	if d.Testbed, err = parseManifest(manifest.Stdout); err != nil {
		return "", err
	}
	feat, _ := sb.Exec(ctx, sandbox.ExecRequest{Argv: []string{"test", "-d", "/data/features"}})
	d.HasFeatures = feat != nil && feat.ExitCode == 0
	d.Methods = methodNames()
	return RenderPrompt(tmpl, d)
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}

// System is the rendered system prompt.
func (r *Researcher) System() string { return r.system }

// Meter is the researcher's meter.
func (r *Researcher) Meter() *Meter { return r.meter }

func (r *Researcher) scrub(s string) string {
	for _, sec := range r.cfg.Secrets {
		if len(sec) >= 8 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

func (r *Researcher) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s %s: %s\n", r.cfg.Now().UTC().Format("15:04:05"), r.cfg.Researcher, r.scrub(fmt.Sprintf(format, args...)))
}

// Run works until a stop condition holds or ctx ends; the summary says
// why it stopped. An error means the environment broke (the lab or the
// sandbox failed, or the model provider failed for good).
func (r *Researcher) Run(ctx context.Context) (sum *Summary, err error) {
	defer func() {
		if sum == nil {
			sum = &Summary{Reason: "error"}
			if err != nil {
				sum.Reason = "error: " + r.scrub(err.Error())
			}
		}
		sum.Sessions, sum.Steps, sum.Status = r.session, r.steps, r.meter.Status()
		sum.Final = capText(r.final, 4<<10)
		r.rec.add("stop", map[string]any{"reason": sum.Reason, "status": sum.Status}, nil, 0, 0)
		// The stop event must land even when ctx was cancelled.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if ferr := r.rec.flush(fctx); ferr != nil && err == nil {
			err = ferr
		}
		r.logf("stopped: %s (%d sessions, %d steps, $%.4f, %d tokens, %.1f s sandbox CPU)", sum.Reason, sum.Sessions, sum.Steps,
			sum.Status.Spent.USD, sum.Status.Spent.Usage.Total(), sum.Status.Spent.CPUSeconds)
	}()
	if err := r.startSession(ctx, ""); err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return &Summary{Reason: "stopped: " + err.Error()}, nil
		}
		if r.stopping.Load() {
			return &Summary{Reason: "stopped by the operator"}, nil
		}
		if why, err := r.control(ctx); err != nil {
			return nil, err
		} else if why != "" {
			return &Summary{Reason: why}, nil
		}
		for _, stop := range []func(*Meter) string{outOfTime, outOfCPU, outOfToolCalls} {
			if why := stop(r.meter); why != "" {
				return &Summary{Reason: why}, nil
			}
		}
		if r.lastPrompt > int64(float64(r.cfg.ContextTokens)*r.cfg.FreshAt) {
			if err := r.startSession(ctx, fmt.Sprintf("the context reached %d of %d tokens", r.lastPrompt, r.cfg.ContextTokens)); err != nil {
				return nil, err
			}
		}
		est := r.lastPrompt + int64(r.pendingChars/3) + 1
		if r.lastPrompt == 0 {
			est = int64((len(r.system) + r.pendingChars + toolChars(r.tools)) / 3)
		}
		if why := nextCallWouldOverrun(r.meter, r.price, est, int64(r.cfg.MaxTokens)); why != "" {
			return &Summary{Reason: why}, nil
		}
		if err := r.refresh(ctx, false); err != nil {
			return nil, err
		}
		stop, err := r.step(ctx)
		if err != nil {
			return nil, err
		}
		if stop != "" {
			return &Summary{Reason: stop}, nil
		}
	}
}

func toolChars(tb *Toolbox) int {
	n := 0
	for _, d := range tb.Defs() {
		n += len(d.Name) + len(d.Description) + len(d.Schema)
	}
	return n
}

// step is one model call and the tool calls it asks for; it returns a
// stop reason when the researcher should end.
func (r *Researcher) step(ctx context.Context) (string, error) {
	r.steps++
	callCtx, cancel := context.WithTimeout(ctx, max(r.meter.Remaining(), time.Second))
	defer cancel()
	req := llm.Request{Model: r.cfg.Model, System: r.system, Messages: r.msgs, Tools: r.tools.Defs(),
		MaxTokens: r.cfg.MaxTokens, ThinkingBudget: r.cfg.ThinkingBudget, Cache: true}
	resp, err := r.cfg.Backend.Complete(callCtx, req)
	if err != nil {
		if errors.Is(err, llm.ErrScriptDone) {
			return "the script has no more turns", nil
		}
		if ctx.Err() != nil {
			return "stopped: " + ctx.Err().Error(), nil
		}
		if callCtx.Err() != nil {
			return fmt.Sprintf("time budget of %s used", r.cfg.Budget.Wall), nil
		}
		r.rec.add("error", map[string]any{"error": r.scrub(err.Error())}, nil, 0, 0)
		return "", fmt.Errorf("model call: %w", err)
	}
	price, _ := r.cfg.Prices.Lookup(resp.Model)
	if resp.Model == "" || price == (llm.Price{}) {
		price = r.price
	}
	cost := price.Cost(resp.Usage)
	r.meter.AddCall(resp.Usage, cost)
	r.lastPrompt, r.pendingChars = resp.Usage.Prompt(), 0
	r.msgs = append(r.msgs, resp.Message)
	r.rec.add("message", map[string]any{"role": "assistant", "parts": r.capParts(resp.Message.Parts), "stop": resp.Stop, "model": resp.Model, "attempts": resp.Attempts}, nil, 0, 0)
	u := resp.Usage
	r.rec.add("usage", map[string]any{"model": resp.Model}, &u, cost, 0)
	calls := resp.Message.ToolCalls()
	if text := strings.TrimSpace(resp.Message.TextOf()); text != "" {
		r.final = r.scrub(text)
		r.logf("says: %s", oneLine(text, 160))
	}
	switch resp.Stop {
	case llm.StopRefusal:
		if err := r.rec.flush(ctx); err != nil {
			return "", err
		}
		return "the model refused: " + oneLine(resp.Message.TextOf(), 200), nil
	case llm.StopMaxTokens:
		if len(calls) == 0 {
			r.addUser(llm.Text(fmt.Sprintf("Your reply was cut off at the %d-token output limit. Continue, in shorter steps.", r.cfg.MaxTokens)))
			return "", r.rec.flush(ctx)
		}
	case llm.StopPause:
		if len(calls) == 0 {
			r.addUser(llm.Text("Continue."))
			return "", r.rec.flush(ctx)
		}
	}
	if len(calls) == 0 {
		if err := r.rec.flush(ctx); err != nil {
			return "", err
		}
		if r.nudged >= r.cfg.Nudges {
			return "the researcher finished", nil
		}
		r.nudged++
		r.addUser(llm.Text("You still have budget: " + describeLeft(r.meter.Status()) + ". Continue your research — try the next idea, or confirm and share what works. If you are truly done, reply without calling a tool."))
		return "", r.rec.flush(ctx)
	}
	r.nudged = 0
	// Persist the calls first, so each has a transcript position before it
	// runs (a submission or finding links back to it).
	for _, c := range calls {
		r.rec.add("tool_call", map[string]any{"id": c.CallID, "name": c.Name, "input": r.scrub(string(c.Input))}, nil, 0, 0)
	}
	seqs, err := r.rec.flushPositions(ctx)
	if err != nil {
		return "", err
	}
	if len(seqs) < len(calls) {
		return "", fmt.Errorf("transcript: the lab acknowledged %d events, not %d", len(seqs), len(calls))
	}
	callSeqs := seqs[len(seqs)-len(calls):]
	var results []llm.Part
	stopWhy := ""
	for i, c := range calls {
		r.lastPos = callSeqs[i]
		key := c.Name + "\x00" + string(c.Input)
		if key == r.repeatKey {
			r.repeats++
		} else {
			r.repeatKey, r.repeats = key, 1
		}
		var out Output
		var runErr error
		switch {
		case stopWhy != "":
			runErr = Mistake("not run: %s", stopWhy)
		case r.repeats >= r.cfg.RepeatLimit:
			stopWhy = fmt.Sprintf("the same %s call came %d times in a row", c.Name, r.repeats)
			runErr = Mistake("not run: %s", stopWhy)
		case outOfToolCalls(r.meter) != "":
			stopWhy = outOfToolCalls(r.meter)
			runErr = Mistake("not run: %s", stopWhy)
		case c.InputError != "":
			runErr = Mistake("your input for %s is not valid JSON (%s); send a JSON object matching its schema", c.Name, c.InputError)
		default:
			t, ok := r.tools.Get(c.Name)
			if !ok {
				runErr = r.tools.unknown(c.Name)
				break
			}
			r.meter.AddTool()
			start := r.cfg.Now()
			out, runErr = t.Run(ctx, r.env, c.Input)
			r.logf("%s %s → %s (%s)", c.Name, oneLine(r.scrub(string(c.Input)), 120), resultWord(runErr), r.cfg.Now().Sub(start).Round(time.Millisecond))
		}
		if runErr != nil && !isMistake(runErr) {
			r.rec.add("tool_result", map[string]any{"id": c.CallID, "name": c.Name, "error": r.scrub(runErr.Error()), "fatal": true}, nil, 0, 0)
			return "", fmt.Errorf("%s: %w", c.Name, runErr)
		}
		text, isErr := out.Text, false
		if runErr != nil {
			text, isErr = "error: "+runErr.Error(), true
		}
		text = r.scrub(text)
		data := map[string]any{"id": c.CallID, "name": c.Name, "is_error": isErr, "text": capText(text, r.cfg.TranscriptBytes), "bytes": len(text)}
		for k, v := range out.Data {
			data[k] = v
		}
		cpu, _ := out.Data["cpu_seconds"].(float64)
		r.rec.add("tool_result", data, nil, 0, cpu)
		results = append(results, llm.ToolResult(c.CallID, capText(text, r.cfg.ResultBytes), isErr))
	}
	r.addUser(results...)
	if err := r.rec.flush(ctx); err != nil {
		return "", err
	}
	return stopWhy, nil
}

func resultWord(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + oneLine(err.Error(), 100)
}

func (r *Researcher) addUser(parts ...llm.Part) {
	for _, p := range parts {
		r.pendingChars += len(p.Text)
	}
	r.msgs = append(r.msgs, llm.Message{Role: llm.RoleUser, Parts: parts})
	if len(parts) == 1 && parts[0].Kind == llm.PartText {
		r.rec.add("message", map[string]any{"role": "user", "parts": parts}, nil, 0, 0)
	}
}

func (r *Researcher) capParts(ps []llm.Part) []llm.Part {
	out := make([]llm.Part, len(ps))
	for i, p := range ps {
		p.Text = capText(r.scrub(p.Text), r.cfg.TranscriptBytes)
		if len(p.Input) > 0 {
			p.Input = nil // recorded with the tool call
		}
		out[i] = p
	}
	return out
}

// control asks the operator's state: paused waits (spending nothing) until
// resumed or stopped; notes are shown to the model with the next results.
func (r *Researcher) control(ctx context.Context) (string, error) {
	if r.cfg.Control == nil {
		return "", nil
	}
	paused := false
	for {
		c, err := r.cfg.Control(ctx)
		if err != nil {
			return "", fmt.Errorf("control: %w", err)
		}
		for _, n := range c.Notes {
			r.logf("operator note: %s", oneLine(n, 160))
			r.rec.add("operator_note", map[string]any{"text": n}, nil, 0, 0)
			r.notes = append(r.notes, n)
		}
		switch c.State {
		case "stopped":
			return "stopped by the operator", nil
		case "paused":
			if !paused {
				paused = true
				r.logf("paused by the operator")
				r.rec.add("paused", map[string]any{}, nil, 0, 0)
				if err := r.rec.flush(ctx); err != nil {
					return "", err
				}
			}
			if r.stopping.Load() {
				return "stopped by the operator", nil
			}
			select {
			case <-ctx.Done():
				return "stopped: " + ctx.Err().Error(), nil
			case <-time.After(time.Second):
			}
			continue
		}
		if paused {
			r.logf("resumed by the operator")
			r.rec.add("resumed", map[string]any{}, nil, 0, 0)
		}
		if len(r.notes) > 0 {
			var b strings.Builder
			for _, n := range r.notes {
				fmt.Fprintf(&b, "Note from the lab's operator: %s\n", n)
			}
			r.notes = nil
			r.addUser(llm.Text(b.String()))
			r.mergeTrailingUser()
		}
		return "", nil
	}
}

// mergeTrailingUser joins two user messages at the end of the history (a
// note after tool results), since providers want turns to alternate.
func (r *Researcher) mergeTrailingUser() {
	n := len(r.msgs)
	if n >= 2 && r.msgs[n-1].Role == llm.RoleUser && r.msgs[n-2].Role == llm.RoleUser {
		r.msgs[n-2].Parts = append(r.msgs[n-2].Parts, r.msgs[n-1].Parts...)
		r.msgs = r.msgs[:n-1]
	}
}

func (r *Researcher) refresh(ctx context.Context, force bool) error {
	if r.cfg.Refresh == nil {
		return nil
	}
	every := r.cfg.RefreshEvery
	if every <= 0 {
		every = time.Minute
	}
	if !force && r.cfg.Now().Sub(r.refreshed) < every {
		return nil
	}
	r.refreshed = r.cfg.Now()
	if err := r.cfg.Refresh(ctx); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	return nil
}

// startSession begins a fresh context: the first user message carries the
// notebook and a digest of findings the researcher has not seen.
func (r *Researcher) startSession(ctx context.Context, why string) error {
	r.session++
	r.msgs, r.lastPrompt, r.pendingChars = nil, 0, 0
	r.repeatKey, r.repeats = "", 0
	r.rec.session = fmt.Sprintf("s%d", r.session)
	if err := r.refresh(ctx, true); err != nil {
		return err
	}
	notebook, err := readNotebook(ctx, r.env)
	if err != nil {
		return fmt.Errorf("notebook: %w", err)
	}
	digest := ""
	if r.cfg.Sharing != SharingNone {
		if digest, err = r.digest(ctx); err != nil {
			return fmt.Errorf("forum: %w", err)
		}
	}
	var b strings.Builder
	if r.session == 1 {
		b.WriteString("Begin your research. Look at /data first, then work in your direction.\n")
	} else {
		fmt.Fprintf(&b, "This is session %d: your earlier context was cleared (%s). Carry on from your notebook.\n", r.session, why)
	}
	fmt.Fprintf(&b, "\nBudget: %s.\n", describeLeft(r.meter.Status()))
	if notebook != "" {
		fmt.Fprintf(&b, "\n# Your notebook\n%s\n", capText(notebook, 24<<10))
	}
	if digest != "" {
		fmt.Fprintf(&b, "\n# New findings on the forum\n%s\n", digest)
	}
	ev := map[string]any{"session": r.session, "reason": why}
	if r.session == 1 {
		// The prompt the researcher works under, for the record (tools are
		// the same for every researcher; the direction is in here).
		ev["system"] = capText(r.system, 32<<10)
		ev["direction"] = r.cfg.Direction
	}
	r.rec.add("session", ev, nil, 0, 0)
	r.addUser(llm.Text(r.scrub(b.String())))
	r.logf("session %d starts%s", r.session, map[bool]string{true: "", false: " (" + why + ")"}[why == ""])
	return nil
}

// digest lists findings posted since the last one this researcher saw.
func (r *Researcher) digest(ctx context.Context) (string, error) {
	raw, err := r.cfg.Lab.ListFindings(ctx, r.cursor, 50)
	if err != nil {
		return "", err
	}
	var page struct {
		Findings []struct {
			ID, Author, Type, Title, Family string
			Metrics                         json.RawMessage
		} `json:"findings"`
		Next int64 `json:"next"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return "", err
	}
	r.cursor = max(r.cursor, page.Next)
	var b strings.Builder
	for _, f := range page.Findings {
		fmt.Fprintf(&b, "- %s [%s, %s] %s — %s", f.ID, f.Type, f.Family, f.Title, f.Author)
		if len(f.Metrics) > 0 && len(f.Metrics) < 300 {
			fmt.Fprintf(&b, " %s", f.Metrics)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// consult runs the consult tool's one call, metered and budget-checked.
func (r *Researcher) consult(ctx context.Context, question string) (string, error) {
	c := r.cfg.Consult
	price, _ := r.cfg.Prices.Lookup(c.Model)
	maxTok := c.MaxTokens
	if maxTok <= 0 {
		maxTok = 8192
	}
	if why := nextCallWouldOverrun(r.meter, price, int64(len(question)/3+200), int64(maxTok+c.ThinkingBudget)); why != "" {
		return "", Mistake("consult not made: %s", why)
	}
	resp, err := c.Backend.Complete(ctx, llm.Request{Model: c.Model, MaxTokens: maxTok + c.ThinkingBudget, ThinkingBudget: c.ThinkingBudget,
		System:   "You are a senior machine-learning researcher advising a colleague on a weak-to-strong supervision experiment. Answer precisely and briefly.",
		Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{llm.Text(question)}}}})
	if err != nil {
		return "", fmt.Errorf("consult: %w", err)
	}
	cost := price.Cost(resp.Usage)
	r.meter.AddCall(resp.Usage, cost)
	u := resp.Usage
	r.rec.add("usage", map[string]any{"model": resp.Model, "consult": true}, &u, cost, 0)
	return resp.Message.TextOf(), nil
}

func describeLeft(st Status) string {
	l := st.Left
	var parts []string
	if l.USD != nil {
		parts = append(parts, fmt.Sprintf("$%.2f left", *l.USD))
	}
	if l.Tokens != nil {
		parts = append(parts, fmt.Sprintf("%d tokens left", *l.Tokens))
	}
	if l.Wall != "" {
		parts = append(parts, l.Wall+" left")
	}
	if l.CPUSeconds != nil {
		parts = append(parts, fmt.Sprintf("%.0f s of sandbox CPU left", *l.CPUSeconds))
	}
	if l.ToolCalls != nil {
		parts = append(parts, fmt.Sprintf("%d tool calls left", *l.ToolCalls))
	}
	if len(parts) == 0 {
		return "unbounded"
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
