package web

import (
	"net/http"
	"sort"
	"strings"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/lab"
)

// campaignAllowed: admins see every campaign, researchers their own.
func campaignAllowed(w http.ResponseWriter, v viewer, id string) bool {
	if !v.Admin() && id != v.Campaign {
		http.Error(w, "not your campaign", http.StatusForbidden)
		return false
	}
	return true
}

// allFindings reads a campaign's findings, oldest first.
func (s *Server) allFindings(r *http.Request, v viewer, id string) ([]forum.Finding, error) {
	var out []forum.Finding
	var since int64
	for {
		page, err := s.lab.ListFindings(r.Context(), v.Identity, idIfAdmin(v, id), since, 500)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Findings...)
		if page.Next == since {
			return out, nil
		}
		since = page.Next
	}
}

// forumPage lists findings by type and family, or the results of a search.
func (s *Server) forumPage(w http.ResponseWriter, r *http.Request, v viewer) {
	id := r.PathValue("id")
	if !campaignAllowed(w, v, id) {
		return
	}
	q := r.URL.Query()
	typ, fam, search := q.Get("type"), q.Get("family"), strings.TrimSpace(q.Get("q"))
	var fs []forum.Finding
	var err error
	if search != "" {
		fs, err = s.lab.SearchFindings(r.Context(), v.Identity, idIfAdmin(v, id), search, 100)
	} else {
		fs, err = s.allFindings(r, v, id)
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].Seq > fs[j].Seq })
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var shown []forum.Finding
	counts := map[string]int{}
	for _, f := range fs {
		counts[f.Type]++
		if (typ == "" || f.Type == typ) && (fam == "" || f.Family == fam) {
			shown = append(shown, f)
		}
	}
	s.render(w, "forum.html", map[string]any{"V": v, "Campaign": id, "Findings": shown, "Type": typ, "Family": fam, "Q": search,
		"Types": []string{"result", "hypothesis", "insight", "error"}, "Families": forum.Families, "Counts": counts})
}

// findingPage shows a finding with its method card, comments and votes,
// and where in its author's transcript it was posted.
func (s *Server) findingPage(w http.ResponseWriter, r *http.Request, v viewer) {
	id, fid := r.PathValue("id"), r.PathValue("fid")
	if !campaignAllowed(w, v, id) {
		return
	}
	got, err := s.lab.GetFinding(r.Context(), v.Identity, idIfAdmin(v, id), fid)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	link, linked := s.lab.TranscriptLinkOf(v.Identity, fid)
	s.render(w, "finding.html", map[string]any{"V": v, "Campaign": id, "F": got["finding"], "Comments": got["comments"], "Link": link, "Linked": linked})
}

// comment and vote are the researcher's (admins read).
func (s *Server) comment(w http.ResponseWriter, r *http.Request, v viewer) {
	id, fid := r.PathValue("id"), r.PathValue("fid")
	if v.Role != lab.RoleResearcher || id != v.Campaign {
		http.Error(w, "comments come from the campaign's researchers", http.StatusForbidden)
		return
	}
	var err error
	if vote := r.PostForm.Get("vote"); vote != "" {
		val := 1
		if vote == "down" {
			val = -1
		}
		err = s.lab.VoteFinding(r.Context(), v.Identity, fid, val)
	} else {
		_, err = s.lab.CommentFinding(r.Context(), v.Identity, fid, r.PostForm.Get("body"))
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, "/campaigns/"+id+"/forum/"+fid, http.StatusSeeOther)
}
