package web

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/lab"
)

// reviewItem is a submission in the review queue, with the evidence a
// reviewer needs side by side.
type reviewItem struct {
	subRow
	Finding    *forum.Finding
	Diff       string
	DiffNote   string
	Excerpt    []eventRow
	Checklist  []string
	Campaign   string
	Reasons    []string
	Top        bool
	Unreviewed bool
	// Verify is the latest verification (nil: never verified);
	// Verifying says one is running now.
	Verify    *lab.VerifyBrief
	Verifying bool
}

// verifyReasons are a verification's cheat flags as review reasons.
func verifyReasons(b *lab.VerifyBrief) []string {
	if b == nil {
		return nil
	}
	var out []string
	for _, f := range b.Flags {
		out = append(out, "verification · "+f.Kind+" ("+f.Check+"): "+f.Reason)
	}
	return out
}

// queue is the flagged submissions not yet reviewed, then the top results
// (≥ 5 seeds) by released PGR.
func (s *Server) queue(r *http.Request, v viewer, campaign string) ([]reviewItem, map[string]*forum.Finding, error) {
	subs, err := s.lab.CampaignSubmissions(campaign)
	if err != nil {
		return nil, nil, err
	}
	results := map[string]*forum.Finding{}
	var since int64
	for {
		page, err := s.lab.ListFindings(r.Context(), v.Identity, campaign, since, 500)
		if err != nil {
			return nil, nil, err
		}
		for i := range page.Findings {
			if f := page.Findings[i]; f.Type == "result" && f.Submission != "" {
				results[f.Submission] = &page.Findings[i]
			}
		}
		if page.Next == since {
			break
		}
		since = page.Next
	}
	var flagged, top []reviewItem
	for _, sub := range subs {
		it := reviewItem{subRow: subRow{SubmissionInfo: sub, Released: releasedOverall(sub)}, Campaign: campaign}
		it.Flagged = len(sub.Flags) > 0 || sub.Verification == lab.VerdictFlagged
		it.Unreviewed = sub.Review == ""
		for _, f := range sub.Flags {
			it.Reasons = append(it.Reasons, flagText(f))
		}
		it.Verify = sub.Verify
		it.Reasons = append(it.Reasons, verifyReasons(sub.Verify)...)
		switch {
		case it.Flagged && it.Unreviewed:
			flagged = append(flagged, it)
		case results[sub.ID] != nil:
			it.Top, it.Finding = true, results[sub.ID]
			top = append(top, it)
		}
	}
	sort.Slice(top, func(i, j int) bool { return pv(top[i].Released) > pv(top[j].Released) })
	if len(top) > 10 {
		top = top[:10]
	}
	return append(flagged, top...), results, nil
}

func pv(p *float64) float64 {
	if p == nil {
		return -1e9
	}
	return *p
}

func flagText(f any) string {
	b := strings.NewReplacer("{", "", "}", "", `"`, "").Replace(toJSON(f))
	return b
}

func (s *Server) review(w http.ResponseWriter, r *http.Request, v viewer) {
	if !v.Admin() {
		http.Error(w, "the review queue is for admins", http.StatusForbidden)
		return
	}
	id := r.PathValue("id")
	items, _, err := s.queue(r, v, id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	s.render(w, "review.html", map[string]any{"V": v, "Campaign": id, "Items": items})
}

// reviewItemPage shows one submission's evidence: detector reasons, the
// method card, the code diff against the parent snapshot, the transcript
// around it, and the checklist and verdict form.
func (s *Server) reviewItemPage(w http.ResponseWriter, r *http.Request, v viewer) {
	if !v.Admin() {
		http.Error(w, "the review queue is for admins", http.StatusForbidden)
		return
	}
	id, subID := r.PathValue("id"), r.PathValue("sub")
	subs, err := s.lab.CampaignSubmissions(id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	_, results, err := s.queue(r, v, id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	var it *reviewItem
	for _, sub := range subs {
		if sub.ID == subID {
			it = &reviewItem{subRow: subRow{SubmissionInfo: sub, Released: releasedOverall(sub), Flagged: len(sub.Flags) > 0 || sub.Verification == lab.VerdictFlagged}, Campaign: id,
				Finding: results[sub.ID], Checklist: lab.ReviewChecklist, Verify: sub.Verify, Verifying: s.verifying(sub.ID)}
			for _, f := range sub.Flags {
				it.Reasons = append(it.Reasons, flagText(f))
			}
			it.Reasons = append(it.Reasons, verifyReasons(sub.Verify)...)
			for _, c := range sub.Cells {
				if c.Split == "holdout" && c.Group == "overall" && c.PGR != nil {
					m := c.PGR.Mean
					it.Holdout = &m
				}
			}
		}
	}
	if it == nil {
		http.Error(w, "no such submission in this campaign", http.StatusNotFound)
		return
	}
	// The code: the submission's snapshot against its parent.
	if it.Snapshot != "" {
		if log, err := s.lab.SnapshotLog(v.Identity, it.Snapshot); err == nil && len(log) > 1 {
			if d, err := s.lab.SnapshotDiff(v.Identity, log[1].ID, it.Snapshot); err == nil {
				it.Diff, it.DiffNote = d, "against its parent "+log[1].ID
			}
		} else if err == nil {
			it.DiffNote = "the snapshot has no parent (the researcher's first)"
		}
	}
	if len(it.Diff) > 64<<10 {
		it.Diff = it.Diff[:64<<10] + "\n[… cut]"
	}
	// The transcript around the submission (its note cites the tool call).
	if i := strings.LastIndex(it.Note, "[transcript "); i >= 0 {
		var seq int64
		_, _ = fmtSscan(strings.TrimSuffix(it.Note[i+len("[transcript "):], "]"), &seq)
		it.Pos = seq
		if pos, err := s.posOfSeq(r, v, id, it.Researcher, seq); err == nil {
			page, err := s.lab.Transcript(r.Context(), v.Identity, lab.TranscriptQuery{Campaign: id, Researcher: it.Researcher, After: max(-1, pos-8), Limit: 12})
			if err == nil {
				for _, e := range page.Events {
					row := describe(e)
					row.Target = e.Seq == seq
					if len(row.Body) > 2000 {
						row.Body = row.Body[:2000] + "…"
					}
					it.Excerpt = append(it.Excerpt, row)
				}
			}
		}
	}
	s.render(w, "review_item.html", map[string]any{"V": v, "It": it})
}

// verdict records the reviewer's decision and checklist.
func (s *Server) verdict(w http.ResponseWriter, r *http.Request, v viewer) {
	if !v.Admin() {
		http.Error(w, "reviews are for admins", http.StatusForbidden)
		return
	}
	id, subID := r.PathValue("id"), r.PathValue("sub")
	check := map[string]bool{}
	for _, item := range lab.ReviewChecklist {
		check[item] = r.PostForm.Get("check:"+item) == "on"
	}
	if err := s.lab.ReviewChecked(r.Context(), subID, r.PostForm.Get("decision"), strings.TrimSpace(r.PostForm.Get("note")), check); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, "/campaigns/"+id+"/review", http.StatusSeeOther)
}

// verifying says whether a verification of sub started here is running.
func (s *Server) verifying(sub string) bool {
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	return s.running[sub]
}

// verifyNow starts a verification of the submission in the background
// (the lab's verifier re-runs it in fresh sandboxes; minutes) and returns
// to the item page, which shows it running until it lands in the ledger.
func (s *Server) verifyNow(w http.ResponseWriter, r *http.Request, v viewer) {
	if !v.Admin() {
		http.Error(w, "verification is for admins", http.StatusForbidden)
		return
	}
	id, subID := r.PathValue("id"), r.PathValue("sub")
	if !s.lab.CanVerify() {
		http.Error(w, "this lab has no verifier (no sandbox backend): run aar verify "+subID+" on the lab's machine", http.StatusServiceUnavailable)
		return
	}
	if _, err := s.lab.ResolveVerifySubject(subID); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.verifyMu.Lock()
	if s.running == nil {
		s.running = map[string]bool{}
	}
	busy := s.running[subID]
	s.running[subID] = true
	s.verifyMu.Unlock()
	if !busy {
		go func() {
			defer func() {
				s.verifyMu.Lock()
				delete(s.running, subID)
				s.verifyMu.Unlock()
			}()
			_, _ = s.lab.VerifyNow(context.WithoutCancel(r.Context()), subID)
		}()
	}
	http.Redirect(w, r, "/campaigns/"+id+"/review/"+subID, http.StatusSeeOther)
}
