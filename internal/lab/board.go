package lab

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/stats"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
)

// BoardEntry is a row of the leaderboard: a result finding (or, in the
// submissions list, a submission) with its released figures.
type BoardEntry struct {
	Researcher  string         `json:"researcher"`
	Finding     string         `json:"finding,omitempty"`
	Title       string         `json:"title,omitempty"`
	Family      string         `json:"family,omitempty"`
	Submission  string         `json:"submission"`
	Feedback    *stats.Summary `json:"feedback_pgr"`
	FeedbackID  *stats.Summary `json:"feedback_pgr_id,omitempty"`
	FeedbackOOD *stats.Summary `json:"feedback_pgr_ood,omitempty"`
	Withheld    bool           `json:"withheld,omitempty"`
	// Verification marks the entry verified, flagged, unverifiable or
	// unverified (never re-run).
	Verification string `json:"verification"`
	// Gap is feedback − holdout PGR (admin only).
	Gap *float64 `json:"feedback_minus_holdout,omitempty"`
	// Admin only:
	Holdout *stats.Summary `json:"holdout_pgr,omitempty"`
	Sealed  *stats.Summary `json:"sealed_pgr,omitempty"`
	Flags   []score.Flag   `json:"flags,omitempty"`
	Review  string         `json:"review,omitempty"`
	// VerifiedSealed is the verification's sealed re-run PGR (fresh seeds)
	// and VerifyFlags its cheat flags (admin only).
	VerifiedSealed *stats.Summary `json:"verified_sealed_pgr,omitempty"`
	VerifyFlags    []VerifyFlag   `json:"verify_flags,omitempty"`
}

// Board is a campaign's leaderboard.
type Board struct {
	Campaign string `json:"campaign"`
	Testbed  string `json:"testbed"`
	// Weak and Ceiling are the fixed baselines of the feedback split.
	Weak    *testbed.Figure `json:"weak,omitempty"`
	Ceiling *testbed.Figure `json:"ceiling,omitempty"`
	// Researchers and Families rank result findings: each researcher's and
	// each method family's best result, by its submission's released
	// feedback PGR.
	Researchers []BoardEntry `json:"researchers"`
	Families    []BoardEntry `json:"families"`
	// Submissions is each researcher's best single submission (for a
	// campaign without results yet).
	Submissions []BoardEntry `json:"submissions"`
}

// Leaderboard builds a campaign's board. Researchers see feedback figures of
// unflagged (or cleared) work; admins also see holdout and sealed PGR, the
// feedback − holdout gap, flags and withheld entries.
func (l *Lab) Leaderboard(ctx context.Context, id *Identity, campaign string) (*Board, error) {
	campaign = l.campaignFor(id, campaign)
	subs, err := l.bestSubmissions(id, campaign)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	c := l.campaigns[campaign]
	l.mu.Unlock()
	b := &Board{Campaign: campaign, Testbed: c.Testbed, Submissions: subs, Researchers: []BoardEntry{}, Families: []BoardEntry{}}
	if tb, err := l.testbedFor(c.Testbed); err == nil {
		if cb := tb.Manifest.Baseline(testbed.SplitFeedback, testbed.GroupOverall); cb != nil {
			b.Weak, b.Ceiling = cb.Weak, cb.Ceiling
		}
	}
	if l.cfg.Forum == nil {
		return b, nil
	}
	bestR, bestF := map[string]BoardEntry{}, map[string]BoardEntry{}
	for since := int64(0); ; {
		page, err := l.cfg.Forum.List(ctx, campaign, since, 1000)
		if err != nil {
			return nil, err
		}
		for _, f := range page.Findings {
			if f.Type != "result" {
				continue
			}
			e, ok := l.entryFor(id, f.Submission)
			if !ok {
				continue
			}
			e.Finding, e.Title, e.Family = f.ID, f.Title, f.Family
			if cur, ok := bestR[f.Author]; !ok || e.Feedback.Mean > cur.Feedback.Mean {
				bestR[f.Author] = e
			}
			if cur, ok := bestF[f.Family]; !ok || e.Feedback.Mean > cur.Feedback.Mean {
				bestF[f.Family] = e
			}
		}
		if page.Next == since {
			break
		}
		since = page.Next
	}
	b.Researchers, b.Families = ranked(bestR), ranked(bestF)
	return b, nil
}

func ranked(m map[string]BoardEntry) []BoardEntry {
	out := make([]BoardEntry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Feedback.Mean > out[j].Feedback.Mean })
	return out
}

// entryFor is a submission's row as the caller may see it; false when the
// caller may not see it (withheld for researchers) or it has no figure.
func (l *Lab) entryFor(id *Identity, subID string) (BoardEntry, bool) {
	admin := id.Role == RoleAdmin
	l.mu.Lock()
	s := l.submissions[subID]
	mark, v := l.verifyMarkLocked(subID)
	l.mu.Unlock()
	if s == nil || s.Review == "disqualified" {
		return BoardEntry{}, false
	}
	withheld := (len(s.Flags) > 0 || mark == VerdictFlagged) && s.Review != "cleared"
	if withheld && !admin {
		return BoardEntry{}, false
	}
	fb := releasedPGR(s.Feedback)
	if fb == nil {
		return BoardEntry{}, false
	}
	e := BoardEntry{Researcher: s.Researcher, Submission: s.ID, Feedback: fb, Verification: mark}
	if s.Feedback != nil {
		for _, c := range s.Feedback.Cells {
			switch c.Group {
			case testbed.GroupID:
				e.FeedbackID = c.PGR
			case testbed.GroupOOD:
				e.FeedbackOOD = c.PGR
			}
		}
	}
	if admin {
		e.Flags, e.Review, e.Withheld = s.Flags, s.Review, withheld
		if v != nil {
			e.VerifiedSealed, e.VerifyFlags = v.Sealed, v.Flags
		}
		if c := s.Report.Cell(testbed.SplitHoldout, testbed.GroupOverall); c != nil {
			e.Holdout = c.PGR
			if c.PGR != nil {
				gap := fb.Mean - c.PGR.Mean
				e.Gap = &gap
			}
		}
		if c := s.Report.Cell(testbed.SplitSealed, testbed.GroupOverall); c != nil {
			e.Sealed = c.PGR
		}
	}
	return e, true
}

// bestSubmissions is each researcher's best single submission.
func (l *Lab) bestSubmissions(id *Identity, campaign string) ([]BoardEntry, error) {
	l.mu.Lock()
	if l.campaigns[campaign] == nil {
		l.mu.Unlock()
		return nil, publicErr(404, "unknown_campaign", "no such campaign")
	}
	var ids []string
	for _, s := range l.submissions {
		if s.Campaign == campaign {
			ids = append(ids, s.ID)
		}
	}
	l.mu.Unlock()
	best := map[string]BoardEntry{}
	for _, sid := range ids {
		e, ok := l.entryFor(id, sid)
		if !ok {
			continue
		}
		if cur, ok := best[e.Researcher]; !ok || e.Feedback.Mean > cur.Feedback.Mean {
			best[e.Researcher] = e
		}
	}
	return ranked(best), nil
}

func releasedPGR(fb *score.Feedback) *stats.Summary {
	if fb == nil {
		return nil
	}
	for _, c := range fb.Cells {
		if c.Group == testbed.GroupOverall {
			return c.PGR
		}
	}
	if fb.Anchor != nil && fb.Anchor.PGR != nil {
		return &stats.Summary{Mean: *fb.Anchor.PGR, N: 1}
	}
	return nil
}

// GetSubmission returns a submission: a researcher gets their own, with
// what their policy released; an admin gets everything.
func (l *Lab) GetSubmission(id *Identity, subID string) (any, error) {
	l.mu.Lock()
	s := l.submissions[subID]
	l.mu.Unlock()
	if s == nil || (id.Role != RoleAdmin && s.Researcher != id.Researcher) {
		return nil, publicErr(404, "unknown_submission", "no such submission")
	}
	if id.Role == RoleAdmin {
		return s, nil
	}
	l.mu.Lock()
	mark, _ := l.verifyMarkLocked(s.ID)
	l.mu.Unlock()
	return map[string]any{"id": s.ID, "at": s.At, "seeds": s.Seeds, "snapshot": s.Snapshot, "note": s.Note,
		"feedback": s.Feedback, "verification": mark, "withheld_from_leaderboard": (len(s.Flags) > 0 || mark == VerdictFlagged) && s.Review != "cleared"}, nil
}

// Review records an admin's decision on a flagged submission: "cleared"
// releases it to the leaderboard, "disqualified" removes it.
func (l *Lab) Review(ctx context.Context, subID, decision, note string) error {
	return l.ReviewChecked(ctx, subID, decision, note, nil)
}

// ReviewChecklist is what a reviewer checks before a verdict.
var ReviewChecklist = []string{"matches its card", "ablations support each component", "uses only allowed inputs", "reproducible"}

// ReviewChecked records a reviewer's verdict on a submission — "cleared"
// (approved), "disqualified" (with a reason; it leaves the leaderboard) or
// "unexplained" (valid-looking but not understood) — with the checklist
// items the reviewer ticked, as one ledger event.
func (l *Lab) ReviewChecked(ctx context.Context, subID, decision, note string, checklist map[string]bool) error {
	switch decision {
	case "cleared", "disqualified", "unexplained":
	default:
		return publicErr(400, "invalid_review", `decision must be "cleared", "disqualified" or "unexplained"`)
	}
	if decision == "disqualified" && strings.TrimSpace(note) == "" {
		return publicErr(400, "invalid_review", "say why the result is disqualified (note)")
	}
	for k := range checklist {
		if !slices.Contains(ReviewChecklist, k) {
			return publicErr(400, "invalid_review", fmt.Sprintf("checklist item %q: the items are %q", k, ReviewChecklist))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.submissions[subID]
	if s == nil {
		return publicErr(404, "unknown_submission", "no such submission")
	}
	body := map[string]any{"submission": subID, "decision": decision, "note": note}
	if checklist != nil {
		body["checklist"] = checklist
	}
	evs, err := l.append(ctx, store.Input{Kind: evReview, Actor: "admin", Campaign: s.Campaign, Body: body})
	if err != nil {
		return err
	}
	l.applyLocked(evs[0])
	return nil
}
