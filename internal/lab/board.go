package lab

import (
	"context"
	"sort"

	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/stats"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
)

// BoardEntry is a researcher's best submission on the leaderboard.
type BoardEntry struct {
	Researcher string         `json:"researcher"`
	Submission string         `json:"submission"`
	Feedback   *stats.Summary `json:"feedback_pgr"`
	// Admin only:
	Holdout *stats.Summary `json:"holdout_pgr,omitempty"`
	Sealed  *stats.Summary `json:"sealed_pgr,omitempty"`
	Flags   []score.Flag   `json:"flags,omitempty"`
	Review  string         `json:"review,omitempty"`
}

// Leaderboard ranks each researcher's best released feedback PGR in a
// campaign. Researchers see feedback figures of unflagged (or cleared)
// submissions; admins also see holdout figures, flags and flagged entries.
func (l *Lab) Leaderboard(id *Identity, campaign string) ([]BoardEntry, error) {
	admin := id.Role == RoleAdmin
	if !admin {
		campaign = id.Campaign
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.campaigns[campaign] == nil {
		return nil, publicErr(404, "unknown_campaign", "no such campaign")
	}
	best := map[string]BoardEntry{}
	for _, s := range l.submissions {
		if s.Campaign != campaign || s.Review == "disqualified" {
			continue
		}
		withheld := len(s.Flags) > 0 && s.Review != "cleared"
		if withheld && !admin {
			continue
		}
		fb := releasedPGR(s.Feedback)
		if fb == nil {
			continue
		}
		e := BoardEntry{Researcher: s.Researcher, Submission: s.ID, Feedback: fb}
		if admin {
			e.Flags, e.Review = s.Flags, s.Review
			if c := s.Report.Cell(testbed.SplitHoldout, testbed.GroupOverall); c != nil {
				e.Holdout = c.PGR
			}
			if c := s.Report.Cell(testbed.SplitSealed, testbed.GroupOverall); c != nil {
				e.Sealed = c.PGR
			}
		}
		if cur, ok := best[s.Researcher]; !ok || fb.Mean > cur.Feedback.Mean {
			best[s.Researcher] = e
		}
	}
	out := make([]BoardEntry, 0, len(best))
	for _, e := range best {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Feedback.Mean > out[j].Feedback.Mean })
	return out, nil
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
	return map[string]any{"id": s.ID, "at": s.At, "seeds": s.Seeds, "snapshot": s.Snapshot, "note": s.Note,
		"feedback": s.Feedback, "withheld_from_leaderboard": len(s.Flags) > 0 && s.Review != "cleared"}, nil
}

// Review records an admin's decision on a flagged submission: "cleared"
// releases it to the leaderboard, "disqualified" removes it.
func (l *Lab) Review(ctx context.Context, subID, decision, note string) error {
	if decision != "cleared" && decision != "disqualified" {
		return publicErr(400, "invalid_review", `decision must be "cleared" or "disqualified"`)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.submissions[subID]
	if s == nil {
		return publicErr(404, "unknown_submission", "no such submission")
	}
	evs, err := l.append(ctx, store.Input{Kind: evReview, Actor: "admin", Campaign: s.Campaign,
		Body: map[string]string{"submission": subID, "decision": decision, "note": note}})
	if err != nil {
		return err
	}
	l.applyLocked(evs[0])
	return nil
}
