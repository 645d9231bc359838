package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/aar-lab/aar/internal/agent"
	"github.com/aar-lab/aar/internal/labclient"
)

func newTranscriptCmd(g *globals) *cobra.Command {
	var (
		q      labclient.TranscriptQuery
		asJSON bool
		plotTo []string
	)
	c := &cobra.Command{
		Use:   "transcript [--campaign ID --researcher NAME] [--session S] [--json] [--plot FILE.png|.svg ...]",
		Short: "Read a researcher's transcript from the lab: every message, tool call, result and cost",
		Long: `Transcript pages through a researcher's transcript (your own with a
researcher token; an admin names --campaign and --researcher) and prints one
line per event, or every event as JSON with --json. --plot draws the released
feedback PGR of each of the researcher's submissions in order (one-seed
screens small, multi-seed submissions with ± SE bars; PGR 0 is the weak
teacher, 1 the ceiling), as PNG or SVG by the file's extension. Reads AAR_LAB
and AAR_TOKEN.`,
		Example: `  aar transcript
  aar transcript --campaign c1 --researcher alice --session s2 --json
  aar transcript --plot progress.png --plot progress.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := client()
			if err != nil {
				return usageError{err}
			}
			events, err := readTranscript(cmd.Context(), cl, q)
			if err != nil {
				return err
			}
			for _, path := range plotTo {
				if err := plotSubmissions(path, agent.Submissions(events)); err != nil {
					return err
				}
				fmt.Fprintf(g.stderr, "wrote %s\n", path)
			}
			if asJSON {
				return writeJSON(g.stdout, events)
			}
			if len(plotTo) > 0 {
				return nil
			}
			for _, e := range events {
				fmt.Fprintf(g.stdout, "%5d %s %-4s %-11s %s\n", e.Pos, e.At.UTC().Format("15:04:05"), e.Session, e.Type, eventLine(e))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&q.Campaign, "campaign", "", "campaign (admin)")
	f.StringVar(&q.Researcher, "researcher", "", "researcher (admin)")
	f.StringVar(&q.Session, "session", "", "one session only (s1, s2, …)")
	f.BoolVar(&asJSON, "json", false, "print every event as JSON")
	f.StringArrayVar(&plotTo, "plot", nil, "draw the researcher's submissions to FILE (.png or .svg; repeatable)")
	return c
}

func readTranscript(ctx context.Context, cl *labclient.Client, q labclient.TranscriptQuery) ([]labclient.TranscriptEntry, error) {
	var all []labclient.TranscriptEntry
	err := cl.TranscriptEach(ctx, q, func(e labclient.TranscriptEntry) error { all = append(all, e); return nil })
	return all, err
}

// eventLine is a one-line summary of a transcript event.
func eventLine(e labclient.TranscriptEntry) string {
	var d map[string]any
	_ = json.Unmarshal(e.Data, &d)
	short := func(v any, n int) string {
		s := strings.Join(strings.Fields(fmt.Sprint(v)), " ")
		if len(s) > n {
			s = s[:n] + "…"
		}
		return s
	}
	switch e.Type {
	case "tool_call":
		return fmt.Sprintf("%s %s", d["name"], short(d["input"], 140))
	case "tool_result":
		mark := "ok"
		if d["is_error"] == true {
			mark = "ERROR"
		}
		return fmt.Sprintf("%s %s: %s", d["name"], mark, short(d["text"], 120))
	case "usage":
		if e.Usage == nil {
			return ""
		}
		return fmt.Sprintf("%s in %d out %d cache r/w %d/%d $%.4f", d["model"], e.Usage.InputTokens, e.Usage.OutputTokens, e.Usage.CacheReadTokens, e.Usage.CacheWriteTokens, e.CostUSD)
	case "message":
		var texts []string
		if parts, ok := d["parts"].([]any); ok {
			for _, p := range parts {
				if m, ok := p.(map[string]any); ok && m["text"] != nil {
					texts = append(texts, fmt.Sprint(m["text"]))
				}
			}
		}
		return fmt.Sprintf("%s: %s", d["role"], short(strings.Join(texts, " "), 140))
	default:
		return short(string(e.Data), 160)
	}
}

// plotSubmissions draws released feedback PGR per submission.
func plotSubmissions(path string, subs []agent.SubmissionPoint) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return usagef("--plot %s: give a .png or .svg file", path)
	}
	p := plot.New()
	p.Title.Text = "Released feedback PGR per submission"
	p.X.Label.Text = "submission"
	p.Y.Label.Text = "PGR (overall, feedback split)"
	var one, multi plotter.XYs
	var errs plotter.YErrors
	lo, hi := 0.0, 1.0
	for i, s := range subs {
		if !s.Released {
			continue
		}
		pt := plotter.XY{X: float64(i + 1), Y: s.PGR}
		lo, hi = min(lo, s.PGR-s.SE), max(hi, s.PGR+s.SE)
		if s.Seeds > 1 {
			multi = append(multi, pt)
			errs = append(errs, struct{ Low, High float64 }{s.SE, s.SE})
		} else {
			one = append(one, pt)
		}
	}
	if len(one) > 0 {
		sc, err := plotter.NewScatter(one)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color = color.RGBA{R: 70, G: 110, B: 180, A: 255}
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(2.5)
		p.Add(sc)
		p.Legend.Add("one-seed screen", sc)
	}
	if len(multi) > 0 {
		sc, err := plotter.NewScatter(multi)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Color = color.RGBA{R: 200, G: 80, B: 40, A: 255}
		sc.GlyphStyle.Shape = draw.BoxGlyph{}
		sc.GlyphStyle.Radius = vg.Points(3.5)
		eb, err := plotter.NewYErrorBars(submissionErrors{multi, errs})
		if err != nil {
			return err
		}
		eb.LineStyle.Color = sc.GlyphStyle.Color
		p.Add(eb, sc)
		p.Legend.Add("multi-seed (mean ± SE)", sc)
	}
	p.Add(plotter.NewGrid())
	weak := plotter.NewFunction(func(float64) float64 { return 0 })
	weak.Color = color.Gray{Y: 120}
	ceil := plotter.NewFunction(func(float64) float64 { return 1 })
	ceil.Color = color.Gray{Y: 120}
	ceil.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(weak, ceil)
	p.Legend.Top, p.Legend.Left = true, true
	p.X.Min, p.X.Max = 0, float64(len(subs)+1)
	pad := 0.05 * (hi - lo)
	p.Y.Min, p.Y.Max = lo-pad, hi+pad
	return p.Save(160*vg.Millimeter, 100*vg.Millimeter, path)
}

type submissionErrors struct {
	plotter.XYs
	plotter.YErrors
}
