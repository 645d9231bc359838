package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/snapshot"
	"github.com/aar-lab/aar/internal/stats"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
)

// Verification events: one "verify.check" per check as it finishes, and one
// "verify.done" with the verdict and every check.
const (
	evVerifyCheck = "verify.check"
	evVerifyDone  = "verify.done"
)

// Verdicts of a verification.
const (
	VerdictVerified     = "verified"     // replayed, re-run on sealed data, no cheat flag
	VerdictFlagged      = "flagged"      // at least one cheat flag: held for review
	VerdictUnverifiable = "unverifiable" // the method could not be re-run (no contract, failures)
	VerdictUnverified   = "unverified"   // (board mark) never verified
)

// Check statuses.
const (
	CheckPass    = "pass"
	CheckFlag    = "flag"
	CheckInfo    = "info"
	CheckSkipped = "skipped"
	CheckError   = "error"
)

// VerifyFlag is a cheat flag a check raised, with the reason a reviewer
// reads.
type VerifyFlag struct {
	Kind   string `json:"kind"`
	Check  string `json:"check"`
	Reason string `json:"reason"`
}

// VerifyCheck is one check's outcome with its figures.
type VerifyCheck struct {
	Verification string         `json:"verification"`
	Subject      string         `json:"subject"`
	Check        string         `json:"check"`
	Status       string         `json:"status"`
	Summary      string         `json:"summary"`
	Figures      map[string]any `json:"figures,omitempty"`
	Flags        []VerifyFlag   `json:"flags,omitempty"`
	Labels       []string       `json:"labels,omitempty"`
	Seconds      float64        `json:"seconds"`
}

// Verification is a finished verification of a submission or a snapshot.
type Verification struct {
	ID         string `json:"id"`
	Subject    string `json:"subject"`
	Submission string `json:"submission,omitempty"`
	Snapshot   string `json:"snapshot,omitempty"`
	Campaign   string `json:"campaign"`
	Researcher string `json:"researcher,omitempty"`
	Testbed    string `json:"testbed"`
	Method     string `json:"method,omitempty"`
	Verdict    string `json:"verdict"`
	// Flags are cheat flags (the verdict is "flagged" when there is one);
	// Labels are information (e.g. "teacher_free"), never a cheat.
	Flags  []VerifyFlag `json:"flags,omitempty"`
	Labels []string     `json:"labels,omitempty"`
	// Sealed is the sealed re-run's PGR over fresh seeds (overall), with a
	// 95% bootstrap interval over seeds and rows; Claimed the submission's
	// feedback PGR it is compared with.
	Sealed   *stats.Summary `json:"sealed_pgr,omitempty"`
	SealedLo *float64       `json:"sealed_pgr_lo,omitempty"`
	SealedHi *float64       `json:"sealed_pgr_hi,omitempty"`
	Claimed  *float64       `json:"claimed_pgr,omitempty"`
	Checks   []VerifyCheck  `json:"checks"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Seconds  float64        `json:"seconds"`
	Seq      int64          `json:"ledger_seq,omitempty"`
}

// Verifier runs a verification of a subject (submission or snapshot id).
type Verifier func(ctx context.Context, subject string) (*Verification, error)

// SetVerifier installs what POST /v1/verify runs (nil: the route answers
// 503).
func (l *Lab) SetVerifier(v Verifier) {
	l.mu.Lock()
	l.verifier = v
	l.mu.Unlock()
}

// CanVerify says whether a verifier is installed.
func (l *Lab) CanVerify() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.verifier != nil
}

// VerifyNow runs the installed verifier on a subject.
func (l *Lab) VerifyNow(ctx context.Context, subject string) (*Verification, error) {
	l.mu.Lock()
	v := l.verifier
	l.mu.Unlock()
	if v == nil {
		return nil, publicErr(503, "no_verifier", "this lab has no sandbox backend to re-run methods in: run `aar verify` on the lab's machine")
	}
	return v(ctx, subject)
}

// RecordVerifyCheck appends one check's outcome to the ledger.
func (l *Lab) RecordVerifyCheck(ctx context.Context, campaign string, c VerifyCheck) error {
	_, err := l.append(ctx, store.Input{Kind: evVerifyCheck, Actor: "verifier", Campaign: campaign, Body: c})
	return err
}

// RecordVerification appends a finished verification and indexes it: the
// leaderboard marks its submission, and a flagged one is held for review.
func (l *Lab) RecordVerification(ctx context.Context, v *Verification) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs, err := l.append(ctx, store.Input{Kind: evVerifyDone, Actor: "verifier", Campaign: v.Campaign, Body: v})
	if err != nil {
		return err
	}
	v.Seq = evs[0].Seq
	l.applyLocked(evs[0])
	return nil
}

func (l *Lab) applyVerificationLocked(e store.Event) {
	var v Verification
	if json.Unmarshal(e.Body, &v) != nil {
		return
	}
	v.Seq = e.Seq
	l.verifications[v.Subject] = &v
	if v.Submission != "" {
		l.verifications[v.Submission] = &v
	}
}

// VerificationOf is the latest verification of a submission or snapshot
// (nil when never verified).
func (l *Lab) VerificationOf(subject string) *Verification {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.verifications[subject]
}

// Verifications lists a campaign's latest verifications, newest first.
func (l *Lab) Verifications(campaign string) []Verification {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[int64]bool{}
	var out []Verification
	for _, v := range l.verifications {
		if (campaign == "" || v.Campaign == campaign) && !seen[v.Seq] {
			seen[v.Seq] = true
			out = append(out, *v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq > out[j].Seq })
	return out
}

// verifyMarkLocked is a submission's board mark: verified, flagged,
// unverifiable or unverified.
func (l *Lab) verifyMarkLocked(subID string) (string, *Verification) {
	v := l.verifications[subID]
	if v == nil {
		return VerdictUnverified, nil
	}
	return v.Verdict, v
}

// VerifySubject is what a verifier needs to know about a subject.
type VerifySubject struct {
	Submission *Submission // nil for a bare snapshot
	Snapshot   *SnapshotMeta
	Tree       *snapshot.Tree
	Campaign   *Campaign
	Testbed    *testbed.Testbed
}

// ResolveVerifySubject finds a submission's (or a snapshot's) method: the
// snapshot tree with its files, the campaign and the testbed.
func (l *Lab) ResolveVerifySubject(subject string) (*VerifySubject, error) {
	l.mu.Lock()
	sub := l.submissions[subject]
	snapID := subject
	if sub != nil {
		snapID = sub.Snapshot
	}
	meta := l.snapshots[snapID]
	l.mu.Unlock()
	switch {
	case sub == nil && meta == nil:
		return nil, publicErr(404, "not_found", fmt.Sprintf("%q is neither a submission nor a snapshot of this lab: give an id from `aar runs show` or the dashboard", subject))
	case meta == nil:
		return nil, publicErr(400, "no_snapshot", fmt.Sprintf("submission %s has no snapshot, so its method cannot be re-run (researchers' submissions snapshot their workspace; a bare `aar submit` does not)", subject))
	}
	st, err := l.snapshotStore()
	if err != nil {
		return nil, err
	}
	tree, err := st.Get(meta.Tree)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", meta.ID, err)
	}
	l.mu.Lock()
	c := l.campaigns[meta.Campaign]
	l.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("snapshot %s: campaign %s is unknown", meta.ID, meta.Campaign)
	}
	tb, err := l.testbedFor(c.Testbed)
	if err != nil {
		return nil, err
	}
	out := &VerifySubject{Snapshot: meta, Tree: tree, Campaign: c, Testbed: tb}
	if sub != nil {
		cp := *sub
		out.Submission = &cp
	}
	return out, nil
}

// TestbedByName loads an installed testbed (labels included: for the lab's
// own checks only).
func (l *Lab) TestbedByName(name string) (*testbed.Testbed, error) { return l.testbedFor(name) }

// TopResults are a campaign's k best result findings by their submissions'
// feedback PGR (at most one per submission), for verification at its end.
func (l *Lab) TopResults(ctx context.Context, campaign string, k int) ([]string, error) {
	if l.cfg.Forum == nil {
		return nil, nil
	}
	type res struct {
		sub string
		pgr float64
	}
	var all []res
	seen := map[string]bool{}
	for since := int64(0); ; {
		page, err := l.cfg.Forum.List(ctx, campaign, since, 1000)
		if err != nil {
			return nil, err
		}
		for _, f := range page.Findings {
			if f.Type != "result" || f.Submission == "" || seen[f.Submission] {
				continue
			}
			l.mu.Lock()
			s := l.submissions[f.Submission]
			l.mu.Unlock()
			if s == nil || s.Review == "disqualified" {
				continue
			}
			if c := s.Report.Cell(testbed.SplitFeedback, testbed.GroupOverall); c != nil && c.PGR != nil {
				seen[f.Submission] = true
				all = append(all, res{f.Submission, c.PGR.Mean})
			}
		}
		if page.Next == since {
			break
		}
		since = page.Next
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].pgr > all[j].pgr })
	var out []string
	for _, r := range all[:min(k, len(all))] {
		out = append(out, r.sub)
	}
	return out, nil
}

func (l *Lab) handleVerify(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	var req struct {
		Subject string `json:"subject"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	req.Subject = strings.TrimSpace(req.Subject)
	if req.Subject == "" {
		return nil, publicErr(400, "invalid_request", `give {"subject": SUBMISSION_OR_SNAPSHOT_ID}`)
	}
	l.mu.Lock()
	v := l.verifier
	l.mu.Unlock()
	if v == nil {
		return nil, publicErr(503, "no_verifier", "this lab has no sandbox backend to re-run methods in: run `aar verify` on the lab's machine")
	}
	if _, err := l.ResolveVerifySubject(req.Subject); err != nil {
		return nil, err
	}
	res, err := v(r.Context(), req.Subject)
	if err != nil {
		var pe *PublicError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, publicErr(500, "verify_failed", err.Error())
	}
	return res, nil
}
