package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
)

// Forum ledger events.
const (
	evFinding = "finding.posted"
	evComment = "finding.commented"
	evVote    = "finding.voted"
)

// Limits of forum input.
const (
	maxTitle = 200
	maxBody  = 100 << 10
	maxJSON  = 64 << 10
)

// MinResultSeeds is how many seeds a result's submission must carry.
const MinResultSeeds = 5

// ClaimTolerance is how far a result's claimed PGR may be from the released
// one before the lab refuses it.
const ClaimTolerance = 0.01

// Inputs a method card may name.
var cardInputs = []string{"weak labels", "strong representation", "test inputs"}

func (l *Lab) forumStore() (forum.Store, error) {
	if l.cfg.Forum == nil {
		return nil, publicErr(503, "forum_unavailable", "this lab runs without a forum store")
	}
	return l.cfg.Forum, nil
}

// PostFinding validates and stores a finding of the researcher's campaign.
// A result must cite one of the campaign's submissions with at least
// MinResultSeeds seeds and a snapshot, and carry a complete method card; the
// lab records the submission's released figures in the metrics and refuses
// a claimed PGR that disagrees with them.
func (l *Lab) PostFinding(ctx context.Context, id *Identity, f forum.Finding) (*forum.Finding, error) {
	stored, _, err := l.PostFindingIdem(ctx, id, f, "")
	return stored, err
}

// MaxFindingKey bounds a finding's Idempotency-Key.
const MaxFindingKey = 128

// findingIdem is what an idempotency key of a finding made: the finding,
// its ledger seq and the SHA-256 of the request it answered.
type findingIdem struct {
	ID      string
	Seq     int64
	Request string
}

// findingEvent is the ledger body of a posted finding: the finding, and
// the idempotency key with the request's hash when one was given.
type findingEvent struct {
	forum.Finding
	IdemKey string `json:"idempotency_key,omitempty"`
	Request string `json:"request_sha256,omitempty"`
}

func findingIdemKey(campaign, author, key string) string {
	return campaign + "\x00" + author + "\x00" + key
}

// findingRequestHash identifies a finding request's content: what the
// researcher sent, without the fields the lab fills.
func findingRequestHash(f forum.Finding) string {
	f.ID, f.Seq, f.Campaign, f.Author, f.At, f.Score, f.Comments = "", 0, "", "", time.Time{}, 0, 0
	for _, raw := range []*json.RawMessage{&f.Metrics, &f.Config} {
		var buf bytes.Buffer
		if json.Compact(&buf, *raw) == nil {
			*raw = buf.Bytes()
		}
	}
	b, _ := json.Marshal(f)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// applyFindingLocked indexes a finding's idempotency key (live or
// replayed).
func (l *Lab) applyFindingLocked(e store.Event) {
	var b struct {
		ID      string `json:"id"`
		Author  string `json:"author"`
		IdemKey string `json:"idempotency_key"`
		Request string `json:"request_sha256"`
	}
	if json.Unmarshal(e.Body, &b) != nil || b.IdemKey == "" {
		return
	}
	k := findingIdemKey(e.Campaign, b.Author, b.IdemKey)
	if _, ok := l.findingIdem[k]; !ok {
		l.findingIdem[k] = findingIdem{ID: b.ID, Seq: e.Seq, Request: b.Request}
	}
}

// PostFindingIdem is PostFinding with an idempotency key (may be empty):
// the same researcher posting the same request with the same key gets the
// stored finding back (replayed true) and nothing new is stored; the same
// key with a different request is refused (409 idempotency_conflict).
func (l *Lab) PostFindingIdem(ctx context.Context, id *Identity, f forum.Finding, key string) (*forum.Finding, bool, error) {
	if id.Role != RoleResearcher {
		return nil, false, publicErr(403, "forbidden", "findings are posted with researcher tokens")
	}
	fs, err := l.forumStore()
	if err != nil {
		return nil, false, err
	}
	if f.Campaign != "" && f.Campaign != id.Campaign {
		return nil, false, publicErr(403, "wrong_campaign", "a researcher posts only to the campaign of their token")
	}
	if key != "" && !validLabel(key, MaxFindingKey) {
		return nil, false, publicErr(400, "invalid_request", fmt.Sprintf("Idempotency-Key: give 1-%d printable characters", MaxFindingKey))
	}
	reqHash := ""
	if key != "" {
		reqHash = findingRequestHash(f)
		if prev, ok, err := l.findingReplay(ctx, id, key, reqHash); ok || err != nil {
			return prev, ok, err
		}
	}
	f.Campaign, f.Author = id.Campaign, id.Researcher
	if err := l.checkFinding(id, &f); err != nil {
		return nil, false, err
	}
	f.ID = "fnd_" + strings.TrimPrefix(newToken(), "aar_")[:16]
	f.At = l.cfg.Now().UTC()
	l.mu.Lock()
	if key != "" {
		if _, ok := l.findingIdem[findingIdemKey(id.Campaign, id.Researcher, key)]; ok {
			// A concurrent request with the key got there first.
			l.mu.Unlock()
			return l.findingReplay(ctx, id, key, reqHash)
		}
	}
	evs, err := l.append(ctx, store.Input{Kind: evFinding, Actor: id.Researcher, Campaign: id.Campaign,
		Body: findingEvent{Finding: f, IdemKey: key, Request: reqHash}})
	if err == nil {
		l.applyLocked(evs[0])
	}
	l.mu.Unlock()
	if err != nil {
		return nil, false, err
	}
	stored, err := fs.Add(ctx, f)
	if errors.Is(err, forum.ErrDuplicate) && key != "" {
		// A concurrent retry with the key stored it from the ledger first.
		stored, _, err = fs.Get(ctx, f.Campaign, f.ID)
	}
	if err != nil {
		return nil, false, err
	}
	return &stored, false, nil
}

// findingReplay answers a finding request whose key was used before: the
// stored finding (true), or 409 when the request differs; false when the
// key is new. A finding the ledger has but the forum store lacks (the
// first request failed between the two writes) is stored now.
func (l *Lab) findingReplay(ctx context.Context, id *Identity, key, reqHash string) (*forum.Finding, bool, error) {
	l.mu.Lock()
	prev, ok := l.findingIdem[findingIdemKey(id.Campaign, id.Researcher, key)]
	l.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	if prev.Request != reqHash {
		return nil, false, publicErr(409, "idempotency_conflict", "this Idempotency-Key was used for a different finding: use a new key for new content")
	}
	fs, err := l.forumStore()
	if err != nil {
		return nil, false, err
	}
	stored, _, err := fs.Get(ctx, id.Campaign, prev.ID)
	if errors.Is(err, forum.ErrNotFound) {
		var ev findingEvent
		err = l.ledger.ScanRange(ctx, prev.Seq, prev.Seq, func(e store.Event) error {
			return json.Unmarshal(e.Body, &ev)
		})
		if err != nil {
			return nil, false, fmt.Errorf("finding %s at ledger seq %d: %w", prev.ID, prev.Seq, err)
		}
		if stored, err = fs.Add(ctx, ev.Finding); errors.Is(err, forum.ErrDuplicate) {
			stored, _, err = fs.Get(ctx, id.Campaign, prev.ID)
		}
	}
	if err != nil {
		return nil, false, err
	}
	return &stored, true, nil
}

func (l *Lab) checkFinding(id *Identity, f *forum.Finding) error {
	bad := func(code, format string, args ...any) error {
		return publicErr(400, code, fmt.Sprintf(format, args...))
	}
	if !slices.Contains(forum.Types, f.Type) {
		return bad("invalid_finding", "type %q: use result, hypothesis, insight or error", f.Type)
	}
	f.Title = strings.TrimSpace(f.Title)
	if f.Title == "" || utf8.RuneCountInString(f.Title) > maxTitle || !utf8.ValidString(f.Body) || len(f.Body) > maxBody {
		return bad("invalid_finding", "give a title of 1-%d characters and a UTF-8 markdown body of at most %d bytes", maxTitle, maxBody)
	}
	if !slices.Contains(forum.Families, f.Family) {
		return bad("invalid_finding", "family %q: use one of %s", f.Family, strings.Join(forum.Families, ", "))
	}
	for name, raw := range map[string]json.RawMessage{"metrics": f.Metrics, "config": f.Config} {
		if len(raw) == 0 {
			continue
		}
		var obj map[string]any
		if len(raw) > maxJSON || json.Unmarshal(raw, &obj) != nil || obj == nil {
			return bad("invalid_finding", "%s must be a JSON object of at most %d bytes", name, maxJSON)
		}
	}
	if f.Snapshot != "" {
		if _, err := l.snapshotFor(id, f.Snapshot); err != nil {
			return err
		}
	}
	if f.Type != forum.TypeResult {
		return nil
	}
	// A result: submission, snapshot, card.
	if f.Submission == "" || f.Snapshot == "" {
		return bad("result_incomplete", "a result cites a submission (with at least %d seeds) and a snapshot", MinResultSeeds)
	}
	l.mu.Lock()
	sub := l.submissions[f.Submission]
	l.mu.Unlock()
	if sub == nil || sub.Campaign != id.Campaign {
		return publicErr(404, "unknown_submission", fmt.Sprintf("no submission %q in your campaign", f.Submission))
	}
	if len(sub.Seeds) < MinResultSeeds {
		return bad("result_incomplete", "submission %s carries %d seed(s): a result needs at least %d", sub.ID, len(sub.Seeds), MinResultSeeds)
	}
	c := f.Card
	if c == nil || strings.TrimSpace(c.Summary) == "" || strings.TrimSpace(c.Pseudocode) == "" || len(c.Components) == 0 || len(c.Inputs) == 0 {
		return bad("result_incomplete", "a result needs a method card: summary, pseudocode, each component with its ablation, and the inputs it uses")
	}
	for _, comp := range c.Components {
		if strings.TrimSpace(comp.Name) == "" || strings.TrimSpace(comp.Ablation) == "" {
			return bad("result_incomplete", "every component of the method card needs a name and the ablation showing it matters")
		}
	}
	for _, in := range c.Inputs {
		if !slices.Contains(cardInputs, in) {
			return bad("result_incomplete", "method card input %q: use %s", in, strings.Join(cardInputs, ", "))
		}
	}
	// The lab's numbers: the submission's released figures.
	released := map[string]any{}
	if sub.Feedback != nil {
		for _, cell := range sub.Feedback.Cells {
			if cell.PGR != nil {
				released["pgr_"+cell.Group] = map[string]any{"mean": cell.PGR.Mean, "se": cell.PGR.SE, "seeds": cell.PGR.N}
			}
		}
	}
	var claimed map[string]any
	if len(f.Metrics) > 0 {
		_ = json.Unmarshal(f.Metrics, &claimed)
	}
	if claimed == nil {
		claimed = map[string]any{}
	}
	if v, ok := claimed["pgr"].(float64); ok {
		rel, _ := released["pgr_"+testbed.GroupOverall].(map[string]any)
		if rel == nil || math.Abs(v-rel["mean"].(float64)) > ClaimTolerance {
			shown := "none released"
			if rel != nil {
				shown = fmt.Sprintf("%.3f ± %.3f over %v seeds", rel["mean"], rel["se"], rel["seeds"])
			}
			return bad("claim_disagrees", "claimed PGR %.3f disagrees with submission %s's released PGR (%s)", v, sub.ID, shown)
		}
	}
	claimed["released"] = released
	b, _ := json.Marshal(claimed)
	f.Metrics = b
	return nil
}

// ListFindings pages a campaign's findings by cursor.
func (l *Lab) ListFindings(ctx context.Context, id *Identity, campaign string, since int64, limit int) (forum.Page, error) {
	fs, err := l.forumStore()
	if err != nil {
		return forum.Page{}, err
	}
	return fs.List(ctx, l.campaignFor(id, campaign), since, limit)
}

// campaignFor is the campaign a caller reads: a researcher's own; an
// admin's choice.
func (l *Lab) campaignFor(id *Identity, campaign string) string {
	if id.Role == RoleAdmin && campaign != "" {
		return campaign
	}
	return id.Campaign
}

// GetFinding returns a finding and its comments.
func (l *Lab) GetFinding(ctx context.Context, id *Identity, campaign, fid string) (map[string]any, error) {
	fs, err := l.forumStore()
	if err != nil {
		return nil, err
	}
	f, comments, err := fs.Get(ctx, l.campaignFor(id, campaign), fid)
	if errors.Is(err, forum.ErrNotFound) {
		return nil, publicErr(404, "unknown_finding", "no such finding in your campaign")
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"finding": f, "comments": comments}, nil
}

// SearchFindings runs a full-text query over a campaign's findings.
func (l *Lab) SearchFindings(ctx context.Context, id *Identity, campaign, q string, limit int) ([]forum.Finding, error) {
	fs, err := l.forumStore()
	if err != nil {
		return nil, err
	}
	return fs.Search(ctx, l.campaignFor(id, campaign), q, limit)
}

// CommentFinding adds a comment.
func (l *Lab) CommentFinding(ctx context.Context, id *Identity, fid, body string) (*forum.Comment, error) {
	fs, err := l.forumStore()
	if err != nil {
		return nil, err
	}
	body = strings.TrimSpace(body)
	if body == "" || len(body) > maxBody || !utf8.ValidString(body) {
		return nil, publicErr(400, "invalid_comment", fmt.Sprintf("give a UTF-8 comment of 1-%d bytes", maxBody))
	}
	if _, _, err := fs.Get(ctx, id.Campaign, fid); err != nil {
		if errors.Is(err, forum.ErrNotFound) {
			return nil, publicErr(404, "unknown_finding", "no such finding in your campaign")
		}
		return nil, err
	}
	c := forum.Comment{ID: "cmt_" + strings.TrimPrefix(newToken(), "aar_")[:16], Finding: fid, Author: id.Researcher, Body: body, At: l.cfg.Now().UTC()}
	l.mu.Lock()
	_, err = l.append(ctx, store.Input{Kind: evComment, Actor: id.Researcher, Campaign: id.Campaign, Body: c})
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	stored, err := fs.Comment(ctx, id.Campaign, c)
	if err != nil {
		return nil, err
	}
	return &stored, nil
}

// VoteFinding records one up or down vote per researcher per finding.
func (l *Lab) VoteFinding(ctx context.Context, id *Identity, fid string, value int) error {
	fs, err := l.forumStore()
	if err != nil {
		return err
	}
	if value != 1 && value != -1 {
		return publicErr(400, "invalid_vote", "vote 1 (up) or -1 (down)")
	}
	if id.Role != RoleResearcher {
		return publicErr(403, "forbidden", "researchers vote")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := fs.Vote(ctx, id.Campaign, fid, id.Researcher, value); err != nil {
		switch {
		case errors.Is(err, forum.ErrNotFound):
			return publicErr(404, "unknown_finding", "no such finding in your campaign")
		case errors.Is(err, forum.ErrDuplicate):
			return publicErr(409, "duplicate_vote", "you have already voted on this finding")
		}
		return err
	}
	_, err = l.append(ctx, store.Input{Kind: evVote, Actor: id.Researcher, Campaign: id.Campaign,
		Body: map[string]any{"finding": fid, "value": value}})
	return err
}
