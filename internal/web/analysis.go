package web

import (
	"fmt"
	"html/template"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/forum"
)

// diversityRow is the idea diversity at one moment: the share of active
// researchers per method family (a researcher's family is that of its
// latest finding) and its Shannon entropy in bits, with a bootstrap 95%
// interval over researchers.
type diversityRow struct {
	At       time.Time
	Active   int
	Entropy  float64
	Lo, Hi   float64
	Shares   string
	families map[string]string
}

// complexityRow is a result's released PGR against its code's size: the
// lines its snapshot changes against its parent.
type complexityRow struct {
	Finding, Title, Author, Snapshot string
	PGR                              float64
	Lines                            int
}

func (s *Server) analysisPage(w http.ResponseWriter, r *http.Request, v viewer) {
	id := r.PathValue("id")
	if !v.Admin() {
		http.Error(w, "the analysis is for admins", http.StatusForbidden)
		return
	}
	info, err := s.lab.CampaignInfoOf(id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	fs, err := s.allFindings(r, v, id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rows := diversity(fs, info.Created, 12, 1000)
	var comp []complexityRow
	for _, f := range fs {
		if f.Type != "result" || f.Snapshot == "" {
			continue
		}
		row := complexityRow{Finding: f.ID, Title: f.Title, Author: f.Author, Snapshot: f.Snapshot, PGR: forum.ReleasedPGR(f.Metrics), Lines: -1}
		if log, err := s.lab.SnapshotLog(v.Identity, f.Snapshot); err == nil {
			parent := ""
			if len(log) > 1 {
				parent = log[1].ID
			}
			if parent != "" {
				if d, err := s.lab.SnapshotDiff(v.Identity, parent, f.Snapshot); err == nil {
					row.Lines = changedLines(d)
				}
			}
		}
		comp = append(comp, row)
	}
	s.render(w, "analysis.html", map[string]any{"V": v, "Campaign": id, "Diversity": rows, "DiversityChart": entropySVG(rows),
		"Complexity": comp, "ComplexityChart": complexitySVG(comp)})
}

// changedLines counts the added and removed lines of a unified diff.
func changedLines(d string) int {
	n := 0
	for _, line := range strings.Split(d, "\n") {
		if (strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-")) && !strings.HasPrefix(line, "+++") && !strings.HasPrefix(line, "---") {
			n++
		}
	}
	return n
}

// diversity computes the idea diversity at buckets moments between start
// and the last finding.
func diversity(fs []forum.Finding, start time.Time, buckets, resamples int) []diversityRow {
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].At.Before(fs[j].At) })
	if len(fs) == 0 {
		return nil
	}
	end := fs[len(fs)-1].At
	span := end.Sub(start)
	if span <= 0 {
		span = time.Second
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var out []diversityRow
	for b := 1; b <= buckets; b++ {
		at := start.Add(span * time.Duration(b) / time.Duration(buckets))
		fam := map[string]string{}
		for _, f := range fs {
			if !f.At.After(at) && f.Author != "baselines" {
				fam[f.Author] = f.Family
			}
		}
		if len(fam) == 0 {
			continue
		}
		var who []string
		for r := range fam {
			who = append(who, r)
		}
		sort.Strings(who)
		fams := make([]string, len(who))
		for i, r := range who {
			fams[i] = fam[r]
		}
		row := diversityRow{At: at, Active: len(who), Entropy: entropy(fams), families: fam}
		hs := make([]float64, resamples)
		boot := make([]string, len(fams))
		for k := range hs {
			for i := range boot {
				boot[i] = fams[rng.IntN(len(fams))]
			}
			hs[k] = entropy(boot)
		}
		sort.Float64s(hs)
		row.Lo, row.Hi = hs[int(0.025*float64(resamples))], hs[int(0.975*float64(resamples-1))]
		counts := map[string]int{}
		for _, f := range fams {
			counts[f]++
		}
		var parts []string
		for f, c := range counts {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", f, 100*float64(c)/float64(len(fams))))
		}
		sort.Strings(parts)
		row.Shares = strings.Join(parts, ", ")
		out = append(out, row)
	}
	return out
}

// entropy is the Shannon entropy, in bits, of the labels' distribution.
func entropy(labels []string) float64 {
	counts := map[string]int{}
	for _, l := range labels {
		counts[l]++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(len(labels))
		h -= p * math.Log2(p)
	}
	return h
}

func entropySVG(rows []diversityRow) template.HTML {
	if len(rows) == 0 {
		return template.HTML(`<p class="muted">No finding yet.</p>`)
	}
	const W, H, L, B, T = 640.0, 220.0, 40.0, 26.0, 12.0
	hi := 1.0
	for _, r := range rows {
		hi = math.Max(hi, r.Hi)
	}
	x := func(i int) float64 { return L + (W-L-10)*float64(i)/math.Max(1, float64(len(rows)-1)) }
	y := func(v float64) float64 { return T + (H-T-B)*(hi-v)/hi }
	var band, line strings.Builder
	for i, r := range rows {
		fmt.Fprintf(&line, "%s%.1f,%.1f", map[bool]string{true: "M", false: " L"}[i == 0], x(i), y(r.Entropy))
		fmt.Fprintf(&band, "%s%.1f,%.1f", map[bool]string{true: "M", false: " L"}[i == 0], x(i), y(r.Hi))
	}
	for i := len(rows) - 1; i >= 0; i-- {
		fmt.Fprintf(&band, " L%.1f,%.1f", x(i), y(rows[i].Lo))
	}
	return template.HTML(fmt.Sprintf(`<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="idea diversity"><path d="%s Z" fill="#c7d2fe" stroke="none"/><path d="%s" class="line" stroke="#3730a3"/>`+
		`<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="axisline"/><text x="4" y="%.0f" class="axis">bits</text><text x="%.0f" y="%.0f" class="axis">%.1f</text><text x="%.0f" y="%.0f" class="axis" text-anchor="end">time →</text></svg>`,
		W, H, band.String(), line.String(), L, W-10, H-B, H-B, T+8, 4.0, y(hi)+4, hi, W-10, H-8))
}

func complexitySVG(rows []complexityRow) template.HTML {
	var pts []complexityRow
	maxL := 1
	lo, hi := 0.0, 1.0
	for _, r := range rows {
		if r.Lines >= 0 {
			pts = append(pts, r)
			maxL = max(maxL, r.Lines)
			lo, hi = math.Min(lo, r.PGR), math.Max(hi, r.PGR)
		}
	}
	if len(pts) == 0 {
		return template.HTML(`<p class="muted">No result whose snapshot has a parent to compare with.</p>`)
	}
	const W, H, L, B, T = 640.0, 220.0, 40.0, 26.0, 12.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="PGR against complexity">`, W, H)
	for _, p := range pts {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="#d2691e"><title>%s: %d lines, PGR %.3f</title></circle>`,
			L+(W-L-10)*float64(p.Lines)/float64(maxL), T+(H-T-B)*(hi-p.PGR)/(hi-lo), template.HTMLEscapeString(p.Title), p.Lines, p.PGR)
	}
	fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="axisline"/><text x="%.0f" y="%.0f" class="axis" text-anchor="end">lines changed (max %d) →</text><text x="4" y="%.0f" class="axis">PGR</text></svg>`,
		L, W-10, H-B, H-B, W-10, H-8, maxL, T+8)
	return template.HTML(b.String())
}
