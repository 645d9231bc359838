package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/baseline"
	"github.com/aar-lab/aar/internal/campaign"
	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/labmcp"
	"github.com/aar-lab/aar/internal/proxy"
	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
	"github.com/aar-lab/aar/internal/verify"
	"github.com/aar-lab/aar/internal/w2s"
	"github.com/aar-lab/aar/internal/web"
)

// runOpts are aar run's flags.
type runOpts struct {
	engine                                                                  engineOpts
	file, testbed, directions, backend, model, policy, labURL, name, resume string
	sharing, workflow, cpu, script, latency, report, addr, profile          string
	researchers                                                             int
	budgetUSD, hours                                                        float64
	undirected, asJSON, noBaselines                                         bool
	verifyTop                                                               int
	agentCommand, agentFiles                                                string
}

func newRunCmd(g *globals) *cobra.Command {
	var o runOpts
	c := &cobra.Command{
		Use:   "run [-f campaign.yaml] [--testbed T] [--researchers N] [--backend auto|builtin|anthropic|openai|scripted|agent-cli [--agent-command CMD]] [flags]",
		Short: "Run a campaign: parallel researchers on one testbed, live progress, a report at the end",
		Long: `Run starts a campaign: an embedded lab on DATA (or --lab URL with an admin
AAR_TOKEN), the campaign (its spec hashed into the ledger), the baselines'
results posted to the forum, and one aar researcher worker per researcher,
each in its own sandbox, each seeded with a different built-in direction
(or --directions FILE, one per line). It shows one line per researcher
(state, current action, best feedback PGR, submissions, spend) and the
frontier, in place on a terminal and as periodic blocks otherwise (--json
streams events), and writes the report when every researcher has finished.

--backend auto picks anthropic when ANTHROPIC_API_KEY is set, else the
built-in researcher (no model, no key, offline). A paid backend needs a
dollar cap: --budget-usd, else a default one is printed before anything is
spent. Conditions (the public study's comparisons): --undirected (every
researcher gets the same prompt), --sharing sync|search|none, --workflow
none|suggested.

Ctrl-C stops cleanly: workers finish their current call, sandboxes are
destroyed, the ledger stays consistent; aar run --resume ID continues a
campaign after a crash without repeating accepted work. Control a running
campaign from another terminal with aar runs.`,
		Example: `  aar run --testbed metamath --researchers 3           # offline: built-in researchers
  aar run -f campaign.yaml --json
  ANTHROPIC_API_KEY=... aar run --testbed reviews --researchers 9 --budget-usd 50 --hours 6
  aar run --resume run-20261129-101500`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCampaign(cmd, g, o)
		},
	}
	f := c.Flags()
	f.StringVarP(&o.file, "file", "f", "", "campaign file (YAML or JSON); flags override it")
	f.StringVar(&o.testbed, "testbed", "", "testbed (default metamath)")
	f.IntVar(&o.researchers, "researchers", 0, "number of researchers (default 3, or the file's list)")
	f.StringVar(&o.directions, "directions", "", "file of directions, one per line (default: the nine built-in ones)")
	f.StringVar(&o.backend, "backend", "auto", "auto, builtin, anthropic, openai, scripted or agent-cli")
	f.StringVar(&o.model, "model", "", "model for anthropic/openai researchers")
	f.Float64Var(&o.budgetUSD, "budget-usd", 0, "the campaign's dollar cap, split among researchers")
	f.Float64Var(&o.hours, "hours", 0, "the campaign's wall-clock limit in hours")
	f.StringVar(&o.cpu, "cpu", "", "each researcher's sandbox CPU budget, e.g. 10m")
	f.StringVar(&o.policy, "policy", "", "feedback policy: default, ladder or anchor")
	f.StringVar(&o.labURL, "lab", "", "use this lab (http://… or unix://…; AAR_TOKEN must be an admin token) instead of an embedded one")
	f.StringVar(&o.addr, "addr", "127.0.0.1:0", "embedded lab: TCP address for the API and dashboard")
	f.StringVar(&o.name, "name", "", "campaign id (default run-YYYYMMDD-HHMMSS)")
	f.StringVar(&o.resume, "resume", "", "continue campaign ID after a crash")
	f.BoolVar(&o.undirected, "undirected", false, "give every researcher the same prompt (no directions)")
	f.StringVar(&o.sharing, "sharing", "", "sync (default), search or none")
	f.StringVar(&o.workflow, "workflow", "", "none (default) or suggested")
	f.StringVar(&o.script, "script", "", "scripted backend: the turns every researcher replays")
	f.StringVar(&o.latency, "latency", "", "scripted backend: simulated model latency per turn, e.g. 2s")
	f.StringVar(&o.profile, "profile", "", "sandbox profile (default cpu)")
	f.StringVar(&o.report, "report", "", "where the report goes (default DATA/runs/ID/report)")
	f.BoolVar(&o.asJSON, "json", false, "stream events as JSON lines instead of the live view")
	f.BoolVar(&o.noBaselines, "no-baselines", false, "do not post the baselines' results at the start")
	f.StringVar(&o.agentCommand, "agent-command", "", "agent-cli backend: the agent's shell command, run in each sandbox's /workspace (see README: Bring your own agent)")
	f.StringVar(&o.agentFiles, "agent-files", "", "agent-cli backend: a directory copied into each sandbox's /workspace first")
	addEngineFlags(f, &o.engine)
	addKubeFlags(f, &o.engine)
	f.IntVar(&o.verifyTop, "verify-top", 3, "when the campaign ends, verify its K best results (aar verify: replay, sealed re-run, ablation, audit); 0 skips")
	return c
}

// buildSpec turns flags and the campaign file into a spec.
func buildSpec(g *globals, o runOpts) (*campaign.Spec, error) {
	spec := &campaign.Spec{}
	if o.file != "" {
		s, err := campaign.Load(o.file)
		if err != nil {
			return nil, invalidf("%v", err)
		}
		spec = s
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&spec.Testbed, o.testbed)
	if spec.Testbed == "" {
		spec.Testbed = "metamath"
	}
	set(&spec.Policy, o.policy)
	set(&spec.Model, o.model)
	set(&spec.CPU, o.cpu)
	set(&spec.Script, o.script)
	set(&spec.Latency, o.latency)
	set(&spec.AgentCommand, o.agentCommand)
	if o.agentFiles != "" {
		abs, err := filepath.Abs(o.agentFiles)
		if err != nil {
			return nil, usagef("--agent-files: %v", err)
		}
		spec.AgentFiles = abs
	}
	set(&spec.Profile, o.profile)
	set(&spec.Name, o.name)
	set(&spec.Conditions.Sharing, o.sharing)
	set(&spec.Conditions.Workflow, o.workflow)
	if o.undirected {
		spec.Conditions.Undirected = true
	}
	if o.hours > 0 {
		spec.Hours = o.hours
	}
	if o.budgetUSD > 0 {
		spec.BudgetUSD = o.budgetUSD
	}
	switch o.backend {
	case "auto", "":
		if spec.Backend == "" {
			if os.Getenv("ANTHROPIC_API_KEY") != "" {
				spec.Backend = "anthropic"
				fmt.Fprintln(g.stderr, "backend: anthropic (ANTHROPIC_API_KEY is set; --backend builtin runs without a model)")
			} else {
				spec.Backend = "builtin"
				fmt.Fprintln(g.stderr, "backend: builtin researchers (no ANTHROPIC_API_KEY; they need no model and no network)")
			}
		}
	default:
		spec.Backend = o.backend
	}
	if o.directions != "" {
		if len(spec.Researchers) > 0 {
			return nil, usagef("give directions in the campaign file's researchers or in --directions, not both")
		}
		b, err := os.ReadFile(o.directions)
		if err != nil {
			return nil, usagef("--directions: %v", err)
		}
		var dirs []string
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				dirs = append(dirs, line)
			}
		}
		if len(dirs) == 0 {
			return nil, invalidf("--directions %s holds no direction (one per line)", o.directions)
		}
		n := o.researchers
		if n <= 0 {
			n = len(dirs)
		}
		for i := range n {
			// Distinct until they run out, then round again.
			spec.Researchers = append(spec.Researchers, campaign.ResearcherSpec{Name: fmt.Sprintf("r%d", i+1), Direction: dirs[i%len(dirs)]})
		}
		o.researchers = 0
	}
	if err := spec.Normalize(o.researchers); err != nil {
		return nil, usageError{err}
	}
	if spec.Paid() && spec.BudgetUSD <= 0 {
		per := 5.0
		spec.BudgetUSD = per * float64(len(spec.Researchers))
		if err := spec.Normalize(0); err != nil {
			return nil, usageError{err}
		}
		fmt.Fprintf(g.stderr, "no --budget-usd: capping the campaign at $%.2f ($%.2f per researcher) before anything is spent; set --budget-usd to change it\n", spec.BudgetUSD, per)
	}
	return spec, nil
}

// embedded is a lab run inside this process, served on DATA/lab.sock.
type embedded struct {
	lab    *lab.Lab
	ledger store.Ledger
	forum  forum.Store
	admin  string // this session's admin token
	socket string
	tcp    net.Addr
	// verifier re-runs results (POST /v1/verify, the end of a campaign).
	verifier *verify.Verifier
	cancel   context.CancelFunc
	done     chan error
}

// labAlive reports whether a lab answers on the socket.
func labAlive(socket string) bool {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// openEmbedded opens the lab on DATA and serves it on DATA/lab.sock (and
// addr), with a session admin token for purpose.
func openEmbedded(ctx context.Context, g *globals, dir, addr, purpose string) (*embedded, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	socket := filepath.Join(dir, "lab.sock")
	if labAlive(socket) {
		return nil, usagef("a lab is already running on %s (aar lab or another aar run): use it with --lab unix://%s and an admin AAR_TOKEN, or stop it", dir, socket)
	}
	ledger, err := openLabLedger(ctx, dir, "")
	if err != nil {
		return nil, err
	}
	fstore, err := openForum(ctx, dir, "")
	if err != nil {
		ledger.Close()
		return nil, err
	}
	l, first, err := lab.New(ctx, lab.Config{DataDir: dir, Ledger: ledger, Forum: fstore, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fstore.Close()
		ledger.Close()
		return nil, err
	}
	if first != "" {
		fmt.Fprintf(g.stderr, "a new lab in %s; its admin token (shown once; the lab keeps only its hash):\n%s\n", dir, first)
	}
	tok, err := l.SessionAdminToken(ctx, purpose)
	if err != nil {
		return nil, err
	}
	dash, err := web.New(l, webOptions(dir, socket))
	if err != nil {
		return nil, err
	}
	l.SetWeb(dash.Handler())
	l.SetMCP(labmcp.New(l, &labmcp.Options{Version: version}).Handler())
	l.SetProxy(proxy.FromEnv(l, os.Getenv, nil))
	vf, err := newVerifier(g, l, dir, io.Discard, verifyOpts{seeds: 5})
	if err != nil {
		return nil, err
	}
	l.SetVerifier(vf.Verify)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &embedded{lab: l, ledger: ledger, forum: fstore, admin: tok, socket: socket, cancel: cancel, done: make(chan error, 1), verifier: vf}
	ready := make(chan net.Addr, 1)
	go func() { e.done <- l.Serve(sctx, addr, socket, func(a net.Addr) { ready <- a }) }()
	select {
	case e.tcp = <-ready:
	case err := <-e.done:
		cancel()
		return nil, fmt.Errorf("embedded lab: %w", err)
	}
	return e, nil
}

// close revokes the session token, stops serving and signs the head.
func (e *embedded) close(ctx context.Context) {
	_ = e.lab.RevokeToken(ctx, e.admin)
	e.cancel()
	<-e.done
	_ = e.lab.Checkpoint(ctx)
	e.forum.Close()
	e.ledger.Close()
}

func (e *embedded) client() *labclient.Client {
	c, _ := labclient.New("unix://"+e.socket, e.admin)
	return c
}

func runCampaign(cmd *cobra.Command, g *globals, o runOpts) error {
	ctx := cmd.Context()
	if o.verifyTop < 0 {
		return usagef("--verify-top %d: give how many of the best results to verify at the end (0 skips)", o.verifyTop)
	}
	if err := o.engine.validate(); err != nil {
		return err
	}
	if o.engine.kind == "kubernetes" && o.labURL == "" {
		return usagef("--sandbox kubernetes needs --lab: the URL of a lab the cluster's pods reach (e.g. http://aar-lab.aar.svc:8420; see deploy/README.md)")
	}
	if o.engine.kind == "kubernetes" && o.engine.kubeImage == "" && os.Getenv("AAR_KUBE_IMAGE") == "" {
		return usagef("--sandbox kubernetes needs --kube-image (or AAR_KUBE_IMAGE): an image holding /usr/local/bin/aar that the cluster can pull (see deploy/README.md)")
	}
	dir, err := g.dataDir()
	if err != nil {
		return err
	}
	var spec *campaign.Spec
	if o.resume == "" {
		if spec, err = buildSpec(g, o); err != nil {
			return err
		}
	} else if o.file != "" || o.testbed != "" || o.researchers > 0 {
		return usagef("--resume takes the campaign's spec from the ledger: drop -f, --testbed and --researchers")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var admin *labclient.Client
	var emb *embedded
	workerLab := o.labURL
	if o.labURL == "" {
		// The testbed first: a name that is neither installed nor built in
		// is refused before a lab is opened (or created) in DATA.
		if spec != nil {
			store, err := g.testbeds()
			if err != nil {
				return err
			}
			if _, err := ensureInstalled(cmd, g, store, "", spec.Testbed, runtime.NumCPU(), nil); err != nil {
				return err
			}
		}
		if emb, err = openEmbedded(ctx, g, dir, o.addr, "aar run"); err != nil {
			return err
		}
		defer emb.close(context.WithoutCancel(ctx))
		admin, workerLab = emb.client(), "unix://"+emb.socket
	} else {
		tok := os.Getenv("AAR_TOKEN")
		if tok == "" {
			return usagef("--lab needs an admin token in AAR_TOKEN")
		}
		if admin, err = labclient.New(o.labURL, tok); err != nil {
			return usageError{err}
		}
	}
	id := o.resume
	if id == "" {
		id = spec.Name
		if id == "" {
			id = "run-" + time.Now().UTC().Format("20060102-150405")
		}
	}

	copts := campaign.Options{Spec: spec, CampaignID: id, Resume: o.resume != "", Admin: admin, WorkerLab: workerLab, Exe: exe, DataDir: dir,
		Progress: g.stderr, JSON: o.asJSON, TTY: isTerminal(g.stderr)}
	if o.asJSON {
		copts.Progress = g.stdout
	}
	for _, k := range []string{"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY"} {
		if v := os.Getenv(k); v != "" {
			copts.Env = append(copts.Env, k+"="+v)
		}
	}
	prepared := preparedCache(g)
	if emb != nil && !o.noBaselines && o.resume == "" {
		copts.Baselines = func(ctx context.Context) (string, error) {
			fmt.Fprintf(g.stderr, "posting the baselines' results (%d methods × 2 seeds on the feedback split) …\n", len(w2s.Methods))
			p, err := prepared(spec.Testbed)
			if err != nil {
				return "", err
			}
			return baselinesBody(ctx, p)
		}
	}
	if emb == nil && !o.noBaselines && o.resume == "" {
		copts.Baselines = func(ctx context.Context) (string, error) {
			return "The fixed weak and ceiling figures of the feedback split are in /data/testbed.json (PGR 0 and 1). This lab runs remotely, so aar run did not train the built-in baselines here: run them yourself with `aar w2s train --method M`.", nil
		}
	}
	// Control for operators in another terminal: aar runs … ID.
	ctrlDir := filepath.Join(dir, "runs", id)
	if err := os.MkdirAll(ctrlDir, 0o700); err != nil {
		return err
	}
	ctrlFile := filepath.Join(ctrlDir, "control.json")
	if emb != nil {
		b, _ := json.Marshal(map[string]string{"lab": "unix://" + emb.socket, "token": emb.admin})
		if err := os.WriteFile(ctrlFile, b, 0o600); err != nil {
			return err
		}
		defer os.Remove(ctrlFile)
	}

	// A run killed before could not destroy its workers' sandboxes: do it
	// now (their processes died with their workers).
	if emb != nil {
		removeStaleSandboxes(g, dir, id)
	}
	switch o.engine.kind {
	case "docker":
		// The image once, here, rather than by every worker at once; and
		// the containers of an earlier run of this campaign go.
		db, err := g.dockerBackend(ctx, o.engine)
		if err != nil {
			return err
		}
		o.engine.dockerImage = db.Image
		removed, err := db.Reap(ctx, sandboxPrefix(id))
		for _, r := range removed {
			fmt.Fprintf(g.stderr, "removed sandbox container %s left by an earlier run\n", r)
		}
		if err != nil {
			fmt.Fprintf(g.stderr, "warning: %v\n", err)
		}
		db.Client.Close()
	case "kubernetes":
		cleanup, err := kubeCampaign(o, &copts)
		if err != nil {
			return err
		}
		defer func() {
			if err := cleanup(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(g.stderr, "warning: %v\n", err)
			}
		}()
	}
	copts.WorkerArgs = o.engine.workerArgs()
	sctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sup, err := campaign.Start(sctx, copts)
	if err != nil {
		return err
	}
	if !o.asJSON {
		where := ""
		if emb != nil {
			where = fmt.Sprintf(" · dashboard http://%s/ (unix://%s)", emb.tcp, emb.socket)
		}
		fmt.Fprintf(g.stderr, "campaign %s: %d researchers on %s%s · Ctrl-C stops cleanly · control: aar runs show|pause|resume|stop|note|add %s\n",
			sup.ID(), len(sup.Spec().Researchers), sup.Spec().Testbed, where, sup.ID())
	}
	out, err := sup.Wait(sctx)
	if err != nil {
		return err
	}
	reportDir := o.report
	if reportDir == "" {
		reportDir = filepath.Join(dir, "runs", sup.ID(), "report")
	}
	if o.verifyTop > 0 && ctx.Err() == nil {
		verifyTop(ctx, g, emb, admin, sup.ID(), o.verifyTop)
	}
	var judge campaign.Judge
	if emb != nil {
		judge = func(ctx context.Context, sub, method string) ([]campaign.Comparison, error) {
			return judgeSubmission(ctx, emb.lab, prepared, sub, method)
		}
	}
	rctx := context.WithoutCancel(ctx)
	rep, err := campaign.Report(rctx, admin, sup.ID(), reportDir, judge)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	summary := map[string]any{"outcome": out, "report": reportDir, "best": rep.Best, "vs_baselines": rep.VsBaselines, "verified": rep.Verified}
	if o.asJSON {
		return writeJSON(g.stdout, summary)
	}
	fmt.Fprintf(g.stderr, "\n%s: %s in %s\n", sup.ID(), out.Reason, out.Elapsed.Round(time.Second))
	if b := rep.Best; b != nil {
		fmt.Fprintf(g.stderr, "best confirmed method: %s's %s — feedback PGR %s, holdout PGR %s ± %.3f (ID %s, OOD %s)\n",
			b.Name, b.Submission, campaign.FormatPGR(b.Feedback), campaign.FormatPGR(b.Holdout), b.HoldoutSE, campaign.FormatPGR(b.HoldoutID), campaign.FormatPGR(b.HoldoutOOD))
		for _, m := range []string{"vanilla_w2s", "logconf"} {
			for _, c := range rep.VsBaselines[m] {
				if c.Group == "overall" {
					fmt.Fprintf(g.stderr, "  vs %s on holdout: Δ PGR %+.3f [%+.3f, %+.3f] (paired bootstrap, 95%%)\n", m, c.Estimate, c.Lo, c.Hi)
				}
			}
		}
	} else {
		fmt.Fprintln(g.stderr, "no researcher confirmed a method on 5 seeds")
	}
	for _, v := range rep.Verified {
		if v.Verdict == lab.VerdictVerified && v.Sealed != nil {
			ci := ""
			if v.SealedLo != nil && v.SealedHi != nil {
				ci = fmt.Sprintf(" [%.3f, %.3f]", *v.SealedLo, *v.SealedHi)
			}
			fmt.Fprintf(g.stderr, "best verified result: %s's %s — sealed PGR %.3f%s on fresh seeds and unseen rows\n", v.Researcher, v.Submission, *v.Sealed, ci)
			break
		}
	}
	fmt.Fprintf(g.stderr, "report: %s\n", filepath.Join(reportDir, "report.md"))
	return nil
}

// verifyTop verifies the campaign's k best results, in the embedded lab
// or by asking the remote one.
func verifyTop(ctx context.Context, g *globals, emb *embedded, admin *labclient.Client, id string, k int) {
	var subs []string
	var err error
	if emb != nil {
		subs, err = emb.lab.TopResults(ctx, id, k)
	} else {
		subs, err = admin.TopResults(ctx, id, k)
	}
	if err != nil {
		fmt.Fprintf(g.stderr, "verify: %v\n", err)
		return
	}
	if len(subs) == 0 {
		fmt.Fprintln(g.stderr, "no result to verify")
		return
	}
	verify := admin.Verify
	if emb != nil {
		verify = func(ctx context.Context, sub string) (*labclient.Verification, error) {
			v, err := emb.verifier.Verify(ctx, sub)
			if err != nil {
				return nil, err
			}
			return clientVerification(v), nil
		}
	}
	for i, sub := range subs {
		fmt.Fprintf(g.stderr, "verifying result %d of %d (%s): replay, sealed re-run, teacher ablation, transfer, sandbox audit …\n", i+1, len(subs), sub)
		v, err := verify(ctx, sub)
		if err != nil {
			fmt.Fprintf(g.stderr, "  %s: %v\n", sub, err)
			continue
		}
		verdict, sealed := v.Verdict, ""
		if v.Sealed != nil {
			sealed = fmt.Sprintf(", sealed PGR %.3f", v.Sealed.Mean)
		}
		for _, f := range v.Flags {
			verdict += "; " + f.Kind
		}
		fmt.Fprintf(g.stderr, "  %s: %s%s (%.0fs)\n", sub, verdict, sealed, v.Seconds)
	}
}

// webOptions let the dashboard start campaigns as aar run children.
func webOptions(dir, socket string) web.Options {
	exe, _ := os.Executable()
	return web.Options{DataDir: dir, Socket: socket, Exe: exe}
}

// removeStaleSandboxes destroys sandboxes left by an earlier run of the
// campaign (their ids start with its id).
func removeStaleSandboxes(g *globals, dir, id string) {
	root := filepath.Join(dir, "sandboxes")
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	b, err := g.sandboxBackend(root)
	if err != nil {
		return
	}
	prefix := sandboxPrefix(id)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := b.Remove(e.Name()); err == nil {
				fmt.Fprintf(g.stderr, "removed sandbox %s left by an earlier run\n", e.Name())
			}
		}
	}
}

// preparedCache loads a testbed's prepared features once (for the
// baselines post and the report's comparisons; both read labels, so only an
// embedded lab's process does this).
func preparedCache(g *globals) func(string) (*baseline.Prepared, error) {
	cache := map[string]*baseline.Prepared{}
	return func(name string) (*baseline.Prepared, error) {
		if p := cache[name]; p != nil {
			return p, nil
		}
		tb, err := g.loadTestbed(name)
		if err != nil {
			return nil, err
		}
		p, err := baseline.Prepare(tb)
		if err != nil {
			return nil, err
		}
		cache[name] = p
		return p, nil
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// baselinesBody runs every built-in method on two seeds and tabulates its
// feedback-split figures (what researchers could learn by submitting).
func baselinesBody(ctx context.Context, p *baseline.Prepared) (string, error) {
	var b strings.Builder
	tb := p.TB
	b.WriteString("Fixed figures of the feedback split (PGR 0 and 1):\n\n| group | weak accuracy | ceiling accuracy |\n|---|---|---|\n")
	for _, f := range tb.Manifest.Baselines {
		if f.Split == testbed.SplitFeedback && f.Weak != nil && f.Ceiling != nil {
			fmt.Fprintf(&b, "| %s | %.3f | %.3f |\n", f.Group, f.Weak.Mean, f.Ceiling.Mean)
		}
	}
	b.WriteString("\nThe built-in methods (`aar w2s train --method M`), seeds 42 and 43, feedback split, PGR mean ± SE:\n\n| method | overall | ID | OOD |\n|---|---|---|---|\n")
	for _, m := range w2s.Methods {
		res, err := p.Run(ctx, baseline.Options{Method: m.Name, Seeds: []string{"42", "43"}, Splits: []string{testbed.SplitFeedback}})
		if err != nil {
			return "", err
		}
		cellS := func(g string) string {
			c := res.Report.Cell(testbed.SplitFeedback, g)
			if c == nil || c.PGR == nil {
				return "—"
			}
			return fmt.Sprintf("%.3f ± %.3f", c.PGR.Mean, c.PGR.SE)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", m.Name, cellS(testbed.GroupOverall), cellS(testbed.GroupID), cellS(testbed.GroupOOD))
	}
	return b.String(), nil
}

// judgeSubmission compares a submission with a baseline method trained on
// the same seeds, per holdout cell (paired bootstrap, 2,000 resamples).
func judgeSubmission(ctx context.Context, l *lab.Lab, prepared func(string) (*baseline.Prepared, error), sub, method string) ([]campaign.Comparison, error) {
	preds, tb, err := l.SubmissionPredictions(ctx, sub)
	if err != nil {
		return nil, err
	}
	p, err := prepared(tb.Manifest.Name)
	if err != nil {
		return nil, err
	}
	seeds := make([]string, len(preds))
	for i, pr := range preds {
		seeds[i] = pr.Seed
	}
	res, err := p.Run(ctx, baseline.Options{Method: method, Seeds: seeds, Splits: []string{testbed.SplitHoldout}})
	if err != nil {
		return nil, err
	}
	var out []campaign.Comparison
	for _, g := range []string{testbed.GroupOverall, testbed.GroupID, testbed.GroupOOD} {
		cmp, err := score.Compare(tb, preds, res.Predictions(), testbed.SplitHoldout, g, 2000, 1)
		if err != nil {
			var ce *score.CoverageError
			if errors.As(err, &ce) {
				continue
			}
			return nil, err
		}
		if cmp.PGR == nil || cmp.Rows == 0 {
			continue
		}
		out = append(out, campaign.Comparison{Group: g, Estimate: cmp.PGR.Estimate, Lo: cmp.PGR.Lo, Hi: cmp.PGR.Hi})
	}
	return out, nil
}
