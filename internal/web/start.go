package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aar-lab/aar/internal/campaign"
)

// Options let the dashboard start campaigns: the lab's data directory, its
// Unix socket and the aar binary (a campaign started from the form is an
// `aar run --lab` child process with its own session admin token).
type Options struct {
	DataDir string
	Socket  string
	Exe     string
}

// newCampaignPage is the form.
func (s *Server) newCampaignPage(w http.ResponseWriter, r *http.Request, v viewer) {
	s.startForm(w, v, "", http.StatusOK)
}

func (s *Server) startForm(w http.ResponseWriter, v viewer, msg string, status int) {
	if !v.Admin() {
		http.Error(w, "starting a campaign needs an admin login", http.StatusForbidden)
		return
	}
	tbs, _ := s.lab.Testbeds()
	w.WriteHeader(status)
	s.render(w, "new.html", map[string]any{"V": v, "Testbeds": tbs, "Error": msg, "CanStart": s.opt.Exe != "" && s.opt.Socket != ""})
}

// start builds a campaign spec from the form, checks it, and runs it as an
// `aar run --lab` child process; the browser goes to its page.
func (s *Server) start(w http.ResponseWriter, r *http.Request, v viewer) {
	if !v.Admin() {
		http.Error(w, "starting a campaign needs an admin login", http.StatusForbidden)
		return
	}
	if s.opt.Exe == "" || s.opt.Socket == "" {
		s.startForm(w, v, "This lab was started without a socket or binary to run campaigns with.", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	spec := &campaign.Spec{Name: strings.TrimSpace(f.Get("name")), Testbed: f.Get("testbed"), Policy: f.Get("policy"), Backend: f.Get("backend"),
		Model: strings.TrimSpace(f.Get("model")), Script: strings.TrimSpace(f.Get("script")), Latency: strings.TrimSpace(f.Get("latency")),
		Conditions: campaign.Conditions{Undirected: f.Get("undirected") == "on", Sharing: f.Get("sharing"), Workflow: f.Get("workflow")}}
	n, err := strconv.Atoi(f.Get("researchers"))
	if err != nil || n < 1 || n > 200 {
		s.startForm(w, v, "Researchers: give a number from 1 to 200.", http.StatusBadRequest)
		return
	}
	for _, fl := range []struct {
		name string
		dst  *float64
	}{{"budget_usd", &spec.BudgetUSD}, {"hours", &spec.Hours}} {
		if t := strings.TrimSpace(f.Get(fl.name)); t != "" {
			if *fl.dst, err = strconv.ParseFloat(t, 64); err != nil {
				s.startForm(w, v, fl.name+": give a number.", http.StatusBadRequest)
				return
			}
		}
	}
	if spec.Name == "" {
		spec.Name = "web-" + time.Now().UTC().Format("20060102-150405")
	}
	if err := spec.Normalize(n); err != nil {
		s.startForm(w, v, err.Error(), http.StatusBadRequest)
		return
	}
	if spec.Paid() && spec.BudgetUSD <= 0 {
		s.startForm(w, v, "A paid backend needs a dollar budget.", http.StatusBadRequest)
		return
	}
	if _, err := s.lab.CampaignInfoOf(spec.Name); err == nil {
		s.startForm(w, v, fmt.Sprintf("Campaign %s exists already: choose another name.", spec.Name), http.StatusConflict)
		return
	}
	dir := filepath.Join(s.opt.DataDir, "runs", spec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	specPath := filepath.Join(dir, "spec.json")
	b, _ := json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	tok, err := s.lab.SessionAdminToken(r.Context(), "dashboard campaign "+spec.Name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	logf, err := os.OpenFile(filepath.Join(dir, "run.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	cmd := exec.Command(s.opt.Exe, "run", "--data", s.opt.DataDir, "--lab", "unix://"+s.opt.Socket, "-f", specPath, "--json")
	cmd.Env = append(os.Environ(), "AAR_TOKEN="+tok)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The campaign stops cleanly when the lab goes (resume it with aar run
	// --resume).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	go func() {
		cmd.Wait()
		logf.Close()
		_ = s.lab.RevokeToken(context.Background(), tok)
	}()
	// The campaign exists once aar run has created it.
	for range 100 {
		if _, err := s.lab.CampaignInfoOf(spec.Name); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	http.Redirect(w, r, "/campaigns/"+spec.Name, http.StatusSeeOther)
}
