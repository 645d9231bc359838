package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/aar-lab/aar/internal/labclient"
)

// chromium finds Debian's chromium (installed by .ci/run).
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
	return ""
}

// TestDashboardInBrowser drives the dashboard in headless Chromium: log in,
// start a scripted campaign from the form, watch its frontier draw, pause a
// researcher, open a transcript (and a 100,000-event one: first paint
// measured), disqualify a flagged result and see it leave the leaderboard.
// Screenshots of each page go to $AAR_SCREENSHOTS (default: a temp dir).
func TestDashboardInBrowser(t *testing.T) {
	needSandbox(t)
	chrome := chromium(t)
	data := runData(t)
	bin := buildAar(t)
	shots := os.Getenv("AAR_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	os.MkdirAll(shots, 0o755)

	// A real lab process, as a user starts it.
	_, admin, base := startLabProcess(t, bin, "--data", data)
	// Before the lab goes (cleanups run last-in first-out): stop the
	// campaign and let its processes end, so its sandboxes are gone.
	t.Cleanup(func() {
		if cl, err := labclient.New("unix://"+filepath.Join(data, "lab.sock"), admin); err == nil {
			cl.Control(context.Background(), "e2e", labclient.ControlRequest{Action: "stop"})
		}
		for range 300 {
			if len(processesMentioning(filepath.Join(data, "sandboxes"))) == 0 && len(processesMentioning(" run --data "+data)) == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Log("the campaign's processes did not end in 30 s")
	})

	// Two scripted researchers make identical 5-seed submissions: the
	// second is flagged as a near-duplicate of the first.
	script := filepath.Join(t.TempDir(), "turns.jsonl")
	os.WriteFile(script, []byte(`{"text": "Training five seeds.", "calls": [{"name": "bash", "input": {"command": "for s in 42 43 44 45 46; do aar w2s train --view /data --seed $s --out p/$s.jsonl 2>/dev/null; done; ls p"}}], "usage": {"input_tokens": 500, "output_tokens": 50}}
{"calls": [{"name": "submit_predictions", "input": {"files": ["p/42.jsonl", "p/43.jsonl", "p/44.jsonl", "p/45.jsonl", "p/46.jsonl"], "note": "vanilla"}}], "usage": {"input_tokens": 600, "output_tokens": 40}}
{"calls": [{"name": "share_finding", "input": {"type": "result", "title": "vanilla on five seeds", "family": "other", "body": "the plain student", "card": {"summary": "vanilla W2S", "pseudocode": "aar w2s train", "components": [{"name": "student", "ablation": "none"}], "inputs": ["weak labels", "strong representation"]}}}], "usage": {"input_tokens": 700, "output_tokens": 60}}
{"calls": [{"name": "bash", "input": {"command": "sleep 1; echo waiting"}}], "usage": {"input_tokens": 100, "output_tokens": 10}}
{"calls": [{"name": "bash", "input": {"command": "sleep 1; echo waiting again"}}], "usage": {"input_tokens": 100, "output_tokens": 10}}
{"text": "Done.", "usage": {"input_tokens": 100, "output_tokens": 10}}
`), 0o644)

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644)
		}
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	html := func(sel string) string {
		t.Helper()
		// A form's submit navigates: until the new page has loaded, a read
		// can land on the old one's destroyed context ("Cannot find
		// context with specified id"); read again.
		var err error
		for range 20 {
			var h string
			if h, err = chromedp.Run(ctx, chromedp.OuterHTML(sel)); err == nil {
				return h
			}
			if !strings.Contains(err.Error(), "Cannot find context") {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("read %s: %v", sel, err)
		return ""
	}

	run("log in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(`input[name=token]`),
		chromedp.SendKeys(`input[name=token]`, admin), chromedp.Submit(`input[name=token]`),
		chromedp.WaitVisible(`#new-campaign`), shot("1-campaigns"))
	run("start a campaign from the form", chromedp.Click(`#new-campaign`), chromedp.WaitVisible(`#start`),
		chromedp.SetValue(`input[name=name]`, "e2e"), chromedp.SetValue(`select[name=testbed]`, "toy"),
		chromedp.SetValue(`input[name=researchers]`, "2"), chromedp.SetValue(`select[name=backend]`, "scripted"),
		chromedp.SetValue(`input[name=script]`, script), chromedp.SetValue(`input[name=latency]`, "1s"),
		shot("2-new-campaign"), chromedp.Click(`#start`), chromedp.WaitVisible(`#live`))
	// The frontier is drawn once a submission has a released PGR (live
	// updates over server-sent events; no reload).
	run("watch the frontier", chromedp.WaitVisible(`#live svg path.frontier`), shot("3-campaign"))
	// Both researchers submit the same predictions: the second is flagged.
	adm, _ := labclient.New("unix://"+filepath.Join(data, "lab.sock"), admin)
	var flagged string
	for deadline := time.Now().Add(60 * time.Second); ; {
		subs, err := adm.CampaignSubmissions(context.Background(), "e2e")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			if len(s.Flags) > 2 && string(s.Flags) != "null" && s.Seeds == 5 {
				flagged = s.ID
			}
		}
		if flagged != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if flagged == "" {
		t.Fatal("no flagged 5-seed submission to review")
	}
	run("pause a researcher", chromedp.SetValue(`select[name=action]`, "pause"), chromedp.SetValue(`input[name=researcher]`, "reweight"),
		chromedp.Click(`form.row button`), chromedp.WaitVisible(`#live`))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if strings.Contains(html(`#live`), `class="state-paused">paused`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reweight never showed as paused")
		}
		time.Sleep(500 * time.Millisecond)
	}
	run("open a transcript", chromedp.Click(`a[href$="/researchers/elicit/transcript"]`), chromedp.WaitVisible(`ol.events li.ev`), shot("4-transcript"))

	// A 100,000-event transcript: the first paint of its page.
	tok, err := adm.CreateToken(context.Background(), "longtalk", "e2e")
	if err != nil {
		t.Fatal(err)
	}
	long, _ := labclient.New("unix://"+filepath.Join(data, "lab.sock"), tok)
	batch := make([]labclient.TranscriptEvent, 500)
	for i := range 200 {
		for j := range batch {
			batch[j] = labclient.TranscriptEvent{Session: "s1", Type: "tool_result", Data: []byte(fmt.Sprintf(`{"name": "bash", "text": "line %d"}`, i*500+j))}
		}
		if _, err := long.AppendTranscript(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	run("open the 100,000-event transcript", chromedp.Navigate(base+"/campaigns/e2e/researchers/longtalk/transcript"), chromedp.WaitVisible(`ol.events li.ev`),
		shot("5-long-transcript"))
	paint, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(performance.getEntriesByName("first-contentful-paint")[0] || performance.getEntriesByType("paint")[0] || {startTime: -1}).startTime`))
	if err != nil {
		t.Fatal(err)
	}
	if paint < 0 || paint > 1000 {
		t.Errorf("first paint of the 100,000-event transcript: %.0f ms (target ≤ 1,000)", paint)
	}
	t.Logf("100,000-event transcript: first contentful paint %.0f ms", paint)

	// Review: the flagged result, disqualified, leaves the leaderboard.
	run("the leaderboard lists it", chromedp.Navigate(base+"/campaigns/e2e"), chromedp.WaitVisible(`#best-submissions`))
	if board := html(`#best-submissions`); !strings.Contains(board, flagged) {
		t.Fatalf("the flagged submission %s is not on the admin leaderboard", flagged)
	}
	run("disqualify it", chromedp.Click(`#review-link`), chromedp.WaitVisible(`a[href$="/review/`+flagged+`"]`), shot("6-review-queue"),
		chromedp.Click(`a[href$="/review/`+flagged+`"]`), chromedp.WaitVisible(`#disqualify`), shot("7-review-item"),
		chromedp.SendKeys(`input[name=note]`, "a copy of another researcher's submission"), chromedp.Click(`#disqualify`),
		chromedp.WaitVisible(`#review-queue`), chromedp.Navigate(base+"/campaigns/e2e"), chromedp.WaitVisible(`#best-submissions`), shot("8-after-review"))
	if board := html(`#best-submissions`); strings.Contains(board, flagged) {
		t.Errorf("the disqualified submission %s is still on the leaderboard", flagged)
	}
	run("the forum, a result, its code, the analysis",
		chromedp.Navigate(base+"/campaigns/e2e/forum"), chromedp.WaitVisible(`#forum`), shot("9-forum"),
		chromedp.Click(`a[href^="/campaigns/e2e/forum/fnd_"]`), chromedp.WaitVisible(`#finding`), shot("10-finding"),
		chromedp.Click(`a[href^="/campaigns/e2e/snapshots/"]`), chromedp.WaitVisible(`#snapshot`), shot("11-snapshot"),
		chromedp.Navigate(base+"/campaigns/e2e/analysis"), chromedp.WaitVisible(`#analysis`), shot("12-analysis"))
	if a := html(`#analysis`); !strings.Contains(a, "active researchers") || strings.Contains(a, "<td>0.000</td>") {
		t.Errorf("analysis page: the results' released PGR is missing")
	}
	t.Logf("screenshots in %s", shots)
}
