package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/llm"
)

// BuiltinConfig tunes the built-in researcher.
type BuiltinConfig struct {
	Seed      uint64
	Direction string
	// Screens bounds two-seed screening submissions (default 22, inside
	// the default quota of 30 submissions an hour with the confirmations);
	// Mutations how many of them at least go to neighbours of the best
	// (default 6); Confirm how many of the best are confirmed on 5 seeds
	// (default 3). Screening also stops when the budget left (read with the
	// budget tool) would not cover the confirmations.
	Screens, Mutations, Confirm int
}

// Builtin is the researcher that needs no model: a search over the
// toolkit's method space — losses, filters, reweighting, epochs, learning
// rates, self-training and their combinations — that speaks through the
// same tools, quotas and transcript as a model. It screens each candidate
// cheaply (a smoke run on one seed, then two seeds, one submission), tries neighbours
// of the best, confirms the best on 5 seeds, and posts hypotheses, errors
// and results with method cards; it adopts other researchers' posted
// configurations as starting points. Its direction decides which families
// it tries first; everything it chooses is deterministic per seed.
type Builtin struct {
	mu     sync.Mutex
	cfg    BuiltinConfig
	rng    *rand.Rand
	plan   []func() []llm.Part // steps still to take
	wait   func(results []llm.Part)
	queue  []cand
	seen   map[string]bool
	done   []screened
	posted map[string]bool
	n      int
	finish bool
	calls  int
	// confirmSeeds are the seeds a result is confirmed on (fixed, never
	// picked by score).
	confirmSeeds []string
	screenSeeds  []string
	vanilla      *screened
	best         *screened
	confirmed    []screened
	adopted      int
	failed       int
	// What the budget tool said last: sandbox CPU and wall time spent and
	// left (negative: unbounded), and the screens done by then.
	lastCPU, lastWall    float64
	perScreen            float64 // the dearer of CPU and wall seconds per screen
	screensAtBudget      int
	budgetChecked, broke bool
	reread               bool
}

// dropSpace keeps the queued candidates that are not from the initial
// space (adopted ones), for the search around the best.
func dropSpace(q []cand) []cand {
	var out []cand
	for _, c := range q {
		if c.Origin != "space" {
			out = append(out, c)
		}
	}
	return out
}

type screened struct {
	c      cand
	pgr    float64
	se     float64
	seeds  int
	subID  string
	failed bool
}

// NewBuiltin returns a built-in researcher.
func NewBuiltin(cfg BuiltinConfig) *Builtin {
	if cfg.Screens <= 0 {
		cfg.Screens = 22
	}
	if cfg.Mutations < 0 {
		cfg.Mutations = 0
	} else if cfg.Mutations == 0 {
		cfg.Mutations = 6
	}
	// At least two thirds of the screens go to the method space itself.
	cfg.Mutations = min(cfg.Mutations, cfg.Screens/3)
	if cfg.Confirm <= 0 {
		cfg.Confirm = 3
	}
	b := &Builtin{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6275696c74696e)), seen: map[string]bool{}, posted: map[string]bool{},
		confirmSeeds: []string{"42", "43", "44", "45", "46"}}
	b.screenSeeds = []string{"47", "48"} // until look() reads the view's weak seeds
	fams := familyCands(b.rng)
	order := familyOrder(cfg.Direction, b.rng)
	b.enqueue(cand{Family: "other", Method: "vanilla_w2s", Origin: "baseline", Why: "the reference every method is compared with"})
	for _, f := range order {
		for _, c := range fams[f] {
			c.Family, c.Origin = f, "space"
			b.enqueue(c)
		}
	}
	b.plan = []func() []llm.Part{b.look, b.writePrep, b.readForum}
	return b
}

func (b *Builtin) enqueue(c cand) bool {
	if b.seen[c.key()] {
		return false
	}
	b.seen[c.key()] = true
	b.n++
	c.ID = fmt.Sprintf("c%d", b.n)
	b.queue = append(b.queue, c)
	return true
}

// Name implements llm.Backend.
func (b *Builtin) Name() string { return "builtin" }

// Complete implements llm.Backend: it reads the tool results of its last
// calls and answers with the next call (or ends its turn when done).
func (b *Builtin) Complete(ctx context.Context, req llm.Request) (*llm.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var results []llm.Part
	if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == llm.RoleUser {
		for _, p := range req.Messages[n-1].Parts {
			if p.Kind == llm.PartToolResult {
				results = append(results, p)
			}
		}
	}
	if b.wait != nil && len(results) > 0 {
		w := b.wait
		b.wait = nil
		w(results)
	}
	for !b.finish {
		if len(b.plan) == 0 {
			b.plan = append(b.plan, b.next)
		}
		step := b.plan[0]
		b.plan = b.plan[1:]
		if parts := step(); len(parts) > 0 {
			return b.answer(parts), nil
		}
	}
	return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant, Parts: []llm.Part{llm.Text(b.summary())}}, Stop: llm.StopEnd, Model: "builtin", Attempts: 1}, nil
}

func (b *Builtin) answer(parts []llm.Part) *llm.Response {
	for i := range parts {
		if parts[i].Kind == llm.PartToolCall {
			b.calls++
			parts[i].CallID = fmt.Sprintf("builtin_%d", b.calls)
		}
	}
	return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant, Parts: parts}, Stop: llm.StopToolUse, Model: "builtin", Attempts: 1}
}

func call(text, name string, input any) []llm.Part {
	in, _ := json.Marshal(input)
	var parts []llm.Part
	if text != "" {
		parts = append(parts, llm.Text(text))
	}
	return append(parts, llm.Part{Kind: llm.PartToolCall, Name: name, Input: in})
}

// look reads the public view and the weak seeds it has: the first five are
// the confirmation seeds, and the screening seed is drawn from the rest.
func (b *Builtin) look() []llm.Part {
	b.wait = func(res []llm.Part) {
		if len(res) == 0 {
			return
		}
		var seeds []int
		for _, line := range strings.Fields(res[0].Text) {
			if n, err := strconv.Atoi(strings.TrimSuffix(line, ".jsonl")); err == nil && strings.HasSuffix(line, ".jsonl") {
				seeds = append(seeds, n)
			}
		}
		sort.Ints(seeds)
		if len(seeds) == 0 {
			return
		}
		b.confirmSeeds = nil
		for _, n := range seeds[:min(5, len(seeds))] {
			b.confirmSeeds = append(b.confirmSeeds, strconv.Itoa(n))
		}
		rest := seeds[min(5, len(seeds)):]
		if len(rest) == 0 {
			rest = seeds
		}
		// Researchers with different --seed values screen on different
		// seeds (identical screens would be flagged as near-duplicates of
		// each other's) until the seeds run out.
		i := int((2 * b.cfg.Seed) % uint64(len(rest)))
		b.screenSeeds = []string{strconv.Itoa(rest[i])}
		if len(rest) > 1 {
			b.screenSeeds = append(b.screenSeeds, strconv.Itoa(rest[(i+1)%len(rest)]))
		}
	}
	return call("First, the public view.", "bash", map[string]any{"command": "head -c 1500 /data/testbed.json; echo; wc -l /data/*.jsonl; ls /data/weak"})
}

func (b *Builtin) writePrep() []llm.Part {
	b.wait = func([]llm.Part) {}
	return call("A helper that turns weak labels into weights or targets.", "write_file", map[string]any{"path": "prep.py", "content": prepScript})
}

// readForum adopts the best posted configurations of other researchers.
func (b *Builtin) readForum() []llm.Part {
	b.wait = func(res []llm.Part) {
		var page struct {
			Findings []struct {
				Author, Type string
				Config       json.RawMessage `json:"config"`
				Metrics      json.RawMessage `json:"metrics"`
			} `json:"findings"`
		}
		if len(res) == 0 || res[0].IsError || json.Unmarshal([]byte(res[0].Text), &page) != nil {
			return
		}
		type adopt struct {
			c   cand
			pgr float64
		}
		var as []adopt
		for _, f := range page.Findings {
			if f.Type != "result" {
				continue
			}
			var cf struct {
				Builtin *cand `json:"builtin"`
			}
			var m struct {
				PGR float64 `json:"pgr"`
			}
			if json.Unmarshal(f.Config, &cf) != nil || cf.Builtin == nil {
				continue
			}
			_ = json.Unmarshal(f.Metrics, &m)
			c := *cf.Builtin
			c.Origin, c.Why = "adopted from "+f.Author, fmt.Sprintf("%s's best result (PGR %.2f)", f.Author, m.PGR)
			as = append(as, adopt{c, m.PGR})
		}
		sort.SliceStable(as, func(i, j int) bool { return as[i].pgr > as[j].pgr })
		var front []cand
		for _, a := range as[:min(len(as), 3)] {
			if b.seen[a.c.key()] {
				continue
			}
			b.seen[a.c.key()] = true
			b.n++
			a.c.ID = fmt.Sprintf("c%d", b.n)
			front = append(front, a.c)
			b.adopted++
		}
		switch {
		case len(front) == 0:
		case len(b.queue) > 0 && b.queue[0].Method == "vanilla_w2s":
			b.queue = append(append([]cand{b.queue[0]}, front...), b.queue[1:]...)
		default:
			b.queue = append(front, b.queue...)
		}
	}
	return call("What have others found?", "search_findings", map[string]any{"query": "", "limit": 100})
}

// next picks what to do: screen the next candidate, try neighbours of the
// best, confirm, then report.
func (b *Builtin) next() []llm.Part {
	screens := len(b.done)
	if !b.budgetChecked && b.best != nil && !b.broke {
		b.budgetChecked = true
		return b.checkBudget(screens)
	}
	b.budgetChecked = false
	if b.broke {
		screens = max(screens, b.cfg.Screens)
	}
	if !b.reread && screens >= b.cfg.Screens-b.cfg.Mutations && screens < b.cfg.Screens {
		// Before searching around its own best, look again at what others
		// have posted since.
		b.reread = true
		b.queue = dropSpace(b.queue)
		return b.readForum()
	}
	if len(b.queue) > 0 && screens < b.cfg.Screens-b.cfg.Mutations || len(b.queue) > 0 && len(b.confirmed) == 0 && b.queue[0].Origin != "space" && screens < b.cfg.Screens {
		c := b.queue[0]
		b.queue = b.queue[1:]
		return b.screen(c)
	}
	if screens < b.cfg.Screens && b.best != nil && b.cfg.Mutations > 0 {
		top := b.ranked()
		for tries := 0; tries < 20; tries++ {
			a := top[0]
			other := top[min(len(top)-1, 1+b.rng.IntN(max(1, min(len(top)-1, 3))))]
			if b.rng.IntN(3) == 0 && len(top) > 1 {
				a = top[1]
			}
			m := mutate(b.rng, a.c, other.c)
			if b.enqueue(m) {
				c := b.queue[len(b.queue)-1]
				b.queue = b.queue[:len(b.queue)-1]
				return b.screen(c)
			}
		}
	}
	if len(b.confirmed) == 0 && b.best != nil {
		b.plan = nil
		top := b.ranked()
		for i := 0; i < min(b.cfg.Confirm, len(top)); i++ {
			c := top[i]
			b.plan = append(b.plan, func() []llm.Part { return b.confirm(c) })
		}
		b.plan = append(b.plan, b.report)
		return nil
	}
	b.finish = true
	return nil
}

// checkBudget asks what is left; when the budget would not cover another
// screen and the confirmations (5 seeds each, at the cost screens have had
// so far, with a margin), screening stops.
func (b *Builtin) checkBudget(screens int) []llm.Part {
	b.wait = func(res []llm.Part) {
		if len(res) == 0 || res[0].IsError {
			return
		}
		var st struct {
			Spent struct {
				CPU     float64 `json:"sandbox_cpu_seconds"`
				Elapsed string  `json:"elapsed"`
			} `json:"spent"`
			Left struct {
				CPU  *float64 `json:"sandbox_cpu_seconds"`
				Wall string   `json:"wall"`
			} `json:"left"`
		}
		if json.Unmarshal([]byte(res[0].Text), &st) != nil {
			return
		}
		wall := parseSeconds(st.Spent.Elapsed)
		if n := screens - b.screensAtBudget; n > 0 && b.screensAtBudget > 0 {
			b.perScreen = max((st.Spent.CPU-b.lastCPU)/float64(n), (wall-b.lastWall)/float64(n))
		}
		b.lastCPU, b.lastWall, b.screensAtBudget = st.Spent.CPU, wall, screens
		need := b.perScreen * (1 + 1.5*2.5*float64(b.cfg.Confirm))
		if st.Left.CPU != nil && *st.Left.CPU < need {
			b.broke = true
		}
		if st.Left.Wall != "" && parseSeconds(st.Left.Wall) < need {
			b.broke = true
		}
	}
	return call("", "budget", map[string]any{})
}

// parseSeconds reads a Go duration string as seconds (0 if malformed).
func parseSeconds(s string) float64 {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d.Seconds()
}

// ranked lists screened candidates, best first (vanilla excluded unless
// nothing else worked).
func (b *Builtin) ranked() []screened {
	var out []screened
	for _, d := range b.done {
		if !d.failed && d.c.Method != "vanilla_w2s" {
			out = append(out, d)
		}
	}
	if len(out) == 0 && b.vanilla != nil {
		out = append(out, *b.vanilla)
	}
	// Released figures are coarse (a two-seed screen moves in steps of half the
	// scorer's rounding), so ties are common: among equals the simpler
	// configuration goes first, then the one screened earlier.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].pgr != out[j].pgr {
			return out[i].pgr > out[j].pgr
		}
		return out[i].c.complexity() < out[j].c.complexity()
	})
	return out
}

// screen posts a hypothesis the first time a family is tried, then runs a
// smoke check and one seed and submits it.
func (b *Builtin) screen(c cand) []llm.Part {
	if !b.posted[c.Family] && c.Family != "evolutionary" && c.Method != "vanilla_w2s" {
		b.posted[c.Family] = true
		b.plan = append([]func() []llm.Part{func() []llm.Part { return b.screen(c) }}, b.plan...)
		b.wait = func([]llm.Part) {}
		return call("", "share_finding", map[string]any{"type": "hypothesis", "family": c.Family,
			"title": fmt.Sprintf("%s may beat vanilla W2S here", c.Family),
			"body":  fmt.Sprintf("Hypothesis: %s. First test: %s, screened on seeds %s, then confirmed on 5 seeds if it leads.", c.Why, c.describe(), strings.Join(b.screenSeeds, " and "))})
	}
	b.wait = func(res []llm.Part) {
		if len(res) == 0 || res[0].IsError || exitCode(res[0].Text) != 0 {
			b.failed++
			b.done = append(b.done, screened{c: c, failed: true})
			msg := ""
			if len(res) > 0 {
				msg = tail(res[0].Text, 1500)
			}
			b.plan = append([]func() []llm.Part{func() []llm.Part { return b.postError(c, msg) }}, b.plan...)
			return
		}
		b.plan = append([]func() []llm.Part{func() []llm.Part { return b.submit(c, b.screenSeeds, false) }}, b.plan...)
	}
	return call(fmt.Sprintf("Screening %s (%s): %s.", c.ID, c.describe(), c.Why), "bash",
		map[string]any{"command": c.script(b.screenSeeds, true), "timeout_seconds": 1200})
}

func (b *Builtin) postError(c cand, msg string) []llm.Part {
	b.wait = func([]llm.Part) {}
	return call("", "share_finding", map[string]any{"type": "error", "family": c.Family, "worked": false,
		"title": fmt.Sprintf("%s failed to run", c.describe()),
		"body":  "The pipeline failed before producing predictions:\n\n```\n" + msg + "\n```", "config": map[string]any{"builtin": c}})
}

// submit sends runs/ID/SEED.jsonl for the seeds and records the released
// PGR; a refusal (quota) ends screening.
func (b *Builtin) submit(c cand, seeds []string, confirm bool) []llm.Part {
	files := make([]string, len(seeds))
	for i, s := range seeds {
		files[i] = fmt.Sprintf("runs/%s/%s.jsonl", c.ID, s)
	}
	b.wait = func(res []llm.Part) {
		if len(res) == 0 || res[0].IsError {
			if !confirm {
				// Out of quota or refused: stop screening, confirm what we have.
				b.queue, b.cfg.Screens = nil, 0
				b.cfg.Mutations = 0
			}
			return
		}
		pgr, se, id, ok := releasedPGR(res[0].Text)
		if !ok {
			return
		}
		s := screened{c: c, pgr: pgr, se: se, seeds: len(seeds), subID: id}
		if !confirm {
			b.done = append(b.done, s)
			if c.Method == "vanilla_w2s" {
				b.vanilla = &s
			} else if b.best == nil || pgr > b.best.pgr {
				b.best = &s
			}
			return
		}
		b.confirmed = append(b.confirmed, s)
	}
	note := fmt.Sprintf("%s screen on seeds %s: %s", c.ID, strings.Join(seeds, ","), c.describe())
	if confirm {
		note = fmt.Sprintf("%s confirmed on seeds %s: %s", c.ID, strings.Join(seeds, ","), c.describe())
	}
	return call("", "submit_predictions", map[string]any{"files": files, "note": note})
}

// confirm trains a candidate on the 5 confirmation seeds and submits them.
func (b *Builtin) confirm(s screened) []llm.Part {
	c := s.c
	b.wait = func(res []llm.Part) {
		if len(res) == 0 || res[0].IsError || exitCode(res[0].Text) != 0 {
			return
		}
		b.plan = append([]func() []llm.Part{func() []llm.Part { return b.submit(c, b.confirmSeeds, true) }}, b.plan...)
	}
	return call(fmt.Sprintf("Confirming %s (%s, screened at PGR %.3f) on seeds %s.", c.ID, c.describe(), s.pgr, strings.Join(b.confirmSeeds, ", ")),
		"bash", map[string]any{"command": c.script(b.confirmSeeds, false), "timeout_seconds": 1800})
}

// report posts the best confirmed result with its method card, then notes
// what was learned.
func (b *Builtin) report() []llm.Part {
	if len(b.confirmed) == 0 {
		b.plan = append(b.plan, b.writeNotebook)
		return nil
	}
	sort.SliceStable(b.confirmed, func(i, j int) bool { return b.confirmed[i].pgr > b.confirmed[j].pgr })
	best := b.confirmed[0]
	c := best.c
	worked := b.vanilla == nil || best.pgr > b.vanilla.pgr
	var comps []map[string]string
	switch {
	case c.Method != "":
		comps = append(comps, map[string]string{"name": c.Method, "ablation": b.ablation(c)})
	case c.Loss != "":
		comps = append(comps, map[string]string{"name": "loss " + c.Loss, "ablation": b.ablation(c)})
	}
	if c.Prep != "" {
		comps = append(comps, map[string]string{"name": "prep " + c.Prep, "ablation": b.ablation(c)})
	}
	for k, v := range c.Flags {
		comps = append(comps, map[string]string{"name": k + "=" + v, "ablation": b.ablation(c)})
	}
	if len(comps) == 0 {
		comps = append(comps, map[string]string{"name": "training settings", "ablation": b.ablation(c)})
	}
	inputs := []string{"weak labels", "strong representation"}
	body := fmt.Sprintf("%s, found by the built-in researcher's search (%s). Feedback PGR %.3f ± %.3f over seeds %s.",
		c.describe(), c.Origin, best.pgr, best.se, strings.Join(b.confirmSeeds, ", "))
	if b.vanilla != nil {
		body += fmt.Sprintf(" Vanilla W2S screened at %.3f on seeds %s.", b.vanilla.pgr, strings.Join(b.screenSeeds, ", "))
	}
	body += "\n\nRe-run: the snapshot's aar.toml runs methods/" + c.ID + ".sh (`aar verify " + best.subID + "` re-runs it on sealed data); the predictions are in runs/" + c.ID + "/."
	b.plan = append(b.plan, b.writeNotebook)
	b.wait = func([]llm.Part) {}
	return call("", "share_finding", map[string]any{"type": "result", "family": c.Family, "worked": worked,
		"title":      fmt.Sprintf("%s: feedback PGR %.3f on 5 seeds", c.describe(), best.pgr),
		"body":       body,
		"submission": best.subID,
		"metrics":    map[string]any{"pgr": best.pgr, "pgr_se": best.se, "seeds": best.seeds},
		"config":     map[string]any{"builtin": c, "commands": c.script(b.confirmSeeds, false)},
		"card": map[string]any{"summary": c.Why, "pseudocode": c.method(),
			"components": comps, "inputs": inputs}})
}

// ablation says what removing a component did, from the screens.
func (b *Builtin) ablation(c cand) string {
	if b.vanilla == nil {
		return "no vanilla screen to compare with"
	}
	for _, d := range b.done {
		if d.c.key() == c.key() {
			return fmt.Sprintf("without it (vanilla W2S) the screen seed gave PGR %.3f against %.3f", b.vanilla.pgr, d.pgr)
		}
	}
	return fmt.Sprintf("vanilla W2S screened at PGR %.3f", b.vanilla.pgr)
}

func (b *Builtin) writeNotebook() []llm.Part {
	b.wait = func([]llm.Part) {}
	b.plan = append(b.plan, func() []llm.Part { b.finish = true; return nil })
	return call("", "notebook", map[string]any{"action": "append", "text": b.summary()})
}

func (b *Builtin) summary() string {
	var s strings.Builder
	fmt.Fprintf(&s, "Built-in researcher (seed %d). Screened %d candidates on seeds %s (%d failed, %d adopted from others):\n", b.cfg.Seed, len(b.done), strings.Join(b.screenSeeds, ", "), b.failed, b.adopted)
	for _, d := range b.ranked() {
		fmt.Fprintf(&s, "- %s %s [%s]: PGR %.3f\n", d.c.ID, d.c.describe(), d.c.Family, d.pgr)
	}
	if b.vanilla != nil {
		fmt.Fprintf(&s, "- vanilla_w2s: PGR %.3f\n", b.vanilla.pgr)
	}
	for _, c := range b.confirmed {
		fmt.Fprintf(&s, "Confirmed %s (%s) on 5 seeds: PGR %.3f ± %.3f (%s).\n", c.c.ID, c.c.describe(), c.pgr, c.se, c.subID)
	}
	return s.String()
}

var exitRe = regexp.MustCompile(`^exit code (-?\d+)`)

func exitCode(text string) int {
	m := exitRe.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// releasedPGR reads the overall feedback PGR from a submission answer.
func releasedPGR(text string) (pgr, se float64, id string, ok bool) {
	var r struct {
		ID       string          `json:"id"`
		Feedback json.RawMessage `json:"feedback"`
	}
	if json.Unmarshal([]byte(text), &r) != nil {
		return 0, 0, "", false
	}
	pgr, se, ok = labclient.FeedbackPGR(r.Feedback)
	return pgr, se, r.ID, ok
}
