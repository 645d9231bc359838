package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/labclient"
)

// Comparison is a paired-bootstrap difference against a baseline on one
// holdout cell (from a Judge).
type Comparison struct {
	Group    string  `json:"group"`
	Estimate float64 `json:"estimate"`
	Lo       float64 `json:"lo"`
	Hi       float64 `json:"hi"`
}

// Judge compares a submission with a built-in baseline method trained on
// the same seeds, on the holdout split. It needs the labels, so only a lab
// that holds the testbed can offer one (aar run's embedded lab does).
type Judge func(ctx context.Context, submission, method string) ([]Comparison, error)

// ReportData is what the report says, as JSON.
type ReportData struct {
	Campaign    string                  `json:"campaign"`
	Testbed     string                  `json:"testbed"`
	SpecSHA256  string                  `json:"spec_sha256"`
	Researchers []ResearcherLine        `json:"researchers"`
	Best        *ResearcherLine         `json:"best,omitempty"`
	VsBaselines map[string][]Comparison `json:"vs_baselines,omitempty"`
	Results     []ResultLine            `json:"results"`
	// Verified ranks the verified results by their sealed re-run's PGR
	// (fresh seeds, rows no researcher saw), then the flagged and the
	// unverifiable ones.
	Verified    []VerifiedLine `json:"verified"`
	Submissions int            `json:"submissions"`
	Flagged     int            `json:"flagged"`
	USD         float64        `json:"usd"`
	CPUSeconds  float64        `json:"sandbox_cpu_seconds"`
	Files       []string       `json:"files"`
}

// ResearcherLine is a researcher's best submission (by released feedback
// PGR; ties go to more seeds) with its holdout figures.
type ResearcherLine struct {
	Name       string   `json:"researcher"`
	Direction  string   `json:"direction,omitempty"`
	Submission string   `json:"submission,omitempty"`
	Seeds      int      `json:"seeds"`
	Feedback   *float64 `json:"feedback_pgr"`
	Holdout    *float64 `json:"holdout_pgr"`
	HoldoutSE  float64  `json:"holdout_pgr_se"`
	HoldoutID  *float64 `json:"holdout_pgr_id"`
	HoldoutOOD *float64 `json:"holdout_pgr_ood"`
	Flags      int      `json:"flagged_submissions"`
	Count      int      `json:"submissions"`
	USD        float64  `json:"usd"`
	CPUSeconds float64  `json:"sandbox_cpu_seconds"`
}

// ResultLine is a posted result with its method card.
type ResultLine struct {
	ID         string  `json:"id"`
	Author     string  `json:"author"`
	Title      string  `json:"title"`
	Family     string  `json:"family"`
	PGR        float64 `json:"released_pgr"`
	Submission string  `json:"submission"`
	Snapshot   string  `json:"snapshot"`
	Summary    string  `json:"card_summary"`
	Components string  `json:"components"`
}

// VerifiedLine is a verified (or flagged) submission.
type VerifiedLine struct {
	Submission string                 `json:"submission"`
	Researcher string                 `json:"researcher"`
	Verdict    string                 `json:"verdict"`
	Sealed     *float64               `json:"sealed_pgr"`
	SealedLo   *float64               `json:"sealed_pgr_lo,omitempty"`
	SealedHi   *float64               `json:"sealed_pgr_hi,omitempty"`
	Claimed    *float64               `json:"claimed_pgr,omitempty"`
	Flags      []labclient.VerifyFlag `json:"flags,omitempty"`
	Labels     []string               `json:"labels,omitempty"`
}

// verifiedLines ranks a campaign's verifications: verified by sealed PGR,
// then flagged, then unverifiable.
func verifiedLines(subs []labclient.SubmissionInfo) []VerifiedLine {
	var out []VerifiedLine
	for _, s := range subs {
		v := s.Verify
		if v == nil {
			continue
		}
		l := VerifiedLine{Submission: s.ID, Researcher: s.Researcher, Verdict: v.Verdict, SealedLo: v.SealedLo, SealedHi: v.SealedHi, Claimed: v.Claimed, Flags: v.Flags, Labels: v.Labels}
		if v.Sealed != nil {
			m := v.Sealed.Mean
			l.Sealed = &m
		}
		out = append(out, l)
	}
	rank := map[string]int{"verified": 0, "flagged": 1}
	order := func(v string) int {
		if r, ok := rank[v]; ok {
			return r
		}
		return 2
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if order(a.Verdict) != order(b.Verdict) {
			return order(a.Verdict) < order(b.Verdict)
		}
		if (a.Sealed == nil) != (b.Sealed == nil) {
			return a.Sealed != nil
		}
		return a.Sealed != nil && *a.Sealed > *b.Sealed
	})
	return out
}

type point struct {
	at  time.Time
	pgr float64
	who string
}

// Report writes the campaign's report into dir: report.md and report.json
// (final leaderboard with feedback and holdout PGR, ID and OOD; results
// with their method cards and snapshots; submissions and flags; spend),
// the PGR frontier against time, researcher-hours and dollars and the
// spend over time (PNG and SVG each), and events.jsonl (every ledger event
// of the campaign). judge may be nil.
func Report(ctx context.Context, admin *labclient.Client, id, dir string, judge Judge) (*ReportData, error) {
	info, err := admin.Campaign(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("campaign %s: %w", id, err)
	}
	subs, err := admin.CampaignSubmissions(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var spec Spec
	_ = json.Unmarshal(info.Spec, &spec)
	directions := map[string]string{}
	for _, r := range spec.Researchers {
		directions[r.Name] = r.Direction
	}
	rep := &ReportData{Campaign: id, Testbed: info.Testbed, SpecSHA256: info.SpecSHA256, Submissions: len(subs)}

	// Per researcher: best submission, holdout figures, flags, spend.
	lines := map[string]*ResearcherLine{}
	for _, r := range info.Researchers {
		if r.Name == "baselines" {
			continue
		}
		lines[r.Name] = &ResearcherLine{Name: r.Name, Direction: directions[r.Name], USD: r.Spend.CostUSD, CPUSeconds: r.Spend.CPUSeconds}
		rep.USD += r.Spend.CostUSD
		rep.CPUSeconds += r.Spend.CPUSeconds
	}
	var feedbackPts, holdoutPts []point
	for _, s := range subs {
		l := lines[s.Researcher]
		if l == nil {
			continue
		}
		l.Count++
		flagged := len(s.Flags) > 2 && string(s.Flags) != "null"
		if flagged {
			l.Flags++
			rep.Flagged++
		}
		fb := releasedOverall(s.Feedback)
		if fb != nil && !flagged && s.Review != "disqualified" {
			feedbackPts = append(feedbackPts, point{s.At, *fb, s.Researcher})
		}
		ho := cell(s.Cells, "holdout", "overall")
		if ho != nil && s.Seeds >= 5 && s.Review != "disqualified" {
			holdoutPts = append(holdoutPts, point{s.At, ho.Mean, s.Researcher})
		}
		// A researcher's line is its best confirmed (≥ 5 seeds) submission
		// by released feedback PGR; without one, its best of any size.
		confirmed := s.Seeds >= 5
		better := fb != nil && s.Review != "disqualified" &&
			(l.Feedback == nil || confirmed && l.Seeds < 5 || (confirmed == (l.Seeds >= 5)) && (*fb > *l.Feedback || *fb == *l.Feedback && s.Seeds > l.Seeds))
		if better {
			l.Feedback, l.Submission, l.Seeds = fb, s.ID, s.Seeds
			l.Holdout, l.HoldoutSE = nil, 0
			if ho != nil {
				v := ho.Mean
				l.Holdout, l.HoldoutSE = &v, ho.SE
			}
			l.HoldoutID, l.HoldoutOOD = pgrOf(cell(s.Cells, "holdout", "id")), pgrOf(cell(s.Cells, "holdout", "ood"))
		}
	}
	for _, l := range lines {
		rep.Researchers = append(rep.Researchers, *l)
	}
	sort.Slice(rep.Researchers, func(i, j int) bool {
		ri, rj := rep.Researchers[i], rep.Researchers[j]
		a, b := ri.Feedback, rj.Feedback
		switch {
		case a == nil || b == nil:
			return a != nil
		case (ri.Seeds >= 5) != (rj.Seeds >= 5):
			return ri.Seeds >= 5
		case *a != *b:
			return *a > *b
		}
		return ri.Name < rj.Name
	})
	for i := range rep.Researchers {
		if l := rep.Researchers[i]; l.Seeds >= 5 && l.Holdout != nil {
			rep.Best = &rep.Researchers[i]
			break
		}
	}

	// Results with their cards.
	results, err := campaignResults(ctx, admin, id)
	if err != nil {
		return nil, err
	}
	rep.Results = results
	rep.Verified = verifiedLines(subs)

	// The best confirmed method against the baselines, where labels allow.
	if judge != nil && rep.Best != nil {
		rep.VsBaselines = map[string][]Comparison{}
		for _, m := range []string{"vanilla_w2s", "logconf"} {
			cmp, err := judge(ctx, rep.Best.Submission, m)
			if err != nil {
				return nil, fmt.Errorf("compare with %s: %w", m, err)
			}
			rep.VsBaselines[m] = cmp
		}
	}

	// Pictures.
	start := info.Created
	spans, spend, err := researcherSpans(ctx, admin, id, info)
	if err != nil {
		return nil, err
	}
	for _, ext := range []string{"png", "svg"} {
		files := []struct {
			name string
			f    func(string) error
		}{
			{"frontier-time." + ext, func(p string) error {
				return frontierPlot(p, "PGR frontier over time", "minutes since the campaign started", feedbackPts, holdoutPts,
					func(t time.Time) float64 { return t.Sub(start).Minutes() })
			}},
			{"frontier-researcher-hours." + ext, func(p string) error {
				return frontierPlot(p, "PGR frontier against researcher-hours", "researcher-hours", feedbackPts, holdoutPts,
					func(t time.Time) float64 { return spans.hoursAt(t) })
			}},
			{"spend." + ext, func(p string) error { return spendPlot(p, spend, start, rep.USD > 0) }},
		}
		if rep.USD > 0 {
			files = append(files, struct {
				name string
				f    func(string) error
			}{"frontier-dollars." + ext, func(p string) error {
				return frontierPlot(p, "PGR frontier against dollars spent", "dollars (all researchers)", feedbackPts, holdoutPts,
					func(t time.Time) float64 { return spend.usdAt(t) })
			}})
		}
		for _, f := range files {
			if err := f.f(filepath.Join(dir, f.name)); err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			rep.Files = append(rep.Files, f.name)
		}
	}

	// Every event of the campaign.
	ev, err := os.Create(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	if err := admin.ExportEvents(ctx, id, 0, ev); err != nil {
		ev.Close()
		return nil, fmt.Errorf("export events: %w", err)
	}
	if err := ev.Close(); err != nil {
		return nil, err
	}
	rep.Files = append(rep.Files, "events.jsonl", "report.md", "report.json")
	if err := writeMarkdown(filepath.Join(dir, "report.md"), rep, info); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return rep, nil
}

func cell(cells []labclient.CellInfo, split, group string) *labclient.Summary {
	for _, c := range cells {
		if c.Split == split && c.Group == group {
			return c.PGR
		}
	}
	return nil
}

func pgrOf(s *labclient.Summary) *float64 {
	if s == nil {
		return nil
	}
	v := s.Mean
	return &v
}

// releasedOverall reads the overall PGR a feedback answer released.
func releasedOverall(fb json.RawMessage) *float64 {
	if v, _, ok := labclient.FeedbackPGR(fb); ok {
		return &v
	}
	return nil
}

func campaignResults(ctx context.Context, admin *labclient.Client, id string) ([]ResultLine, error) {
	var out []ResultLine
	var since int64
	for {
		var page struct {
			Findings []struct {
				ID, Author, Type, Title, Family, Submission, Snapshot string
				Metrics                                               json.RawMessage
				Card                                                  *struct {
					Summary    string `json:"summary"`
					Components []struct {
						Name     string `json:"name"`
						Ablation string `json:"ablation"`
					} `json:"components"`
				}
			} `json:"findings"`
			Next int64 `json:"next"`
		}
		if _, err := admin.Do(ctx, "GET", fmt.Sprintf("/v1/findings?campaign=%s&since=%d&limit=500", id, since), nil, &page, nil); err != nil {
			return nil, fmt.Errorf("findings: %w", err)
		}
		for _, f := range page.Findings {
			if f.Type != "result" {
				continue
			}
			r := ResultLine{ID: f.ID, Author: f.Author, Title: f.Title, Family: f.Family, PGR: forum.ReleasedPGR(f.Metrics), Submission: f.Submission, Snapshot: f.Snapshot}
			if f.Card != nil {
				r.Summary = f.Card.Summary
				var cs []string
				for _, c := range f.Card.Components {
					cs = append(cs, c.Name)
				}
				r.Components = strings.Join(cs, "; ")
			}
			out = append(out, r)
		}
		if page.Next == since {
			break
		}
		since = page.Next
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PGR > out[j].PGR })
	return out, nil
}

// spans are the researchers' active intervals, from their transcripts.
type spans [][2]time.Time

func (s spans) hoursAt(t time.Time) float64 {
	h := 0.0
	for _, sp := range s {
		if t.After(sp[0]) {
			end := sp[1]
			if t.Before(end) {
				end = t
			}
			h += end.Sub(sp[0]).Hours()
		}
	}
	return h
}

// spendSeries is cumulative spend (dollars and sandbox CPU) over time.
type spendSeries struct {
	at  []time.Time
	usd []float64
	cpu []float64
}

func (s spendSeries) usdAt(t time.Time) float64 {
	i := sort.Search(len(s.at), func(i int) bool { return s.at[i].After(t) })
	if i == 0 {
		return 0
	}
	return s.usd[i-1]
}

// researcherSpans reads every researcher's transcript for its active span
// and its spend over time.
func researcherSpans(ctx context.Context, admin *labclient.Client, id string, info labclient.CampaignInfo) (spans, spendSeries, error) {
	type ev struct {
		at       time.Time
		usd, cpu float64
	}
	var sp spans
	var evs []ev
	for _, r := range info.Researchers {
		var first, last time.Time
		err := admin.TranscriptEach(ctx, labclient.TranscriptQuery{Campaign: id, Researcher: r.Name}, func(e labclient.TranscriptEntry) error {
			if first.IsZero() {
				first = e.At
			}
			last = e.At
			if e.CostUSD > 0 || e.CPUSeconds > 0 {
				evs = append(evs, ev{e.At, e.CostUSD, e.CPUSeconds})
			}
			return nil
		})
		if err != nil {
			return nil, spendSeries{}, err
		}
		if !first.IsZero() {
			sp = append(sp, [2]time.Time{first, last})
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	var ss spendSeries
	var usd, cpu float64
	for _, e := range evs {
		usd += e.usd
		cpu += e.cpu
		ss.at = append(ss.at, e.at)
		ss.usd = append(ss.usd, usd)
		ss.cpu = append(ss.cpu, cpu)
	}
	return sp, ss, nil
}

var (
	blue   = color.RGBA{R: 50, G: 100, B: 180, A: 255}
	orange = color.RGBA{R: 210, G: 100, B: 30, A: 255}
)

// frontierPlot draws the best PGR so far (released feedback, and holdout
// of ≥ 5-seed submissions) against x(t).
func frontierPlot(path, title, xlabel string, feedback, holdout []point, x func(time.Time) float64) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "best PGR so far (0 = weak, 1 = ceiling)"
	add := func(pts []point, label string, col color.Color) error {
		if len(pts) == 0 {
			return nil
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].at.Before(pts[j].at) })
		var xy plotter.XYs
		best := math.Inf(-1)
		for _, pt := range pts {
			if pt.pgr > best {
				if len(xy) > 0 {
					xy = append(xy, plotter.XY{X: x(pt.at), Y: best})
				}
				best = pt.pgr
				xy = append(xy, plotter.XY{X: x(pt.at), Y: best})
			}
		}
		xy = append(xy, plotter.XY{X: x(pts[len(pts)-1].at), Y: best})
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = col
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(label, l)
		return nil
	}
	if err := add(feedback, "released feedback PGR", blue); err != nil {
		return err
	}
	if err := add(holdout, "holdout PGR (≥ 5 seeds, admin)", orange); err != nil {
		return err
	}
	ref(p)
	p.Legend.Top, p.Legend.Left = false, true
	return p.Save(160*vg.Millimeter, 100*vg.Millimeter, path)
}

// ref marks the weak teacher (0) and the ceiling (1).
func ref(p *plot.Plot) {
	p.Add(plotter.NewGrid())
	weak := plotter.NewFunction(func(float64) float64 { return 0 })
	weak.Color = color.Gray{Y: 120}
	ceil := plotter.NewFunction(func(float64) float64 { return 1 })
	ceil.Color = color.Gray{Y: 120}
	ceil.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(weak, ceil)
	p.Y.Min = math.Min(p.Y.Min, -0.05)
	p.Y.Max = math.Max(p.Y.Max, 1.05)
}

// spendPlot draws cumulative dollars (or sandbox CPU time when nothing was
// paid) over time.
func spendPlot(path string, s spendSeries, start time.Time, dollars bool) error {
	p := plot.New()
	p.Title.Text = "Spend over time (all researchers)"
	p.X.Label.Text = "minutes since the campaign started"
	ys := s.cpu
	p.Y.Label.Text = "sandbox CPU seconds"
	if dollars {
		ys, p.Y.Label.Text = s.usd, "dollars"
	}
	xy := plotter.XYs{{X: 0, Y: 0}}
	for i, t := range s.at {
		xy = append(xy, plotter.XY{X: t.Sub(start).Minutes(), Y: ys[i]})
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.Color = blue
	l.Width = vg.Points(1.5)
	p.Add(l, plotter.NewGrid())
	return p.Save(160*vg.Millimeter, 90*vg.Millimeter, path)
}

// FormatPGR shows a PGR to three places, or — when there is none.
func FormatPGR(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.3f", *v)
}

func writeMarkdown(path string, rep *ReportData, info labclient.CampaignInfo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Campaign %s on `%s`\n\nSpec SHA-256 `%s` (in the ledger). %d submissions (%d flagged), $%.2f spent, %.0f s of sandbox CPU.\n\n",
		rep.Campaign, rep.Testbed, rep.SpecSHA256, rep.Submissions, rep.Flagged, rep.USD, rep.CPUSeconds)
	b.WriteString("## Final leaderboard\n\nEach researcher's best confirmed submission (≥ 5 seeds; without one, its best of any size) by released feedback PGR, with its holdout PGR (admins only; never released to researchers).\n\n")
	b.WriteString("| researcher | submission | seeds | feedback PGR | holdout PGR | holdout ID | holdout OOD | submissions (flagged) | $ | CPU s |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, l := range rep.Researchers {
		ho := FormatPGR(l.Holdout)
		if l.Holdout != nil {
			ho = fmt.Sprintf("%.3f ± %.3f", *l.Holdout, l.HoldoutSE)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %d (%d) | %.2f | %.0f |\n", l.Name, l.Submission, l.Seeds, FormatPGR(l.Feedback), ho,
			FormatPGR(l.HoldoutID), FormatPGR(l.HoldoutOOD), l.Count, l.Flags, l.USD, l.CPUSeconds)
	}
	if rep.Best != nil && len(rep.VsBaselines) > 0 {
		fmt.Fprintf(&b, "\n## The best confirmed method against the baselines (holdout)\n\n%s's %s (%d seeds), against each baseline trained on the same seeds; paired bootstrap over holdout rows (2,000 resamples), 95%% interval, `*` = excludes 0.\n\n| baseline | cell | Δ PGR [95%% CI] |\n|---|---|---|\n",
			rep.Best.Name, rep.Best.Submission, rep.Best.Seeds)
		for _, m := range []string{"vanilla_w2s", "logconf"} {
			for _, c := range rep.VsBaselines[m] {
				star := ""
				if c.Lo > 0 || c.Hi < 0 {
					star = " *"
				}
				fmt.Fprintf(&b, "| %s | %s | %+.3f [%+.3f, %+.3f]%s |\n", m, c.Group, c.Estimate, c.Lo, c.Hi, star)
			}
		}
	}
	b.WriteString("\n## Verified results, ranked by sealed PGR\n\n")
	if len(rep.Verified) == 0 {
		b.WriteString("No result was verified (aar verify SUBMISSION re-runs one).\n")
	} else {
		b.WriteString("Each method re-run from its snapshot by `aar verify`: its claimed seeds replayed, then fresh seeds on the sealed partition (rows no researcher saw, lab-made weak labels); 95% bootstrap interval over rows and seeds. Flagged results are held for review.\n\n| submission | researcher | verdict | sealed PGR [95% CI] | claimed feedback PGR | flags and labels |\n|---|---|---|---|---|---|\n")
		for _, v := range rep.Verified {
			sealed := FormatPGR(v.Sealed)
			if v.Sealed != nil && v.SealedLo != nil && v.SealedHi != nil {
				sealed = fmt.Sprintf("%.3f [%.3f, %.3f]", *v.Sealed, *v.SealedLo, *v.SealedHi)
			}
			var notes []string
			for _, f := range v.Flags {
				notes = append(notes, "**"+f.Kind+"**: "+strings.ReplaceAll(f.Reason, "|", "/"))
			}
			notes = append(notes, v.Labels...)
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", v.Submission, v.Researcher, v.Verdict, sealed, FormatPGR(v.Claimed), strings.Join(notes, "; "))
		}
	}
	b.WriteString("\n## Results posted, with their method cards\n\n")
	if len(rep.Results) == 0 {
		b.WriteString("No result was posted.\n")
	}
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "- **%s** (%s, %s): released PGR %.3f — %s. Components: %s. Submission `%s`, snapshot `%s`, finding `%s`.\n",
			r.Title, r.Author, r.Family, r.PGR, r.Summary, r.Components, r.Submission, r.Snapshot, r.ID)
	}
	b.WriteString("\n## Pictures\n\n![frontier over time](frontier-time.png)\n\n![frontier against researcher-hours](frontier-researcher-hours.png)\n\n")
	if rep.USD > 0 {
		b.WriteString("![frontier against dollars](frontier-dollars.png)\n\n")
	}
	b.WriteString("![spend over time](spend.png)\n\nEvery ledger event of the campaign is in `events.jsonl`.\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
