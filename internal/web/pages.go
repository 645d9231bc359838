package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/campaign"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/stats"
)

var funcs = template.FuncMap{
	"pgr":  campaign.FormatPGR,
	"usd":  func(v float64) string { return fmt.Sprintf("$%.2f", v) },
	"secs": func(v float64) string { return fmt.Sprintf("%.1f s", v) },
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"clip": func(s string, n int) string {
		if len(s) > n {
			return s[:n] + "…"
		}
		return s
	},
	"add":   func(a, b int) int { return a + b },
	"deref": func(b *bool) bool { return b != nil && *b },
	"tokens": func(s lab.Spend) int64 {
		return s.InputTokens + s.OutputTokens + s.CacheReadTokens + s.CacheWriteTokens
	},
	"pgrS": func(s *stats.Summary) string {
		if s == nil {
			return "—"
		}
		return fmt.Sprintf("%.3f ± %.3f", s.Mean, s.SE)
	},
}

// campaigns lists the campaigns the viewer may see.
func (s *Server) campaigns(w http.ResponseWriter, r *http.Request, v viewer) {
	var cs []lab.CampaignInfo
	if v.Admin() {
		cs = s.lab.Campaigns()
	} else if c, err := s.lab.CampaignInfoOf(v.Campaign); err == nil {
		cs = []lab.CampaignInfo{{ID: c.ID, Testbed: c.Testbed, Policy: c.Policy, Created: c.Created, Stopped: c.Stopped}}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Created.After(cs[j].Created) })
	s.render(w, "campaigns.html", map[string]any{"V": v, "Campaigns": cs})
}

// campaignData is what the campaign page and its live fragment show.
type campaignData struct {
	V           viewer
	Info        *lab.CampaignInfo
	Directions  map[string]string
	Chart       template.HTML
	Submissions []subRow
	Board       *lab.Board
	LastAction  map[string]string
}

type subRow struct {
	lab.SubmissionInfo
	Released *float64
	Holdout  *float64
	Flagged  bool
	Reasons  string
	Pos      int64 // transcript seq from the note, 0 if none
}

func (s *Server) campaignFor(w http.ResponseWriter, r *http.Request, v viewer) (*campaignData, bool) {
	id := r.PathValue("id")
	if !campaignAllowed(w, v, id) {
		return nil, false
	}
	info, err := s.lab.CampaignInfoOf(id)
	if err != nil {
		http.Error(w, "no such campaign", http.StatusNotFound)
		return nil, false
	}
	// The "baselines" token only posts the baselines' results at the start:
	// it is not a researcher to watch.
	kept := info.Researchers[:0:0]
	for _, r := range info.Researchers {
		if r.Name == "baselines" && r.Spend.TranscriptEvents == 0 && r.Submissions == 0 {
			continue
		}
		kept = append(kept, r)
	}
	info.Researchers = kept
	d := &campaignData{V: v, Info: info, Directions: map[string]string{}}
	var spec struct {
		Researchers []struct{ Name, Direction string } `json:"researchers"`
	}
	_ = json.Unmarshal(info.Spec, &spec)
	for _, rs := range spec.Researchers {
		d.Directions[rs.Name] = rs.Direction
	}
	if board, err := s.lab.Leaderboard(r.Context(), v.Identity, idIfAdmin(v, id)); err == nil {
		d.Board = board
	}
	if !v.Admin() {
		// Researchers see their campaign's feedback leaderboard, not others'
		// spend, state or submissions.
		d.Info = &lab.CampaignInfo{ID: info.ID, Testbed: info.Testbed, Policy: info.Policy, Created: info.Created, Stopped: info.Stopped}
		return d, true
	}
	subs, err := s.lab.CampaignSubmissions(id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, false
	}
	var pts []point
	for _, sub := range subs {
		row := subRow{SubmissionInfo: sub, Flagged: len(sub.Flags) > 0 && sub.Review != "cleared"}
		row.Released = releasedOverall(sub)
		for _, c := range sub.Cells {
			if c.Split == "holdout" && c.Group == "overall" && c.PGR != nil {
				v := c.PGR.Mean
				row.Holdout = &v
			}
		}
		var reasons []string
		for _, f := range sub.Flags {
			b, _ := json.Marshal(f)
			reasons = append(reasons, string(b))
		}
		row.Reasons = strings.Join(reasons, "; ")
		if i := strings.LastIndex(sub.Note, "[transcript "); i >= 0 {
			row.Pos, _ = strconv.ParseInt(strings.TrimSuffix(sub.Note[i+len("[transcript "):], "]"), 10, 64)
		}
		d.Submissions = append(d.Submissions, row)
		if row.Released != nil && sub.Review != "disqualified" {
			pts = append(pts, point{at: sub.At, pgr: *row.Released, who: sub.Researcher})
		}
	}
	sort.Slice(d.Submissions, func(i, j int) bool { return d.Submissions[i].At.After(d.Submissions[j].At) })
	if len(d.Submissions) > 200 {
		d.Submissions = d.Submissions[:200]
	}
	d.Chart = frontierSVG(pts, info.Created)
	d.LastAction = map[string]string{}
	for _, rs := range info.Researchers {
		d.LastAction[rs.Name] = s.lastAction(r, v, id, rs.Name)
	}
	return d, true
}

// lastAction is a researcher's latest tool call, from the end of its
// transcript (two small reads).
func (s *Server) lastAction(r *http.Request, v viewer, id, name string) string {
	q := lab.TranscriptQuery{Campaign: id, Researcher: name, After: -1, Limit: 1}
	first, err := s.lab.Transcript(r.Context(), v.Identity, q)
	if err != nil || first.Total == 0 {
		return ""
	}
	q.After, q.Limit = max(-1, first.Total-9), 8
	page, err := s.lab.Transcript(r.Context(), v.Identity, q)
	if err != nil {
		return ""
	}
	for i := len(page.Events) - 1; i >= 0; i-- {
		e := page.Events[i]
		var d struct{ Name, Input, Reason string }
		_ = json.Unmarshal(e.Data, &d)
		switch e.Type {
		case "tool_call":
			return d.Name + " " + strings.Join(strings.Fields(d.Input), " ")
		case "stop":
			return "stopped: " + d.Reason
		case "paused":
			return "paused"
		}
	}
	return ""
}

func idIfAdmin(v viewer, id string) string {
	if v.Admin() {
		return id
	}
	return ""
}

func releasedOverall(sub lab.SubmissionInfo) *float64 {
	if sub.Feedback == nil {
		return nil
	}
	for _, c := range sub.Feedback.Cells {
		if c.Group == "overall" && c.PGR != nil {
			v := c.PGR.Mean
			return &v
		}
	}
	return nil
}

func (s *Server) campaign(w http.ResponseWriter, r *http.Request, v viewer) {
	d, ok := s.campaignFor(w, r, v)
	if ok {
		s.render(w, "campaign.html", d)
	}
}

// live is the part of the campaign page that updates.
func (s *Server) live(w http.ResponseWriter, r *http.Request, v viewer) {
	d, ok := s.campaignFor(w, r, v)
	if ok {
		s.render(w, "live", d)
	}
}

// stream sends the live fragment as server-sent events every two seconds
// until the browser goes away.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, v viewer) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		d, ok := s.campaignFor(discard{}, r, v)
		if !ok {
			return
		}
		var b bytes.Buffer
		if err := s.tmpl.ExecuteTemplate(&b, "live", d); err != nil {
			return
		}
		w.Write([]byte("event: update\n"))
		for _, line := range strings.Split(b.String(), "\n") {
			fmt.Fprintf(w, "data: %s\n", line)
		}
		w.Write([]byte("\n"))
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// discard swallows an error page (the stream just ends).
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// control carries out an operator's form: pause, resume, stop (a
// researcher or, without one, the campaign), note, add.
func (s *Server) control(w http.ResponseWriter, r *http.Request, v viewer) {
	if !v.Admin() {
		http.Error(w, "operator actions need an admin login", http.StatusForbidden)
		return
	}
	id := r.PathValue("id")
	req := lab.ControlRequest{Action: r.PostForm.Get("action"), Researcher: r.PostForm.Get("researcher"), Text: r.PostForm.Get("text")}
	if req.Action == "add" {
		cfg, _ := json.Marshal(map[string]string{"name": req.Researcher, "direction": req.Text})
		req.Config, req.Text = cfg, ""
	}
	if _, err := s.lab.Control(r.Context(), id, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, "/campaigns/"+id, http.StatusSeeOther)
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func fmtSscan(s string, p *int64) (int, error) { return fmt.Sscan(s, p) }
