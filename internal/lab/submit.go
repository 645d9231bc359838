package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
)

// MaxSeeds bounds the seeds of one submission.
const MaxSeeds = 16

// SubmitRequest is the body of POST /v1/submissions and /v1/validate.
// Seeds maps a seed name to its predictions: a JSON array of class indexes
// in the public test.jsonl's order, or an array of {"id", "label"} objects.
// Predictions alone is shorthand for one seed named "0".
type SubmitRequest struct {
	Seeds       map[string]json.RawMessage `json:"seeds"`
	Predictions json.RawMessage            `json:"predictions,omitempty"`
	// Testbed, when given, must be the campaign's.
	Testbed  string `json:"testbed,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Note     string `json:"note,omitempty"`
}

// SubmitResponse is what a researcher gets back.
type SubmitResponse struct {
	ID       string          `json:"id"`
	Feedback *score.Feedback `json:"feedback"`
	// Withheld says the score is held from the leaderboard until review.
	Withheld bool   `json:"withheld_from_leaderboard,omitempty"`
	Replayed bool   `json:"replayed,omitempty"`
	Ledger   string `json:"ledger_head"`
}

// parseSeeds validates every seed's predictions against the testbed.
func parseSeeds(tb *testbed.Testbed, req *SubmitRequest) ([]score.Predictions, []byte, error) {
	if req.Testbed != "" && req.Testbed != tb.Manifest.Name {
		return nil, nil, publicErr(400, "wrong_testbed", fmt.Sprintf("this campaign scores testbed %q, not %q", tb.Manifest.Name, req.Testbed))
	}
	seeds := req.Seeds
	if len(req.Predictions) > 0 {
		if len(seeds) > 0 {
			return nil, nil, publicErr(400, "invalid_request", `give "seeds" or "predictions", not both`)
		}
		seeds = map[string]json.RawMessage{"0": req.Predictions}
	}
	if len(seeds) == 0 {
		return nil, nil, publicErr(400, "invalid_request", `no predictions: give "seeds": {"42": [...]} or "predictions": [...]`)
	}
	if len(seeds) > MaxSeeds {
		return nil, nil, publicErr(400, "too_many_seeds", fmt.Sprintf("%d seeds: give at most %d per submission", len(seeds), MaxSeeds))
	}
	names := make([]string, 0, len(seeds))
	for n := range seeds {
		if n == "" || len(n) > 64 {
			return nil, nil, publicErr(400, "invalid_request", "seed names must be 1-64 characters")
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var out []score.Predictions
	// Canonical form: each seed's class indexes in public test order, one
	// byte each (testbeds have at most 256 classes), base64.
	canon := map[string]string{}
	public := tb.PublicTest()
	for _, n := range names {
		raw := bytes.TrimSpace(seeds[n])
		body := raw
		// An array of objects becomes JSONL for the parser.
		if inner := bytes.TrimSpace(bytes.TrimPrefix(raw, []byte("["))); bytes.HasPrefix(raw, []byte("[")) && bytes.HasPrefix(inner, []byte("{")) {
			var objs []json.RawMessage
			if json.Unmarshal(raw, &objs) == nil {
				parts := make([][]byte, len(objs))
				for i, o := range objs {
					parts[i] = o
				}
				body = bytes.Join(parts, []byte("\n"))
			}
		}
		p, err := score.ParsePublicPredictions("seed "+n, n, bytes.NewReader(body), tb)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, p)
		row := make([]byte, len(public))
		for i, r := range public {
			row[i] = byte(p.Labels[r.ID])
		}
		canon[n] = base64.StdEncoding.EncodeToString(row)
	}
	b, _ := json.Marshal(canon)
	return out, b, nil
}

// Validate checks a submission without scoring or counting it.
func (l *Lab) Validate(ctx context.Context, id *Identity, req *SubmitRequest) (map[string]any, error) {
	c, tb, err := l.campaignOf(id)
	if err != nil {
		return nil, err
	}
	preds, _, err := parseSeeds(tb, req)
	if err != nil {
		return nil, err
	}
	if _, err := score.Score(tb, preds, []string{testbed.SplitFeedback}); err != nil {
		return nil, err
	}
	return map[string]any{"ok": true, "campaign": c.ID, "testbed": c.Testbed, "seeds": len(preds), "rows": len(tb.PublicTest())}, nil
}

func (l *Lab) campaignOf(id *Identity) (*Campaign, *testbed.Testbed, error) {
	if id.Role != RoleResearcher {
		return nil, nil, publicErr(403, "forbidden", "submissions come from researcher tokens")
	}
	l.mu.Lock()
	c := l.campaigns[id.Campaign]
	l.mu.Unlock()
	if c == nil {
		return nil, nil, publicErr(404, "unknown_campaign", "the token's campaign does not exist")
	}
	tb, err := l.testbedFor(c.Testbed)
	if err != nil {
		return nil, nil, err
	}
	return c, tb, nil
}

func (l *Lab) researcherLock(name string) func() {
	l.mu.Lock()
	m := l.submitLocks[name]
	if m == nil {
		m = new(sync.Mutex)
		l.submitLocks[name] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// Submit validates, scores and records a submission, and returns what the
// campaign's policy lets the researcher see. A retry with the same
// idempotency key returns the first answer and is not counted again.
func (l *Lab) Submit(ctx context.Context, id *Identity, req *SubmitRequest, idemKey string) (*SubmitResponse, error) {
	c, tb, err := l.campaignOf(id)
	if err != nil {
		return nil, err
	}
	unlock := l.researcherLock(id.Researcher)
	defer unlock()
	if idemKey != "" {
		if len(idemKey) > 200 {
			return nil, publicErr(400, "invalid_request", "Idempotency-Key is longer than 200 characters")
		}
		l.mu.Lock()
		prev := l.submissions[l.idem[id.Researcher+"\x00"+idemKey]]
		l.mu.Unlock()
		if prev != nil {
			return l.response(ctx, prev, true), nil
		}
	}
	reject := func(perr *PublicError) error {
		_, _ = l.append(ctx, store.Input{Kind: evRejected, Actor: id.Researcher, Campaign: c.ID,
			Body: map[string]any{"code": perr.Code, "status": perr.Status, "reason": perr.Message}})
		return perr
	}
	preds, canon, err := parseSeeds(tb, req)
	if err != nil {
		return nil, reject(asPublic(err))
	}
	if req.Snapshot != "" {
		if _, err := l.snapshotFor(id, req.Snapshot); err != nil {
			return nil, reject(asPublic(err))
		}
	}
	rep, err := score.Score(tb, preds, nil)
	if err != nil {
		return nil, reject(asPublic(err))
	}
	now := l.cfg.Now().UTC()
	l.mu.Lock()
	q := l.quota(c)
	l.mu.Unlock()
	if ok, retry := q.Allow(c.ID, id.Researcher, now); !ok {
		pe := publicErr(429, "quota_exceeded", fmt.Sprintf("the campaign's quota (%d per researcher, %d per campaign, per hour) is used up", c.Quota.PerResearcherPerHour, c.Quota.PerCampaignPerHour))
		pe.RetryAfter = int(retry.Seconds()) + 1
		return nil, reject(pe)
	}
	var fb *score.Feedback
	switch c.Policy {
	case score.PolicyAnchor:
		fb, err = score.AnchorFeedback(tb, preds)
	case score.PolicyLadder:
		l.mu.Lock()
		st := *l.ladder(c.ID, id.Researcher)
		l.mu.Unlock()
		fb, err = score.LadderFeedback(tb, preds, l.ditherer(c.ID), &st)
	default:
		fb, err = score.FeedbackFor(tb, preds, l.ditherer(c.ID))
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(canon)
	predSum := hex.EncodeToString(sum[:])
	subID := newSubmissionID(now)
	flags := l.detector.Check(tb, c.ID, id.Researcher, subID, preds[0])
	s := &Submission{ID: subID, Campaign: c.ID, Researcher: id.Researcher, Testbed: c.Testbed, Snapshot: req.Snapshot,
		Note: req.Note, IdemKey: idemKey, PredSHA256: predSum, Predictions: canon, Report: rep, Feedback: fb, Flags: flags, At: now}
	for _, p := range preds {
		s.Seeds = append(s.Seeds, p.Seed)
	}
	l.mu.Lock()
	evs, err := l.append(ctx, store.Input{Kind: evAccepted, Actor: id.Researcher, Campaign: c.ID, Body: s})
	if err == nil {
		s.Seq, s.Predictions = evs[0].Seq, nil
		l.acceptLocked(s)
	}
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	l.log.Info("submission accepted", "id", subID, "campaign", c.ID, "researcher", id.Researcher, "seeds", len(preds), "flags", len(flags))
	return l.response(ctx, l.submissionByID(subID), false), nil
}

func (l *Lab) submissionByID(id string) *Submission {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.submissions[id]
}

func (l *Lab) response(ctx context.Context, s *Submission, replayed bool) *SubmitResponse {
	return &SubmitResponse{ID: s.ID, Feedback: s.Feedback, Withheld: len(s.Flags) > 0 && s.Review != "cleared", Replayed: replayed, Ledger: l.Head(ctx)}
}

func newSubmissionID(now time.Time) string {
	tok := strings.TrimPrefix(newToken(), "aar_")
	return "sub_" + now.Format("20060102T150405") + "_" + tok[:10]
}
