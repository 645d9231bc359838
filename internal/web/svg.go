package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"
)

type point struct {
	at  time.Time
	pgr float64
	who string
}

var palette = []string{"#3366aa", "#d2691e", "#2e8b57", "#8b3a8b", "#b8860b", "#4682b4", "#c0392b", "#16a085", "#7f8c8d"}

// frontierSVG draws released feedback PGR over time: a step line of each
// researcher's best so far, the campaign's frontier (thick), the weak
// teacher (PGR 0) and the ceiling (PGR 1).
func frontierSVG(pts []point, start time.Time) template.HTML {
	const W, H, L, R, T, B = 720.0, 300.0, 48.0, 130.0, 16.0, 34.0
	if len(pts) == 0 {
		return template.HTML(`<p class="muted">No released PGR yet.</p>`)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].at.Before(pts[j].at) })
	maxX := math.Max(pts[len(pts)-1].at.Sub(start).Minutes()*1.05, 1)
	lo, hi := -0.1, 1.1
	for _, p := range pts {
		lo, hi = math.Min(lo, p.pgr-0.05), math.Max(hi, p.pgr+0.05)
	}
	x := func(t time.Time) float64 { return L + (W-L-R)*t.Sub(start).Minutes()/maxX }
	y := func(v float64) float64 { return T + (H-T-B)*(hi-v)/(hi-lo) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="PGR frontier over time">`, W, H)
	for _, ref := range []struct {
		v     float64
		label string
	}{{0, "weak (0)"}, {1, "ceiling (1)"}} {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="ref"/><text x="%.1f" y="%.1f" class="axis">%s</text>`,
			L, W-R, y(ref.v), y(ref.v), W-R+4, y(ref.v)+4, ref.label)
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axisline"/>`, L, W-R, H-B, H-B)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="axis">0</text><text x="%.1f" y="%.1f" class="axis" text-anchor="end">%.1f min</text>`, L, H-B+14, W-R, H-B+14, maxX)
	fmt.Fprintf(&b, `<text x="4" y="%.1f" class="axis">PGR</text>`, T+10)
	step := func(ps []point, class, color string) {
		best := math.Inf(-1)
		var path strings.Builder
		for _, p := range ps {
			if p.pgr <= best {
				continue
			}
			if path.Len() == 0 {
				fmt.Fprintf(&path, "M%.1f,%.1f", x(p.at), y(p.pgr))
			} else {
				fmt.Fprintf(&path, " H%.1f V%.1f", x(p.at), y(p.pgr))
			}
			best = p.pgr
		}
		fmt.Fprintf(&path, " H%.1f", W-R)
		fmt.Fprintf(&b, `<path d="%s" class="%s" stroke="%s"/>`, path.String(), class, color)
		if class == "line" {
			for _, p := range ps {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, x(p.at), y(p.pgr), color)
			}
		}
	}
	byWho := map[string][]point{}
	var names []string
	for _, p := range pts {
		if byWho[p.who] == nil {
			names = append(names, p.who)
		}
		byWho[p.who] = append(byWho[p.who], p)
	}
	sort.Strings(names)
	for i, n := range names {
		c := palette[i%len(palette)]
		step(byWho[n], "line", c)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="legend" fill="%s">%s</text>`, W-R+4, T+64+14*float64(i), c, html.EscapeString(n))
	}
	step(pts, "frontier", "#111")
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="legend" font-weight="bold">frontier</text></svg>`, W-R+4, T+46)
	return template.HTML(b.String())
}
