package baseline

import (
	"fmt"
	"image/color"
	"io"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/stats"
	"github.com/aar-lab/aar/internal/testbed"
)

// FormatSummary prints a mean ± SE (just the mean for one seed, "—" for none).
func FormatSummary(s *stats.Summary, digits int) string {
	if s == nil {
		return "—"
	}
	if s.N < 2 {
		return fmt.Sprintf("%.*f", digits, s.Mean)
	}
	return fmt.Sprintf("%.*f ± %.*f", digits, s.Mean, digits, s.SE)
}

func formatFigure(f *testbed.Figure) string {
	if f == nil {
		return "—"
	}
	return fmt.Sprintf("%.3f", f.Mean)
}

func cellPGR(c *score.Cell) *stats.Summary {
	if c == nil {
		return nil
	}
	return c.PGR
}

// Markdown writes the results as a table: one row per testbed × method with
// the split's weak, ceiling and transfer accuracy (overall) and PGR overall,
// ID and OOD, mean ± SE over seeds.
func Markdown(w io.Writer, results []*Result, split string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "| testbed | method | weak | ceiling | transfer | PGR overall | PGR ID | PGR OOD | Δ PGR vs vanilla [95%% CI] | seeds | time |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		ov := r.Report.Cell(split, testbed.GroupOverall)
		if ov == nil {
			return fmt.Errorf("result %s/%s has no %s split", r.Testbed, r.Method, split)
		}
		vs := "—"
		if c := r.VsVanilla; c != nil && c.PGR != nil {
			vs = fmt.Sprintf("%+.3f [%+.3f, %+.3f]", c.PGR.Estimate, c.PGR.Lo, c.PGR.Hi)
			if c.PGR.Lo > 0 || c.PGR.Hi < 0 {
				vs += " *"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n",
			r.Testbed, r.Method, formatFigure(ov.Weak), formatFigure(ov.Ceiling), FormatSummary(ov.Accuracy, 3),
			FormatSummary(cellPGR(ov), 2), FormatSummary(cellPGR(r.Report.Cell(split, testbed.GroupID)), 2),
			FormatSummary(cellPGR(r.Report.Cell(split, testbed.GroupOOD)), 2), vs, len(r.Seeds), r.Elapsed.Round(10*time.Millisecond))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// palette gives each method its own colour (colour-blind-safe Okabe–Ito).
var palette = []color.RGBA{
	{0, 114, 178, 255}, {230, 159, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
	{86, 180, 233, 255}, {213, 94, 0, 255}, {240, 228, 66, 255}, {0, 0, 0, 255},
}

// Chart draws PGR (overall, on the split) per testbed as a dot per method
// with ±1 SE error bars, and saves it to path; the extension (.png or .svg)
// picks the format.
func Chart(path string, results []*Result, split string) error {
	var tbs, methods []string
	seen := map[string]bool{}
	for _, r := range results {
		if !seen["t"+r.Testbed] {
			seen["t"+r.Testbed] = true
			tbs = append(tbs, r.Testbed)
		}
		if !seen["m"+r.Method] {
			seen["m"+r.Method] = true
			methods = append(methods, r.Method)
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("PGR on the %s split (mean ± SE over seeds)", split)
	p.Y.Label.Text = "PGR"
	p.Legend.Top = true // drawn in an empty column right of the last testbed
	step := 0.8 / float64(max(1, len(methods)))
	lo, hi := 0.0, 1.0
	for mi, m := range methods {
		var pts plotter.XYs
		var errs plotter.YErrors
		for ti, tb := range tbs {
			for _, r := range results {
				if r.Testbed != tb || r.Method != m {
					continue
				}
				if s := cellPGR(r.Report.Cell(split, testbed.GroupOverall)); s != nil {
					x := float64(ti) + (float64(mi)-float64(len(methods)-1)/2)*step
					pts = append(pts, plotter.XY{X: x, Y: s.Mean})
					errs = append(errs, struct{ Low, High float64 }{s.SE, s.SE})
					lo, hi = min(lo, s.Mean-s.SE), max(hi, s.Mean+s.SE)
				}
			}
		}
		if len(pts) == 0 {
			continue
		}
		col := palette[mi%len(palette)]
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color = col
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(3)
		eb, err := plotter.NewYErrorBars(errorPoints{pts, errs})
		if err != nil {
			return err
		}
		eb.LineStyle.Color = col
		eb.LineStyle.Width = vg.Points(1.2)
		p.Add(eb, sc)
		p.Legend.Add(m, sc)
	}
	p.NominalX(tbs...)
	p.X.Min, p.X.Max = -0.6, float64(len(tbs))+0.9
	pad := 0.05 * (hi - lo)
	p.Y.Min, p.Y.Max = lo-pad, hi+pad
	p.Add(plotter.NewGrid())
	zero := plotter.NewFunction(func(float64) float64 { return 0 })
	zero.Color = color.Gray{Y: 128}
	ceiling := plotter.NewFunction(func(float64) float64 { return 1 })
	ceiling.Color = color.Gray{Y: 128}
	ceiling.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(zero, ceiling)
	return p.Save(vg.Length(110+40*len(tbs))*vg.Millimeter, 110*vg.Millimeter, path)
}

// errorPoints pairs points with their error bars for plotter.NewYErrorBars.
type errorPoints struct {
	plotter.XYs
	plotter.YErrors
}
