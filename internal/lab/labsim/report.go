package labsim

import (
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Report is a set of runs and how they were made.
type Report struct {
	Command   string    `json:"command"`
	Date      string    `json:"date"`
	Machine   Machine   `json:"machine"`
	Duration  string    `json:"duration_per_run"`
	Transport string    `json:"transport"`
	Mix       Mix       `json:"mix"`
	Runs      []*Result `json:"runs"`
}

// Machine describes where the runs ran.
type Machine struct {
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu,omitempty"`
	Go         string `json:"go"`
	OS         string `json:"os"`
}

// ThisMachine describes the machine running this process.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// WriteFiles writes DIR/BASE.md, .json, .svg and .png.
func (r *Report) WriteFiles(dir, base string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, base+".json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, base+".md"), []byte(r.Markdown(base+".svg")), 0o644); err != nil {
		return err
	}
	for _, ext := range []string{".svg", ".png"} {
		if err := Plot(filepath.Join(dir, base+ext), r.Runs); err != nil {
			return fmt.Errorf("plot %s: %w", base+ext, err)
		}
	}
	return nil
}

// stores lists the stores of runs in first-seen order.
func stores(runs []*Result) []string {
	var out []string
	for _, r := range runs {
		if !slices.Contains(out, r.Store) {
			out = append(out, r.Store)
		}
	}
	return out
}

// largest is a store's run with the most researchers.
func largest(runs []*Result, store string) *Result {
	var best *Result
	for _, r := range runs {
		if r.Store == store && (best == nil || r.Researchers > best.Researchers) {
			best = r
		}
	}
	return best
}

// Markdown renders the tables; plot names the chart to embed ("" for none).
func (r *Report) Markdown(plotFile string) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# Lab throughput as researchers are added\n\n")
	fmt.Fprintf(&b, "Made by `%s` on %s. Machine: %d cores (%s), GOMAXPROCS %d, %s, %s. ", r.Command, r.Date, m.Cores, m.CPU, m.GOMAXPROCS, m.Go, m.OS)
	fmt.Fprintf(&b, "Each run is a fresh lab on a synthetic %d-row testbed and N scripted researchers (own token, own connection; transport: %s) in a closed loop with no think time for %s. ",
		firstRows(r.Runs), r.Transport, r.Duration)
	fmt.Fprintf(&b, "The researchers and the lab share this machine's cores (and PostgreSQL does too), so the figures are a floor for a lab on its own machine; *load* is the one-minute load average at the end of each run (above %d, other work competed for the cores).\n\n", m.Cores)
	if plotFile != "" {
		fmt.Fprintf(&b, "![requests/s, submissions/s and p99 latency vs researchers](%s)\n\n", plotFile)
	}

	b.WriteString("## Summary\n\n")
	b.WriteString("| store | researchers | requests/s | submissions/s | p50 ms | p99 ms | submit p99 ms | errors | ledger events/s | ledger KB/s | append busy | append p99 ms | CPU cores (process / machine) | load | steps per researcher (min–max) |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, x := range r.Runs {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %d | %s | %s | %.0f%% | %s | %.2f / %.2f | %.1f | %d–%d |\n",
			x.Store, x.Researchers, num(x.RequestsPerSec), num(x.SubmissionsPerSec), num(x.P50Ms), num(x.P99Ms), num(x.Kind(KindSubmit).P99Ms),
			x.Errors, num(x.Ledger.EventsPerSec), num(x.Ledger.BytesPerSec/1024), 100*x.Ledger.AppendBusy, num(x.Ledger.AppendP99Ms),
			x.CPU.Process, x.CPU.Machine, x.CPU.Load1, x.StepsMin, x.StepsMax)
	}
	b.WriteString("\n")

	for _, st := range stores(r.Runs) {
		x := largest(r.Runs, st)
		fmt.Fprintf(&b, "## %s, %d researchers: per kind of request\n\n", st, x.Researchers)
		b.WriteString("Latency is what the researcher saw; *in lab* is the mean time inside the lab's handler (waiting for its locks included) and its share of all handler time.\n\n")
		b.WriteString("| kind | share of requests | requests/s | p50 ms | p99 ms | max ms | in lab, mean ms | share of lab time | errors |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, k := range x.Kinds {
			fmt.Fprintf(&b, "| %s | %.1f%% | %s | %s | %s | %s | %s | %.1f%% | %d |\n", k.Kind, 100*k.Share, num(k.PerSec), num(k.P50Ms), num(k.P99Ms), num(k.MaxMs),
				num(k.ServerMeanMs), 100*k.ServerShare, k.Errors)
		}
		fmt.Fprintf(&b, "\nLedger: %d events in %d appends (%.1f events each), %s of bodies; appends busy %.0f%% of the time, mean %s ms, p99 %s ms. Store grew %s; snapshot store %s. Forum store busy %.2f (mean calls in progress)",
			x.Ledger.Events, x.Ledger.Appends, x.Ledger.EventsPerAppend, mb(x.Ledger.BodyBytes), 100*x.Ledger.AppendBusy, num(x.Ledger.AppendMeanMs), num(x.Ledger.AppendP99Ms),
			mb(x.StoreBytes), mb(x.SnapshotBytes), x.Forum.Busy)
		for i, op := range x.Forum.Ops {
			sep := ", "
			if i == 0 {
				sep = ": "
			}
			fmt.Fprintf(&b, "%s%s %d × %s ms", sep, op.Op, op.Calls, num(op.MeanMs))
		}
		fmt.Fprintf(&b, ". Peak requests inside the lab at once: %d. CPU: %.2f ms of this process per request. A restart reads the %d-event ledger back in %.2f s (%s events/s) into %s of heap.\n\n",
			x.PeakInflight, x.CPU.ProcessPerRq, x.Replay.Events, x.Replay.Seconds, num(x.Replay.EventsPerSec), mb(x.Replay.HeapBytes))
		b.WriteString("| ledger event kind | events | MB | bytes/event | share of bytes |\n|---|--:|--:|--:|--:|\n")
		for _, k := range x.Ledger.ByKind {
			fmt.Fprintf(&b, "| %s | %d | %.2f | %s | %.1f%% |\n", k.Kind, k.Events, float64(k.Bytes)/(1<<20), num(float64(k.Bytes)/float64(max(1, k.Events))),
				100*float64(k.Bytes)/float64(max(1, x.Ledger.BodyBytes)))
		}
		b.WriteString("\n")
	}

	for _, st := range stores(r.Runs) {
		var runs []*Result
		for _, x := range r.Runs {
			if x.Store == st {
				runs = append(runs, x)
			}
		}
		fmt.Fprintf(&b, "## %s: p99 ms per kind vs researchers\n\n| kind |", st)
		for _, x := range runs {
			fmt.Fprintf(&b, " %d |", x.Researchers)
		}
		b.WriteString("\n|---|" + strings.Repeat("--:|", len(runs)) + "\n")
		for _, k := range Kinds {
			fmt.Fprintf(&b, "| %s |", k)
			for _, x := range runs {
				if kr := x.Kind(k); kr.Requests > 0 {
					fmt.Fprintf(&b, " %s |", num(kr.P99Ms))
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if len(r.Runs) > 0 {
		for _, x := range r.Runs {
			if len(x.FirstErrors) > 0 {
				fmt.Fprintf(&b, "Errors (%s, %d researchers): %s\n\n", x.Store, x.Researchers, strings.Join(x.FirstErrors, "; "))
			}
		}
	}
	return b.String()
}

func firstRows(runs []*Result) int {
	if len(runs) == 0 {
		return 0
	}
	return runs[0].TestRows
}

// num prints a figure with about three significant digits.
func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// storeColors are the plot's line colours per store (Okabe–Ito, as the
// baseline chart uses).
var storeColors = map[string]color.Color{
	StoreSQLite:   color.RGBA{0, 114, 178, 255},
	StorePostgres: color.RGBA{230, 159, 0, 255},
}

// Plot draws requests/s, submissions scored/s and p99 latency against the
// number of researchers (log scales), a line per store, to path (.svg or
// .png).
func Plot(path string, runs []*Result) error {
	ext := strings.TrimPrefix(filepath.Ext(path), ".")
	if ext != "svg" && ext != "png" {
		return fmt.Errorf("%s: give a .svg or .png file", path)
	}
	panels := []struct {
		title, y string
		log      bool // a log y axis (else linear from 0)
		v        func(*Result) float64
		dashed   func(*Result) float64
	}{
		{"requests/s (all kinds)", "requests/s", false, func(x *Result) float64 { return x.RequestsPerSec }, nil},
		{"submissions scored/s", "submissions/s", false, func(x *Result) float64 { return x.SubmissionsPerSec }, nil},
		{"p99 latency (solid: all; dashed: submit)", "ms", true, func(x *Result) float64 { return x.P99Ms },
			func(x *Result) float64 { return x.Kind(KindSubmit).P99Ms }},
	}
	var ns []int
	for _, x := range runs {
		if !slices.Contains(ns, x.Researchers) {
			ns = append(ns, x.Researchers)
		}
	}
	slices.Sort(ns)
	var ticks []plot.Tick
	for _, n := range ns {
		ticks = append(ticks, plot.Tick{Value: float64(n), Label: strconv.Itoa(n)})
	}
	row := make([]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "researchers"
		p.Y.Label.Text = pn.y
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		if pn.log {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top, p.Legend.Left = true, true
		top := 0.0
		for _, st := range stores(runs) {
			var solid, dashed plotter.XYs
			for _, x := range runs {
				if x.Store != st {
					continue
				}
				if v := pn.v(x); v > 0 {
					solid = append(solid, plotter.XY{X: float64(x.Researchers), Y: v})
					top = max(top, v)
				}
				if pn.dashed != nil {
					if v := pn.dashed(x); v > 0 {
						dashed = append(dashed, plotter.XY{X: float64(x.Researchers), Y: v})
					}
				}
			}
			col := storeColors[st]
			for j, pts := range []plotter.XYs{solid, dashed} {
				if len(pts) == 0 {
					continue
				}
				l, s, err := plotter.NewLinePoints(pts)
				if err != nil {
					return err
				}
				l.Color, s.Color, s.Shape = col, col, draw.CircleGlyph{}
				l.Width = vg.Points(1.5)
				if j == 1 {
					l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
					s.Shape = draw.BoxGlyph{}
				}
				p.Add(l, s)
				if j == 0 {
					p.Legend.Add(st, l, s)
				}
			}
		}
		if pn.log {
			p.Y.Max *= 4 // room for the legend
		} else {
			p.Y.Min, p.Y.Max = 0, 1.3*top
		}
		row[i] = p
	}
	w, h := 300*vg.Millimeter, 95*vg.Millimeter
	var c vg.CanvasWriterTo = vgsvg.New(w, h)
	if ext == "png" {
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(150))}
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: 8 * vg.Millimeter, PadTop: 3 * vg.Millimeter, PadBottom: 3 * vg.Millimeter,
		PadLeft: 3 * vg.Millimeter, PadRight: 3 * vg.Millimeter}
	dc := draw.New(c)
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
