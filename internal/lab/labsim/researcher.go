package labsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/snapshot"
)

// Kinds of request a researcher makes, one per lab route it calls.
const (
	KindControl     = "control"      // GET /v1/control: the operator's state, every step
	KindTranscript  = "transcript"   // POST /v1/transcripts: twice a step
	KindSubmit      = "submit"       // POST /v1/submissions: scored
	KindValidate    = "validate"     // POST /v1/validate: checked, not scored
	KindLeaderboard = "leaderboard"  // GET /v1/leaderboard
	KindForumSync   = "forum_sync"   // GET /v1/findings?since=: the /shared copy
	KindForumSearch = "forum_search" // GET /v1/findings/search
	KindForumPost   = "forum_post"   // POST /v1/findings
	KindSpend       = "spend"        // GET /v1/spend
	KindSnapshot    = "snapshot"     // POST /v1/snapshots: before each submission, and on its own
)

// Kinds lists the request kinds in report order.
var Kinds = []string{KindTranscript, KindControl, KindSubmit, KindValidate, KindLeaderboard,
	KindForumSync, KindForumSearch, KindForumPost, KindSpend, KindSnapshot}

// Mix is a researcher's step, shaped on the aar researcher worker's loop
// (internal/agent): it polls the operator's control state, records the
// model's message, usage and tool call in one transcript batch, runs one
// tool, and records the tool's result in a second batch. Tools weighs the
// step's tool; "bash" (a command in the sandbox) calls no lab route, and a
// submission pushes the workspace snapshot first, as submit_predictions
// does.
type Mix struct {
	Tools map[string]float64 `json:"tools"`
	// MultiSeed is the share of submissions that carry ResultSeeds seeds
	// (the others carry one).
	MultiSeed   float64 `json:"multi_seed"`
	ResultSeeds int     `json:"result_seeds"`
	// Bytes of the transcript events' data: the model's message, a tool
	// call's input and a tool's result.
	MessageBytes    int `json:"message_bytes"`
	ToolCallBytes   int `json:"tool_call_bytes"`
	ToolResultBytes int `json:"tool_result_bytes"`
	// CodeBytes is the workspace's code and notes, besides the prediction
	// files of the last submission.
	CodeBytes int `json:"code_bytes"`
}

// Tools a step may run (besides the lab kinds submit, validate,
// leaderboard, forum_sync, forum_search, forum_post, spend and snapshot).
const ToolBash = "bash"

// DefaultMix: four steps in ten run a command only; the rest call the lab.
func DefaultMix() Mix {
	return Mix{
		Tools: map[string]float64{
			ToolBash: 0.40, KindSubmit: 0.12, KindValidate: 0.06, KindLeaderboard: 0.08, KindForumSync: 0.08,
			KindForumSearch: 0.06, KindForumPost: 0.06, KindSpend: 0.08, KindSnapshot: 0.06,
		},
		MultiSeed: 0.25, ResultSeeds: 5,
		MessageBytes: 1500, ToolCallBytes: 600, ToolResultBytes: 4000, CodeBytes: 12 << 10,
	}
}

// Validate says which field is wrong.
func (m Mix) Validate() error {
	total := 0.0
	for tool, w := range m.Tools {
		if tool != ToolBash && !isToolKind(tool) {
			return fmt.Errorf("labsim: Mix.Tools: unknown tool %q (bash, submit, validate, leaderboard, forum_sync, forum_search, forum_post, spend, snapshot)", tool)
		}
		if w < 0 {
			return fmt.Errorf("labsim: Mix.Tools[%s] = %g: weights are ≥ 0", tool, w)
		}
		total += w
	}
	switch {
	case total <= 0:
		return errors.New("labsim: Mix.Tools: give at least one positive weight")
	case m.MultiSeed < 0 || m.MultiSeed > 1:
		return fmt.Errorf("labsim: Mix.MultiSeed %g: give a share from 0 to 1", m.MultiSeed)
	case m.ResultSeeds < 1 || m.ResultSeeds > 16:
		return fmt.Errorf("labsim: Mix.ResultSeeds %d: give 1 to 16", m.ResultSeeds)
	case m.MessageBytes < 0 || m.ToolCallBytes < 0 || m.ToolResultBytes < 0 || m.CodeBytes < 0:
		return errors.New("labsim: Mix byte sizes are ≥ 0")
	case max(m.MessageBytes, m.ToolCallBytes, m.ToolResultBytes) > 200<<10:
		return errors.New("labsim: Mix byte sizes: at most 200 KiB (the lab takes 256 KiB per transcript event)")
	}
	return nil
}

func isToolKind(k string) bool {
	for _, x := range Kinds {
		if x == k && k != KindControl && k != KindTranscript {
			return true
		}
	}
	return false
}

// researcher is one simulated worker: a token, a connection, a workspace,
// and the cursors a worker keeps.
type researcher struct {
	name, token, base string
	http              *http.Client
	rng               *rand.Rand
	mix               Mix
	tools             []string
	weights           []float64
	rows              int    // public test rows
	belief            []byte // the researcher's current predictions (class indexes)
	text              string // words its transcript events are cut from

	controlSince, forumSince int64
	lastSnapshot             string
	resultSub                string // a multi-seed submission not yet posted as a result
	code                     []byte // the workspace's code, edited each step
	preds                    map[string][]byte
	end                      time.Time

	stats   map[string]*kindLog
	steps   int64
	sent    Sent
	errText []string // the first few errors
}

// kindLog is one kind's latencies and errors as the researcher saw them.
type kindLog struct {
	ms     []float64
	errors int64
}

// Sent counts what the lab acknowledged to a researcher, to check against
// the ledger.
type Sent struct {
	TranscriptEvents int64 `json:"transcript_events"`
	Submissions      int64 `json:"submissions"`
	Snapshots        int64 `json:"snapshots"` // new ones (201)
	Findings         int64 `json:"findings"`
	Results          int64 `json:"results"` // findings of type result
}

func newResearcher(name, token string, client *http.Client, base string, rows int, mix Mix, rng *rand.Rand) *researcher {
	r := &researcher{name: name, token: token, base: base, http: client, rng: rng, mix: mix, rows: rows,
		stats: map[string]*kindLog{}, preds: map[string][]byte{}}
	for _, k := range Kinds {
		r.stats[k] = &kindLog{}
	}
	for _, tool := range append([]string{ToolBash}, Kinds...) {
		if w := mix.Tools[tool]; w > 0 {
			r.tools, r.weights = append(r.tools, tool), append(r.weights, w)
		}
	}
	r.belief = make([]byte, rows)
	for i := range r.belief {
		r.belief[i] = byte(rng.IntN(2))
	}
	var b strings.Builder
	for b.Len() < 64<<10 {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	r.text = b.String()
	r.code = []byte("# train.py\n" + r.cut(mix.CodeBytes))
	return r
}

// errStop ends a step when the run's time is up.
var errStop = errors.New("time is up")

// run takes steps until end; a request started before end completes.
func (r *researcher) run(ctx context.Context, end time.Time) {
	r.end = end
	for ctx.Err() == nil {
		if err := r.step(ctx); errors.Is(err, errStop) {
			return
		}
		r.steps++
	}
}

// step is one turn of the worker's loop. A failed request is counted and
// the step goes on, as a worker would report the error to its model.
func (r *researcher) step(ctx context.Context) error {
	var ctl struct {
		Next int64 `json:"next"`
	}
	if err := r.get(ctx, KindControl, "/v1/control?since="+strconv.FormatInt(r.controlSince, 10), &ctl); errors.Is(err, errStop) {
		return err
	} else if err == nil {
		r.controlSince = max(r.controlSince, ctl.Next)
	}
	tool := r.pick()
	if err := r.transcript(ctx, r.event("message", r.mix.MessageBytes, nil), r.usageEvent(),
		r.event("tool_call", r.mix.ToolCallBytes, map[string]any{"name": tool})); errors.Is(err, errStop) {
		return err
	}
	out, err := r.tool(ctx, tool)
	if errors.Is(err, errStop) {
		return err
	}
	out["name"], out["is_error"] = tool, err != nil
	return r.transcript(ctx, r.event("tool_result", r.mix.ToolResultBytes, out))
}

func (r *researcher) pick() string {
	total := 0.0
	for _, w := range r.weights {
		total += w
	}
	x := r.rng.Float64() * total
	for i, w := range r.weights {
		if x < w {
			return r.tools[i]
		}
		x -= w
	}
	return r.tools[len(r.tools)-1]
}

// tool runs one tool and returns what its transcript result links to.
func (r *researcher) tool(ctx context.Context, tool string) (map[string]any, error) {
	out := map[string]any{}
	switch tool {
	case ToolBash:
		r.edit()
		return out, nil
	case KindSubmit:
		seeds := 1
		if r.rng.Float64() < r.mix.MultiSeed {
			seeds = r.mix.ResultSeeds
		}
		body := map[string]any{"seeds": r.predictions(seeds), "note": "labsim " + r.name}
		if err := r.pushSnapshot(ctx); err != nil {
			return out, err
		}
		body["snapshot"] = r.lastSnapshot
		var resp struct {
			ID string `json:"id"`
		}
		if err := r.post(ctx, KindSubmit, "/v1/submissions", body, fmt.Sprintf("%s-%d", r.name, r.steps), &resp); err != nil {
			return out, err
		}
		r.sent.Submissions++
		if seeds >= lab.MinResultSeeds {
			r.resultSub = resp.ID
		}
		out["submission"], out["snapshot"] = resp.ID, r.lastSnapshot
		return out, nil
	case KindValidate:
		return out, r.post(ctx, KindValidate, "/v1/validate", map[string]any{"seeds": r.predictions(1)}, "", nil)
	case KindLeaderboard:
		return out, r.get(ctx, KindLeaderboard, "/v1/leaderboard", nil)
	case KindForumSync:
		for {
			var page struct {
				Next int64 `json:"next"`
			}
			if err := r.get(ctx, KindForumSync, fmt.Sprintf("/v1/findings?since=%d&limit=500", r.forumSince), &page); err != nil {
				return out, err
			}
			if page.Next == r.forumSince {
				return out, nil
			}
			r.forumSince = page.Next
		}
	case KindForumSearch:
		q := url.Values{"q": {words[r.rng.IntN(len(words))] + " " + words[r.rng.IntN(len(words))]}, "limit": {"20"}}
		return out, r.get(ctx, KindForumSearch, "/v1/findings/search?"+q.Encode(), nil)
	case KindForumPost:
		return out, r.postFinding(ctx, out)
	case KindSpend:
		return out, r.get(ctx, KindSpend, "/v1/spend", nil)
	case KindSnapshot:
		r.edit()
		err := r.pushSnapshot(ctx)
		out["snapshot"] = r.lastSnapshot
		return out, err
	}
	return out, fmt.Errorf("unknown tool %q", tool)
}

// postFinding shares a result when the researcher has a multi-seed
// submission not yet shared, else a hypothesis or an insight.
func (r *researcher) postFinding(ctx context.Context, out map[string]any) error {
	f := map[string]any{"title": "labsim: " + r.cut(60), "body": r.cut(1200), "family": forum.Families[r.rng.IntN(len(forum.Families))],
		"metrics": map[string]any{"steps": r.steps}}
	switch {
	case r.resultSub != "" && r.lastSnapshot != "":
		f["type"], f["submission"], f["snapshot"] = "result", r.resultSub, r.lastSnapshot
		f["card"] = map[string]any{"summary": r.cut(200), "pseudocode": r.cut(300), "inputs": []string{"weak labels", "strong representation"},
			"components": []map[string]string{{"name": "reweighting", "ablation": r.cut(100)}}}
	case r.rng.IntN(2) == 0:
		f["type"] = "hypothesis"
	default:
		f["type"] = "insight"
	}
	var resp struct {
		ID string `json:"id"`
	}
	if err := r.post(ctx, KindForumPost, "/v1/findings", f, fmt.Sprintf("%s-f%d", r.name, r.steps), &resp); err != nil {
		return err
	}
	r.sent.Findings++
	if f["type"] == "result" {
		r.sent.Results++
		r.resultSub = ""
	}
	out["finding"] = resp.ID
	return nil
}

// predictions are the researcher's belief with 5-20% of the rows changed,
// per seed, as arrays of class indexes in public test order. The last
// ones are kept as the workspace's prediction files.
func (r *researcher) predictions(seeds int) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, seeds)
	clear(r.preds)
	for s := range seeds {
		flip := 0.05 + 0.15*r.rng.Float64()
		var b bytes.Buffer
		b.WriteByte('[')
		for i, c := range r.belief {
			if r.rng.Float64() < flip {
				c = 1 - c
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('0' + c)
		}
		b.WriteByte(']')
		seed := strconv.Itoa(s + 1)
		out[seed] = b.Bytes()
		r.preds["preds/"+seed+".json"] = b.Bytes()
	}
	return out
}

// edit changes the workspace's code, as a step of research does.
func (r *researcher) edit() {
	line := fmt.Sprintf("lr = %.5f  # step %d\n", r.rng.Float64(), r.steps)
	if i := bytes.IndexByte(r.code, '\n'); i >= 0 {
		r.code = append(append([]byte{}, r.code[:i+1]...), append([]byte(line), r.code[i+1:]...)...)
	}
	if len(r.code) > 2*r.mix.CodeBytes+1024 {
		r.code = append([]byte("# train.py\n"), r.cut(r.mix.CodeBytes)...)
	}
}

// pushSnapshot pushes the workspace (code, notes and the last prediction
// files), child of the last snapshot.
func (r *researcher) pushSnapshot(ctx context.Context) error {
	files := []snapshot.File{{Path: "train.py", Mode: 0o644, Data: r.code}, {Path: "NOTES.md", Mode: 0o644, Data: []byte(r.name + "\n")}}
	for p, b := range r.preds {
		files = append(files, snapshot.File{Path: p, Mode: 0o644, Data: b})
	}
	_, archive, err := snapshot.FromFiles(files, snapshot.DefaultLimits())
	if err != nil {
		return fmt.Errorf("pack the workspace: %w", err)
	}
	path := "/v1/snapshots"
	if r.lastSnapshot != "" {
		path += "?parent=" + url.QueryEscape(r.lastSnapshot)
	}
	var meta struct {
		ID string `json:"id"`
	}
	status, err := r.do(ctx, KindSnapshot, "POST", path, "application/gzip", archive, "", &meta)
	if err != nil {
		return err
	}
	if status == http.StatusCreated {
		r.sent.Snapshots++
	}
	r.lastSnapshot = meta.ID
	return nil
}

// transcript appends one batch.
func (r *researcher) transcript(ctx context.Context, events ...map[string]any) error {
	if err := r.post(ctx, KindTranscript, "/v1/transcripts", map[string]any{"events": events}, "", nil); err != nil {
		return err
	}
	r.sent.TranscriptEvents += int64(len(events))
	return nil
}

func (r *researcher) event(typ string, n int, data map[string]any) map[string]any {
	if data == nil {
		data = map[string]any{}
	}
	switch typ {
	case "message":
		data["role"] = "assistant"
		data["parts"] = []map[string]string{{"kind": "text", "text": r.cut(n)}}
	case "tool_call":
		data["input"] = r.cut(n)
	default:
		data["text"] = r.cut(n)
	}
	return map[string]any{"session": "s1", "type": typ, "data": data}
}

func (r *researcher) usageEvent() map[string]any {
	in := 20000 + r.rng.IntN(60000)
	return map[string]any{"session": "s1", "type": "usage", "data": map[string]string{"model": "labsim"},
		"usage":    map[string]int{"input_tokens": in, "output_tokens": 200 + r.rng.IntN(800), "cache_read_tokens": in * 3 / 4},
		"cost_usd": float64(in) * 3e-6}
}

// cut is about n bytes of the researcher's words from a random place.
func (r *researcher) cut(n int) string {
	if n <= 0 {
		return ""
	}
	n = min(n, len(r.text)/2)
	i := r.rng.IntN(len(r.text) - n)
	return r.text[i : i+n]
}

func (r *researcher) get(ctx context.Context, kind, path string, out any) error {
	_, err := r.do(ctx, kind, "GET", path, "", nil, "", out)
	return err
}

func (r *researcher) post(ctx context.Context, kind, path string, body any, idemKey string, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = r.do(ctx, kind, "POST", path, "application/json", b, idemKey, out)
	return err
}

// do sends one request and logs its latency and outcome under kind; it
// returns errStop, sending nothing, once the run's time is up.
func (r *researcher) do(ctx context.Context, kind, method, path, contentType string, body []byte, idemKey string, out any) (int, error) {
	if !time.Now().Before(r.end) {
		return 0, errStop
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	log := r.stats[kind]
	start := time.Now()
	resp, err := r.http.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
		case resp.StatusCode >= 400:
			err = fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 300)]))
		case out != nil:
			err = json.Unmarshal(b, out)
		}
	}
	log.ms = append(log.ms, msOf(time.Since(start)))
	if err != nil {
		log.errors++
		if len(r.errText) < 3 {
			r.errText = append(r.errText, fmt.Sprintf("%s %s: %v", r.name, kind, err))
		}
		return 0, err
	}
	return resp.StatusCode, nil
}

// words make the transcript, finding and code text (and the forum's
// search terms), so full-text search has something to find.
var words = strings.Fields(`weak strong label labels teacher student confidence threshold loss entropy
	ensemble seed seeds agreement filter reweight calibration temperature margin noise noisy clean
	bootstrap distill distillation curriculum epoch epochs learning rate regularization dropout
	accuracy gap recovered transfer ceiling baseline holdout feedback split subset ood prompt
	representation probe linear logistic gradient batch schedule warmup cosine ablation variance
	hypothesis result insight error majority vote soft hard pseudo relabel consistency augmentation`)
