package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/stats"
	"github.com/aar-lab/aar/internal/store"
)

// The admin's view of campaigns for a supervisor (aar run): the campaign
// file it was made from, its researchers with their control state, counts,
// best released figure and spend, every submission with its full report,
// and the campaign's ledger events as NDJSON.

// MaxSpec bounds a campaign's spec (the campaign file), compacted.
const MaxSpec = 1 << 20

// checkSpec validates a campaign spec and returns it compacted with its
// SHA-256 (hex); an absent or null spec is nil and "".
func checkSpec(spec json.RawMessage) (json.RawMessage, string, error) {
	t := bytes.TrimSpace(spec)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, "", nil
	}
	var buf bytes.Buffer
	if t[0] != '{' || json.Compact(&buf, t) != nil {
		return nil, "", publicErr(400, "invalid_spec", "spec must be a JSON object (the campaign file)")
	}
	if buf.Len() > MaxSpec {
		return nil, "", publicErr(400, "invalid_spec", fmt.Sprintf("spec is %d bytes compacted: the limit is %d (1 MiB)", buf.Len(), MaxSpec))
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}

// marshalRaw encodes v for a ledger body without HTML escaping, so raw JSON
// it carries (a spec, a config) reads back byte for byte on replay.
func marshalRaw(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// CampaignInfo is a campaign as an admin lists it.
type CampaignInfo struct {
	ID          string           `json:"id"`
	Testbed     string           `json:"testbed"`
	Policy      string           `json:"policy"`
	Quota       QuotaSpec        `json:"quota"`
	Created     time.Time        `json:"created"`
	Spec        json.RawMessage  `json:"spec"`
	SpecSHA256  string           `json:"spec_sha256"`
	Stopped     bool             `json:"stopped"`
	Researchers []ResearcherInfo `json:"researchers"`
}

// ResearcherInfo is one researcher of a campaign: one with a token in it or
// added by an "add" control event. Submissions counts accepted submissions;
// BestFeedbackPGR is the best released overall feedback PGR mean among
// them (disqualified ones aside), nil when none has one.
type ResearcherInfo struct {
	Name            string   `json:"name"`
	State           string   `json:"state"`
	Submissions     int      `json:"submissions"`
	BestFeedbackPGR *float64 `json:"best_feedback_pgr"`
	Spend           Spend    `json:"spend"`
}

// Campaigns lists every campaign, oldest first (admin).
func (l *Lab) Campaigns() []CampaignInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]CampaignInfo, 0, len(l.campaigns))
	for id := range l.campaigns {
		out = append(out, l.campaignInfoLocked(id))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// CampaignInfoOf returns one campaign (admin).
func (l *Lab) CampaignInfoOf(id string) (*CampaignInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.campaigns[id] == nil {
		return nil, unknownCampaign(id)
	}
	ci := l.campaignInfoLocked(id)
	return &ci, nil
}

func unknownCampaign(id string) error {
	return publicErr(404, "unknown_campaign", fmt.Sprintf("campaign %q does not exist", id))
}

func (l *Lab) campaignInfoLocked(id string) CampaignInfo {
	c := l.campaigns[id]
	ci := CampaignInfo{ID: c.ID, Testbed: c.Testbed, Policy: c.Policy, Quota: c.Quota, Created: c.Created,
		Spec: c.Spec, SpecSHA256: c.SpecSHA256, Stopped: c.Stopped, Researchers: []ResearcherInfo{}}
	type tally struct {
		n    int
		best *float64
	}
	tallies := map[string]*tally{}
	for _, name := range l.researchersLocked(id) {
		tallies[name] = &tally{}
	}
	for _, s := range l.submissions {
		t := tallies[s.Researcher]
		if s.Campaign != id || t == nil {
			continue
		}
		t.n++
		if s.Review == "disqualified" {
			continue
		}
		if p := releasedPGR(s.Feedback); p != nil && (t.best == nil || p.Mean > *t.best) {
			m := p.Mean
			t.best = &m
		}
	}
	for name, t := range tallies {
		ci.Researchers = append(ci.Researchers, ResearcherInfo{Name: name, State: l.stateLocked(id, name),
			Submissions: t.n, BestFeedbackPGR: t.best, Spend: l.spendLocked(id, name)})
	}
	sort.Slice(ci.Researchers, func(i, j int) bool { return ci.Researchers[i].Name < ci.Researchers[j].Name })
	return ci
}

// researchersLocked names a campaign's researchers: every one with a token
// in it (revoked too) and every one an "add" control event named.
func (l *Lab) researchersLocked(campaign string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, tok := range l.tokens {
		if tok.Role == RoleResearcher && tok.Campaign == campaign {
			add(tok.Researcher)
		}
	}
	if cc := l.control[campaign]; cc != nil {
		for name := range cc.added {
			add(name)
		}
	}
	return out
}

// SubmissionInfo is a submission as an admin lists it: no predictions.
type SubmissionInfo struct {
	ID         string          `json:"id"`
	Researcher string          `json:"researcher"`
	At         time.Time       `json:"at"`
	Seeds      int             `json:"seeds"`
	Snapshot   string          `json:"snapshot"`
	Note       string          `json:"note"`
	Review     string          `json:"review"`
	Flags      []score.Flag    `json:"flags"`
	Feedback   *score.Feedback `json:"feedback"`
	Cells      []CellInfo      `json:"cells"`
	// Verification is the board mark (verified, flagged, unverifiable,
	// unverified); Verify the latest verification's summary, if any.
	Verification string       `json:"verification"`
	Verify       *VerifyBrief `json:"verify,omitempty"`
}

// VerifyBrief is a verification as a submission list shows it.
type VerifyBrief struct {
	ID       string         `json:"id"`
	Verdict  string         `json:"verdict"`
	Flags    []VerifyFlag   `json:"flags,omitempty"`
	Labels   []string       `json:"labels,omitempty"`
	Sealed   *stats.Summary `json:"sealed_pgr,omitempty"`
	SealedLo *float64       `json:"sealed_pgr_lo,omitempty"`
	SealedHi *float64       `json:"sealed_pgr_hi,omitempty"`
	Claimed  *float64       `json:"claimed_pgr,omitempty"`
	Summary  []string       `json:"summary,omitempty"` // one line per check
}

// Brief summarises v.
func (v *Verification) Brief() *VerifyBrief {
	b := &VerifyBrief{ID: v.ID, Verdict: v.Verdict, Flags: v.Flags, Labels: v.Labels, Sealed: v.Sealed, SealedLo: v.SealedLo, SealedHi: v.SealedHi, Claimed: v.Claimed}
	for _, c := range v.Checks {
		b.Summary = append(b.Summary, c.Check+" ("+c.Status+"): "+c.Summary)
	}
	return b
}

// CellInfo is one cell of a submission's full report (feedback, holdout
// and, where the testbed has them, sealed rows).
type CellInfo struct {
	Split    string         `json:"split"`
	Group    string         `json:"group"`
	Rows     int            `json:"rows"`
	Accuracy *stats.Summary `json:"accuracy"`
	PGR      *stats.Summary `json:"pgr"`
}

// CampaignSubmissions lists a campaign's accepted submissions in ledger
// order with their full reports (admin).
func (l *Lab) CampaignSubmissions(campaign string) ([]SubmissionInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.campaigns[campaign] == nil {
		return nil, unknownCampaign(campaign)
	}
	var subs []*Submission
	for _, s := range l.submissions {
		if s.Campaign == campaign {
			subs = append(subs, s)
		}
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].Seq < subs[j].Seq })
	out := make([]SubmissionInfo, 0, len(subs))
	for _, s := range subs {
		si := SubmissionInfo{ID: s.ID, Researcher: s.Researcher, At: s.At, Seeds: len(s.Seeds), Snapshot: s.Snapshot,
			Note: s.Note, Review: s.Review, Flags: s.Flags, Feedback: s.Feedback, Cells: []CellInfo{}}
		if si.Flags == nil {
			si.Flags = []score.Flag{}
		}
		mark, v := l.verifyMarkLocked(s.ID)
		si.Verification = mark
		if v != nil {
			si.Verify = v.Brief()
		}
		if s.Report != nil {
			for _, c := range s.Report.Cells {
				si.Cells = append(si.Cells, CellInfo{Split: c.Split, Group: c.Group, Rows: c.Rows, Accuracy: c.Accuracy, PGR: c.PGR})
			}
		}
		out = append(out, si)
	}
	return out, nil
}

// ExportEvent is one line of a campaign's event export.
type ExportEvent struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Kind     string          `json:"kind"`
	Actor    string          `json:"actor"`
	Campaign string          `json:"campaign"`
	Body     json.RawMessage `json:"body"`
	Hash     string          `json:"hash"`
}

// exportChunk is how many ledger seqs one bounded scan of an export reads.
const exportChunk = 4096

// ExportEvents writes a campaign's ledger events with seq > since as NDJSON
// (one ExportEvent a line), at most limit of them (0: all), up to the head
// at the call. Events of other campaigns and the lab's own are skipped.
func (l *Lab) ExportEvents(ctx context.Context, campaign string, since int64, limit int, w io.Writer) error {
	l.mu.Lock()
	known := l.campaigns[campaign] != nil
	l.mu.Unlock()
	if !known {
		return unknownCampaign(campaign)
	}
	head, err := l.ledger.Head(ctx)
	if errors.Is(err, store.ErrEmpty) {
		return nil
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	for from := max(since, 0) + 1; from <= head.Seq; from += exportChunk {
		err := l.ledger.ScanRange(ctx, from, min(from+exportChunk-1, head.Seq), func(e store.Event) error {
			if e.Campaign != campaign {
				return nil
			}
			if err := enc.Encode(ExportEvent{Seq: e.Seq, At: e.At, Kind: e.Kind, Actor: e.Actor, Campaign: e.Campaign,
				Body: e.Body, Hash: hex.EncodeToString(e.Hash)}); err != nil {
				return err
			}
			if n++; limit > 0 && n >= limit {
				return errPageFull
			}
			return nil
		})
		if errors.Is(err, errPageFull) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("export campaign %s events from seq %d: %w", campaign, from, err)
		}
	}
	return nil
}

// HTTP handlers.

func (l *Lab) handleCampaigns(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	return map[string]any{"campaigns": l.Campaigns()}, nil
}

func (l *Lab) handleCampaignInfo(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	return l.CampaignInfoOf(r.PathValue("id"))
}

func (l *Lab) handleCampaignSubmissions(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	subs, err := l.CampaignSubmissions(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"submissions": subs}, nil
}

func (l *Lab) handleExportEvents(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	since, err := queryInt(r, "since")
	if err != nil {
		return nil, err
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if _, err := l.CampaignInfoOf(id); err != nil {
		return nil, err
	}
	return stream{contentType: "application/x-ndjson", write: func(w io.Writer) error {
		return l.ExportEvents(r.Context(), id, since, int(limit), w)
	}}, nil
}

// queryInt reads an optional non-negative integer query parameter (absent:
// 0).
func queryInt(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, publicErr(400, "invalid_request", fmt.Sprintf("%s=%q: give an integer ≥ 0", name, clip(s)))
	}
	return n, nil
}
