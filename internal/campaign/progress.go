package campaign

import (
	"fmt"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/labclient"
)

// row is one researcher's line of the live view.
type row struct {
	Name        string   `json:"researcher"`
	State       string   `json:"state"`
	Action      string   `json:"action,omitempty"`
	Best        *float64 `json:"best_feedback_pgr"`
	Submissions int      `json:"submissions"`
	USD         float64  `json:"usd"`
	Tokens      int64    `json:"tokens"`
	CPUSeconds  float64  `json:"sandbox_cpu_seconds"`
	ToolCalls   int64    `json:"tool_calls"`
}

// rows joins the lab's figures with the workers' states, in launch order.
func (s *Supervisor) rows(info labclient.CampaignInfo) ([]row, *row) {
	byName := map[string]labclient.ResearcherInfo{}
	for _, r := range info.Researchers {
		byName[r.Name] = r
	}
	s.mu.Lock()
	names := append([]string(nil), s.order...)
	ws := make([]*worker, len(names))
	for i, n := range names {
		ws[i] = s.workers[n]
	}
	s.mu.Unlock()
	var out []row
	var best *row
	for i, n := range names {
		action, state, reason := ws[i].get()
		ri := byName[n]
		if ri.State == "paused" && state == "running" {
			state = "paused"
		}
		if state == "finished" || state == "failed" || state == "stopped" {
			action = reason
		}
		r := row{Name: n, State: state, Action: action, Best: ri.BestFeedbackPGR, Submissions: ri.Submissions, USD: ri.Spend.CostUSD,
			Tokens:     ri.Spend.InputTokens + ri.Spend.OutputTokens + ri.Spend.CacheReadTokens + ri.Spend.CacheWriteTokens,
			CPUSeconds: ri.Spend.CPUSeconds, ToolCalls: ri.Spend.ToolCalls}
		out = append(out, r)
		if r.Best != nil && (best == nil || *r.Best > *best.Best) {
			b := r
			best = &b
		}
	}
	return out, best
}

// draw shows the live view: in place on a TTY, as periodic blocks
// otherwise, as a "progress" event with --json.
func (s *Supervisor) draw(info labclient.CampaignInfo, final bool) {
	rows, best := s.rows(info)
	el := time.Since(s.start).Round(time.Second)
	if s.o.JSON {
		f := map[string]any{"campaign": s.id, "elapsed_s": el.Seconds(), "researchers": rows, "final": final}
		if best != nil {
			f["frontier"] = map[string]any{"pgr": *best.Best, "researcher": best.Name}
		}
		s.events.emit("progress", f)
		return
	}
	var b strings.Builder
	frontier := "no released PGR yet"
	if best != nil {
		frontier = fmt.Sprintf("frontier PGR %.3f (%s)", *best.Best, best.Name)
	}
	left := ""
	if !s.deadline.IsZero() {
		left = fmt.Sprintf(" · %s left", time.Until(s.deadline).Round(time.Second))
	}
	fmt.Fprintf(&b, "campaign %s · %s · %d researchers · %s%s · %s (0 = weak, 1 = ceiling)\n", s.id, s.spec.Testbed, len(rows), el, left, frontier)
	width := 8
	for _, r := range rows {
		width = max(width, len(r.Name))
	}
	for _, r := range rows {
		bestS := "  —  "
		if r.Best != nil {
			bestS = fmt.Sprintf("%.3f", *r.Best)
		}
		action := r.Action
		if n := 70; len(action) > n {
			action = action[:n] + "…"
		}
		fmt.Fprintf(&b, "  %-*s %-8s best %s  subs %3d  $%.2f  %6.0f s cpu  %s\n", width, r.Name, r.State, bestS, r.Submissions, r.USD, r.CPUSeconds, action)
	}
	text := b.String()
	if s.o.TTY && !final {
		if s.drawn > 0 {
			fmt.Fprintf(s.o.Progress, "\x1b[%dA", s.drawn)
		}
		for _, line := range strings.SplitAfter(text, "\n") {
			if line != "" {
				fmt.Fprintf(s.o.Progress, "\x1b[2K%s", line)
			}
		}
		s.drawn = strings.Count(text, "\n")
		return
	}
	if s.o.TTY && s.drawn > 0 {
		fmt.Fprintf(s.o.Progress, "\x1b[%dA", s.drawn)
		for _, line := range strings.SplitAfter(text, "\n") {
			if line != "" {
				fmt.Fprintf(s.o.Progress, "\x1b[2K%s", line)
			}
		}
		s.drawn = 0
		return
	}
	fmt.Fprintf(s.o.Progress, "[%s]\n%s", time.Now().UTC().Format("15:04:05"), text)
}
