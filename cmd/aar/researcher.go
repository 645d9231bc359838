package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/agent"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/llm"
	"github.com/aar-lab/aar/internal/sandbox"
	"github.com/aar-lab/aar/internal/snapshot"
	"github.com/aar-lab/aar/internal/testbed"
)

// researcherOpts are aar researcher's flags.
type researcherOpts struct {
	engine                                     engineOpts
	lab, token, testbed, view, direction, name string
	backend, model, baseURL, script, prices    string
	prompt, profile, limits, labSocket         string
	consultModel                               string
	budgetUSD                                  float64
	budgetTokens                               int64
	wall, cpu                                  time.Duration
	toolCalls, modelCalls                      int
	maxTokens, thinking, contextTokens         int
	consultThinking                            int
	seed                                       uint64
	screens                                    int
	sharing, workflow, deadline, sandboxPrefix string
	latency                                    time.Duration
	agentCommand, agentFiles                   string
}

func newResearcherCmd(g *globals) *cobra.Command {
	var o researcherOpts
	c := &cobra.Command{
		Use:   "researcher --lab URL --token T --testbed T --direction TEXT --backend builtin|anthropic|openai|scripted|agent-cli [flags]",
		Short: "Run one researcher: the agent loop, in a fresh sandbox, against a lab, under a budget",
		Long: `Researcher runs one researcher worker: it creates a sandbox holding the
testbed's public view at /data (downloaded from the lab, which makes it from
the campaign's testbed, or --view DIR as written by aar testbed public) and
a copy of the forum at /shared, and runs the agent loop — model call, tool
calls, persist — until the budget is spent, the model finishes, or a stop
condition holds. It prints one line per step. Every message, tool call,
result, token count and cost goes to the lab's transcript store.

The worker holds its lab token (--token or AAR_TOKEN) and its model key
(ANTHROPIC_API_KEY or OPENAI_API_KEY, read from the environment only); the
sandbox holds neither, and no label ever reaches the worker.

Backends: builtin (a search over the toolkit's method space; needs no model),
anthropic (the Messages API), openai (any OpenAI-compatible Chat Completions
endpoint: --base-url http://127.0.0.1:8000/v1 for vLLM, Ollama or llama.cpp),
scripted (replays --script FILE, one model turn per line), agent-cli (runs
--agent-command, an external agent such as Claude Code, in the sandbox with
the lab's tools through aar mcp and its model through the lab's metering
proxy, its token as the virtual key: the real key stays in the lab; the
sandbox gets the researcher token, which the MCP bridge and the proxy take).`,
		Example: `  aar researcher --lab unix://$HOME/.local/share/aar/lab.sock --token $TOK --testbed metamath \
      --view /tmp/metamath-public --direction "reweight the pool by how much to trust each weak label" \
      --backend builtin --time 10m
  ANTHROPIC_API_KEY=... aar researcher --lab http://127.0.0.1:8420 --testbed reviews --view DIR \
      --direction "..." --backend anthropic --model claude-sonnet-5-5 --budget-usd 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runResearcher(cmd.Context(), g, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.lab, "lab", os.Getenv("AAR_LAB"), "the lab: http://host:port or unix:///path/lab.sock (default $AAR_LAB)")
	f.StringVar(&o.token, "token", "", "researcher token (default $AAR_TOKEN)")
	f.StringVar(&o.testbed, "testbed", "", "the campaign's testbed (checked against the view)")
	f.StringVar(&o.view, "view", "", "the testbed's public view directory (default: downloaded from the lab)")
	f.StringVar(&o.direction, "direction", "", "the research direction (free text)")
	f.StringVar(&o.name, "name", "", "name for the sandbox and log lines (default: researcher)")
	f.StringVar(&o.backend, "backend", "builtin", "builtin, anthropic, openai, scripted or agent-cli")
	f.StringVar(&o.model, "model", "", "model name (anthropic default claude-sonnet-5-5)")
	f.StringVar(&o.baseURL, "base-url", "", "API base URL (openai: e.g. http://127.0.0.1:8000/v1; anthropic: a proxy)")
	f.StringVar(&o.script, "script", "", "scripted backend: the turns to replay (JSONL)")
	f.StringVar(&o.prices, "prices", "", "prices file: {\"model\": {\"input\": USD/Mtok, \"output\": …}} over the defaults")
	f.StringVar(&o.prompt, "prompt", "", "system prompt template file (text/template; default: the built-in one)")
	f.StringVar(&o.profile, "profile", "cpu", "sandbox profile")
	f.StringVar(&o.limits, "limits", "", "sandbox limits, e.g. memory=2G,timeout=20m")
	f.StringVar(&o.labSocket, "lab-socket", "", "the lab's Unix socket to mount in the sandbox (default: the --lab socket)")
	f.StringVar(&o.consultModel, "consult-model", "", "model the consult tool asks (anthropic/openai; default: none, no consult tool)")
	f.IntVar(&o.consultThinking, "consult-thinking", 0, "thinking budget (tokens) for consult calls")
	f.Float64Var(&o.budgetUSD, "budget-usd", 0, "dollar budget (required for paid backends unless --budget-tokens is set)")
	f.Int64Var(&o.budgetTokens, "budget-tokens", 0, "token budget")
	f.DurationVar(&o.wall, "time", 0, "wall-clock budget, e.g. 10m, 2h")
	f.DurationVar(&o.cpu, "cpu", 0, "sandbox CPU-time budget, e.g. 10m")
	f.IntVar(&o.toolCalls, "tool-calls", 0, "tool-call budget")
	f.IntVar(&o.modelCalls, "model-calls", 0, "model-call budget")
	f.IntVar(&o.maxTokens, "max-tokens", 0, "output tokens per call (default 4096)")
	f.IntVar(&o.thinking, "thinking", 0, "extended thinking budget per call (tokens; anthropic)")
	f.IntVar(&o.contextTokens, "context-tokens", 0, "the model's context window (default 200000); a fresh session starts at 80%")
	f.Uint64Var(&o.seed, "seed", 1, "builtin: the search's seed")
	f.IntVar(&o.screens, "screens", 0, "builtin: most one-seed screening submissions (default 22)")
	f.StringVar(&o.sharing, "sharing", "sync", "what the researcher can read of others: sync (forum copy at /shared, search, leaderboard), search (search only), none")
	f.StringVar(&o.workflow, "workflow", "none", "none, or suggested (the prompt prescribes a workflow)")
	f.StringVar(&o.deadline, "deadline", "", "stop by this time (RFC 3339), e.g. a campaign's end")
	f.StringVar(&o.sandboxPrefix, "sandbox-prefix", "", "prefix of the sandbox's id (aar run uses the campaign's)")
	f.DurationVar(&o.latency, "latency", 0, "scripted: wait this long per model turn (simulates a model's latency)")
	f.StringVar(&o.agentCommand, "agent-command", "", "agent-cli: the agent's shell command, run in /workspace (e.g. 'claude -p \"$(cat TASK.md)\" --mcp-config .mcp.json')")
	f.StringVar(&o.agentFiles, "agent-files", "", "agent-cli: a directory whose files are copied into /workspace first (the agent's own config or script)")
	addEngineFlags(f, &o.engine)
	return c
}

func runResearcher(ctx context.Context, g *globals, o researcherOpts) error {
	if o.token == "" {
		o.token = os.Getenv("AAR_TOKEN")
	}
	switch {
	case o.lab == "" || o.token == "":
		return usagef("give the lab (--lab or AAR_LAB) and your researcher token (--token or AAR_TOKEN)")
	case strings.TrimSpace(o.direction) == "":
		return usagef("--direction is required: the research direction, in a sentence or two")
	}
	if err := o.engine.validate(); err != nil {
		return err
	}
	cl, err := labclient.New(o.lab, o.token)
	if err != nil {
		return usageError{err}
	}
	dir, err := g.dataDir()
	if err != nil {
		return err
	}
	if o.view == "" {
		if o.view, err = fetchPublicView(ctx, cl, filepath.Join(dir, "researcher-views")); err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "public view from the lab: %s\n", o.view)
	}
	manifest, err := os.ReadFile(filepath.Join(o.view, "testbed.json"))
	if err != nil {
		return usagef("--view %s: %v (write a public view with: aar testbed public NAME DIR)", o.view, err)
	}
	var m struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return invalidf("--view %s: testbed.json: %v", o.view, err)
	}
	if o.testbed != "" && m.Name != o.testbed {
		return usagef("--view %s holds testbed %q, not %q", o.view, m.Name, o.testbed)
	}
	if _, err := os.Stat(filepath.Join(o.view, "train_label.jsonl")); err == nil {
		return usagef("--view %s holds train_label.jsonl: that is a private testbed directory, not a public view (aar testbed public NAME DIR)", o.view)
	}
	prices, err := llm.LoadPrices(o.prices)
	if err != nil {
		return invalidf("%v", err)
	}
	lim, err := parseLimits(o.limits)
	if err != nil {
		return usageError{err}
	}
	secrets := []string{o.token}
	var (
		backend llm.Backend
		model   string
		consult *agent.ConsultConfig
		agentFS map[string][]byte
	)
	if o.backend == "agent-cli" {
		if strings.TrimSpace(o.agentCommand) == "" {
			return usagef("--backend agent-cli needs --agent-command: the agent's shell command, run in /workspace")
		}
		if agentFS, err = readAgentFiles(o.agentFiles); err != nil {
			return usageError{err}
		}
	} else if backend, model, consult, err = researcherBackend(&o, &secrets); err != nil {
		return err
	}
	if (o.backend == "anthropic" || o.backend == "openai") && o.budgetUSD <= 0 && o.budgetTokens <= 0 {
		return usagef("a paid backend needs a budget: give --budget-usd (dollars) or --budget-tokens")
	}
	if o.backend == "openai" && o.budgetUSD > 0 {
		if _, ok := prices.Lookup(model); !ok {
			return usagef("no price for model %q, so --budget-usd cannot be enforced: give --prices FILE with {\"%s\": {\"input\": …, \"output\": …}} (0 for a local server), or use --budget-tokens", model, model)
		}
	}
	// Check the token before making a sandbox.
	if _, err := cl.Spend(ctx); err != nil {
		return fmt.Errorf("lab %s: %w", o.lab, err)
	}

	name := o.name
	if name == "" {
		name = "researcher"
	}
	sfx := make([]byte, 4)
	_, _ = rand.Read(sfx)
	id := fmt.Sprintf("%s-%s", clip(sanitizeID(name), 30), hex.EncodeToString(sfx))
	if o.sandboxPrefix != "" {
		id = sandboxPrefix(o.sandboxPrefix) + id
	}
	if o.deadline != "" {
		dl, err := time.Parse(time.RFC3339, o.deadline)
		if err != nil {
			return usagef("--deadline %q: give an RFC 3339 time, e.g. 2026-11-29T18:00:00Z", o.deadline)
		}
		left := time.Until(dl)
		if left <= 0 {
			return fmt.Errorf("--deadline %s has passed", o.deadline)
		}
		if o.wall <= 0 || left < o.wall {
			o.wall = left
		}
	}
	shared, err := os.MkdirTemp("", "aar-forum-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(shared)
	if o.backend == "agent-cli" && lim.CommandTimeout == 0 {
		// The agent is one long command: its bound is the researcher's time.
		lim.CommandTimeout = 24 * time.Hour
		if o.wall > 0 {
			lim.CommandTimeout = o.wall
		}
	}
	spec := sandbox.Spec{ID: id, Profile: o.profile, Data: o.view, Shared: shared, Limits: lim}
	if exe, err := os.Executable(); err == nil {
		spec.AarBinary = exe
	}
	switch {
	case o.labSocket != "":
		spec.LabSocket = o.labSocket
	case strings.HasPrefix(o.lab, "unix://"):
		spec.LabSocket = strings.TrimPrefix(o.lab, "unix://")
	}
	if o.engine.kind == "kubernetes" && o.backend == "agent-cli" {
		// A pod reaches the lab by its in-cluster URL (the backend's
		// configuration), not a socket: a non-empty LabSocket asks the
		// backend for lab access (its NetworkPolicy, AAR_LAB and token).
		spec.LabSocket = o.lab
	}
	b, err := g.engineBackend(ctx, o.engine, filepath.Join(dir, "sandboxes"), o.token)
	if err != nil {
		return err
	}
	sb, err := b.Create(ctx, spec)
	if err != nil {
		return err
	}
	defer sb.Destroy(context.WithoutCancel(ctx))
	for _, w := range sb.Warnings() {
		fmt.Fprintf(g.stderr, "warning: %s\n", w)
	}
	prompt, err := agent.LoadPrompt(o.prompt)
	if err != nil {
		return invalidf("%v", err)
	}
	// A worker resumed after a crash carries on with what it had spent.
	spent, err := cl.Spend(ctx)
	if err != nil {
		return fmt.Errorf("lab %s: %w", o.lab, err)
	}
	var controlSince int64
	control := func(ctx context.Context) (agent.Control, error) {
		st, err := cl.MyControl(ctx, controlSince)
		if err != nil {
			var le *labclient.Error
			if errors.As(err, &le) && le.Status == 404 {
				return agent.Control{State: "running"}, nil // a lab without operator control
			}
			return agent.Control{}, err
		}
		controlSince = max(controlSince, st.Next)
		c := agent.Control{State: st.State}
		for _, n := range st.Notes {
			c.Notes = append(c.Notes, n.Text)
		}
		return c, nil
	}
	if o.backend == "agent-cli" {
		if spec.LabSocket == "" {
			return usagef("--backend agent-cli needs the lab's Unix socket in the sandbox: give --lab unix:///path/lab.sock (or --lab-socket)")
		}
		sum, err := agent.RunExternal(ctx, agent.ExternalConfig{Researcher: name, Testbed: m.Name, Direction: o.direction,
			Command: o.agentCommand, Files: agentFS, Token: o.token, Sandbox: sb, Lab: cl, Prompt: prompt, Wall: o.wall,
			Budget: agent.Budget{USD: o.budgetUSD, Wall: o.wall}, Sharing: o.sharing, Workflow: o.workflow, Control: control, Log: g.stderr})
		if err != nil {
			return err
		}
		return workerSummary(g, sum)
	}
	cfg := agent.Config{Researcher: name, Testbed: m.Name, Direction: o.direction, Backend: backend, Model: model, Consult: consult,
		Prices: prices, Lab: cl, Sandbox: sb, Prompt: prompt, MaxTokens: o.maxTokens, ThinkingBudget: o.thinking, ContextTokens: o.contextTokens,
		Budget:  agent.Budget{USD: o.budgetUSD, Tokens: o.budgetTokens, Wall: o.wall, CPU: o.cpu, ToolCalls: o.toolCalls, ModelCalls: o.modelCalls},
		Secrets: secrets, Log: g.stderr, Control: control, Sharing: o.sharing, Workflow: o.workflow,
		Carry: &agent.Carry{Usage: llm.Usage{InputTokens: spent.InputTokens, OutputTokens: spent.OutputTokens, CacheReadTokens: spent.CacheReadTokens, CacheWriteTokens: spent.CacheWriteTokens},
			USD: spent.CostUSD, CPU: time.Duration(spent.CPUSeconds * float64(time.Second)), ModelCalls: int(spent.ModelCalls), ToolCalls: int(spent.ToolCalls)}}
	if o.sharing == agent.SharingSync || o.sharing == "" {
		// The forum copy at /shared: synced at each session start and, in
		// the background, at least every 60 s whatever the loop is doing.
		cfg.Refresh = func(ctx context.Context) error { _, _, err := syncForum(ctx, cl, shared); return err }
		cfg.RefreshEvery = 24 * time.Hour // the ticker below does the periodic part
		go func() {
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if _, _, err := syncForum(ctx, cl, shared); err != nil && ctx.Err() == nil {
						fmt.Fprintf(g.stderr, "researcher %s: forum sync: %v\n", name, err)
					}
				}
			}
		}()
	}
	if o.backend == "builtin" {
		cfg.Nudges = -1
	}
	r, err := agent.New(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "researcher %s: backend %s, model %s, sandbox %s, budget %s\n", name, backend.Name(), model, id, budgetLine(cfg.Budget))
	if spent.ModelCalls > 0 {
		fmt.Fprintf(g.stderr, "researcher %s: resuming: carrying $%.4f, %d model calls, %d tool calls, %.0f s sandbox CPU from the earlier run\n",
			name, spent.CostUSD, spent.ModelCalls, spent.ToolCalls, spent.CPUSeconds)
	}
	// SIGINT or SIGTERM: finish the call in flight, record it, stop; a
	// second signal cancels the call. (The command's own context ends at the
	// first signal, so the loop runs on one that does not.)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			fmt.Fprintf(g.stderr, "researcher %s: stopping after the current step (signal again to cancel it)\n", name)
			r.Stop()
		case <-ctx.Done():
			return
		}
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	sum, err := r.Run(ctx)
	if err != nil {
		return err
	}
	return workerSummary(g, sum)
}

// readAgentFiles reads the regular files under dir (for --agent-files),
// relative path → content; at most 64 MiB in all.
func readAgentFiles(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if dir == "" {
		return out, nil
	}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("--agent-files: %s is not a regular file (links and devices are not copied)", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if total += int64(len(b)); total > 64<<20 {
			return fmt.Errorf("--agent-files %s: more than 64 MiB", dir)
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--agent-files: %w", err)
	}
	return out, nil
}

// fetchPublicView downloads the campaign testbed's public view from the lab
// into root/NAME-HASH (kept for the next researcher on the same view) and
// returns that directory.
func fetchPublicView(ctx context.Context, cl *labclient.Client, root string) (string, error) {
	rc, name, err := cl.PublicView(ctx)
	if err != nil {
		return "", fmt.Errorf("public view: %w", err)
	}
	defer rc.Close()
	t, err := snapshot.ReadArchive(rc, lab.PublicViewLimits)
	if err != nil {
		return "", fmt.Errorf("public view from the lab: %w", err)
	}
	if err := testbed.ValidateName(name); err != nil {
		return "", fmt.Errorf("public view from the lab: testbed name %q: %w", name, err)
	}
	dir := filepath.Join(root, name+"-"+t.Hash[:16])
	if _, err := os.Stat(filepath.Join(dir, "testbed.json")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, ".partial-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := snapshot.Unpack(t, filepath.Join(tmp, "v")); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, "v"), dir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(filepath.Join(dir, "testbed.json")); serr != nil {
			return "", err
		}
	}
	return dir, nil
}

func budgetLine(b agent.Budget) string {
	if s := b.String(); s != "" {
		return s
	}
	return "unbounded"
}

// researcherBackend builds the model backend; keys come from the
// environment only and are added to secrets (scrubbed from transcripts).
func researcherBackend(o *researcherOpts, secrets *[]string) (llm.Backend, string, *agent.ConsultConfig, error) {
	var consult *agent.ConsultConfig
	switch o.backend {
	case "builtin":
		return agent.NewBuiltin(agent.BuiltinConfig{Seed: o.seed, Direction: o.direction, Screens: o.screens}), "builtin", nil, nil
	case "scripted":
		if o.script == "" {
			return nil, "", nil, usagef("--backend scripted needs --script FILE (one model turn per line)")
		}
		s, err := llm.LoadScript(o.script)
		if err != nil {
			return nil, "", nil, invalidf("%v", err)
		}
		model := o.model
		if model == "" {
			model = "scripted"
		}
		if o.latency > 0 {
			return &delayed{Backend: s, d: o.latency}, model, nil, nil
		}
		return s, model, nil, nil
	case "anthropic":
		key := os.Getenv("ANTHROPIC_API_KEY")
		if key == "" {
			return nil, "", nil, usagef("--backend anthropic needs ANTHROPIC_API_KEY in the environment")
		}
		*secrets = append(*secrets, key)
		base := o.baseURL
		if base == "" {
			base = os.Getenv("ANTHROPIC_BASE_URL")
		}
		be := llm.NewAnthropic(llm.AnthropicConfig{APIKey: key, BaseURL: base})
		model := o.model
		if model == "" {
			model = "claude-sonnet-5-5"
		}
		if o.consultModel != "" || o.consultThinking > 0 {
			cm := o.consultModel
			if cm == "" {
				cm = model
			}
			consult = &agent.ConsultConfig{Backend: be, Model: cm, ThinkingBudget: o.consultThinking}
		}
		return be, model, consult, nil
	case "openai":
		key := os.Getenv("OPENAI_API_KEY")
		if key != "" {
			*secrets = append(*secrets, key)
		}
		if o.model == "" {
			return nil, "", nil, usagef("--backend openai needs --model (the name the server serves)")
		}
		be := llm.NewOpenAI(llm.OpenAIConfig{APIKey: key, BaseURL: o.baseURL})
		if o.consultModel != "" {
			consult = &agent.ConsultConfig{Backend: be, Model: o.consultModel}
		}
		return be, o.model, consult, nil
	default:
		return nil, "", nil, usagef("--backend %q: use builtin, anthropic, openai or scripted", o.backend)
	}
}

// delayed waits before each call of its backend (a simulated model's
// latency, for scale tests).
type delayed struct {
	llm.Backend
	d time.Duration
}

func (d *delayed) Complete(ctx context.Context, req llm.Request) (*llm.Response, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d.d):
	}
	return d.Backend.Complete(ctx, req)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// sanitizeID makes s usable in a sandbox id (lower-case letters, digits,
// '-' and '_').
// sandboxPrefix starts the id of every sandbox a campaign's workers make
// (aar run passes the campaign id as --sandbox-prefix), so a later run can
// find and remove what a crashed one left.
func sandboxPrefix(campaign string) string { return clip(sanitizeID(campaign), 24) + "-" }

func sanitizeID(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "researcher"
	}
	return b.String()
}

// workerSummary prints the worker's JSON summary on stdout and, in a pod
// (AAR_TERMINATION_LOG, e.g. /dev/termination-log), writes it there too,
// where the supervisor reads it as the pod's termination message
// (Kubernetes keeps 4 KiB of it).
func workerSummary(g *globals, sum any) error {
	if err := writeJSON(g.stdout, sum); err != nil {
		return err
	}
	if p := os.Getenv("AAR_TERMINATION_LOG"); p != "" {
		b, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		if len(b) > 4096 {
			// The reason is what the supervisor needs; keep it whole.
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			b, _ = json.Marshal(map[string]any{"reason": m["reason"], "truncated": true})
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			fmt.Fprintf(g.stderr, "warning: termination log %s: %v\n", p, err)
		}
	}
	return nil
}
