// Package campaign runs `aar run`: a campaign of parallel researchers on one
// testbed against one lab — the spec (a campaign file and flags), the
// built-in directions and the study's conditions, the supervisor that
// starts one `aar researcher` worker per researcher and follows them
// (progress, operator control, clean stop, resume after a crash), and the
// final report.
package campaign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"time"

	"sigs.k8s.io/yaml"
)

// Spec is a campaign: what a campaign file holds (YAML or JSON) after flags
// are applied. It is stored, with its hash, in the ledger.
type Spec struct {
	Name    string `json:"name,omitempty"`
	Testbed string `json:"testbed"`
	// Policy is the feedback policy: default, ladder or anchor.
	Policy  string `json:"policy,omitempty"`
	Profile string `json:"profile,omitempty"`
	// Hours bounds the campaign's wall-clock time (every researcher stops by
	// its end); BudgetUSD bounds its model spend, split evenly among the
	// researchers that do not set their own.
	Hours     float64 `json:"hours,omitempty"`
	BudgetUSD float64 `json:"budget_usd,omitempty"`
	// Defaults for researchers that do not say.
	Backend string `json:"backend,omitempty"`
	Model   string `json:"model,omitempty"`
	BaseURL string `json:"base_url,omitempty"`
	Script  string `json:"script,omitempty"`
	// CPU bounds each researcher's sandbox CPU time (Go duration, e.g. "10m").
	CPU     string `json:"cpu,omitempty"`
	Latency string `json:"latency,omitempty"`
	// AgentCommand and AgentFiles are the agent-cli backend's defaults:
	// the agent's shell command, run in each sandbox's /workspace, and a
	// directory copied there first.
	AgentCommand string           `json:"agent_command,omitempty"`
	AgentFiles   string           `json:"agent_files,omitempty"`
	Researchers  []ResearcherSpec `json:"researchers,omitempty"`
	Conditions   Conditions       `json:"conditions"`
	Quota        *Quota           `json:"quota,omitempty"`
}

// ResearcherSpec is one researcher; empty fields take the campaign's.
type ResearcherSpec struct {
	Name      string  `json:"name"`
	Backend   string  `json:"backend,omitempty"`
	Model     string  `json:"model,omitempty"`
	Direction string  `json:"direction,omitempty"`
	BudgetUSD float64 `json:"budget_usd,omitempty"`
	CPU       string  `json:"cpu,omitempty"`
	Seed      uint64  `json:"seed,omitempty"`
	Script    string  `json:"script,omitempty"`
	BaseURL   string  `json:"base_url,omitempty"`
	// AgentCommand and AgentFiles: for the agent-cli backend.
	AgentCommand string `json:"agent_command,omitempty"`
	AgentFiles   string `json:"agent_files,omitempty"`
}

// Conditions are the study's comparisons, as switches.
type Conditions struct {
	// Undirected gives every researcher the same prompt.
	Undirected bool `json:"undirected,omitempty"`
	// Sharing: sync (forum copy in every sandbox, search, leaderboard),
	// search (search only) or none (researchers cannot read each other).
	Sharing string `json:"sharing,omitempty"`
	// Workflow: none, or suggested (the prompt prescribes one).
	Workflow string `json:"workflow,omitempty"`
}

// Quota overrides the policy's submission quota.
type Quota struct {
	PerResearcherPerHour int `json:"per_researcher_per_hour"`
	PerCampaignPerHour   int `json:"per_campaign_per_hour"`
}

// Load reads a campaign file (YAML or JSON; unknown fields are refused,
// naming them).
func Load(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		return nil, fmt.Errorf("campaign file %s: %w", path, err)
	}
	return &s, nil
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Normalize fills defaults — n researchers (when the spec lists none),
// directions from the built-in list, names, backends, budget shares — and
// checks everything, naming the field and the fix.
func (s *Spec) Normalize(n int) error {
	if s.Testbed == "" {
		return fmt.Errorf("no testbed: give --testbed NAME or testbed: in the campaign file")
	}
	if s.Policy == "" {
		s.Policy = "default"
	}
	switch s.Policy {
	case "default", "ladder", "anchor":
	default:
		return fmt.Errorf("policy %q: use default, ladder or anchor", s.Policy)
	}
	if s.Backend == "" {
		s.Backend = "builtin"
	}
	if s.Conditions.Sharing == "" {
		s.Conditions.Sharing = "sync"
	}
	switch s.Conditions.Sharing {
	case "sync", "search", "none":
	default:
		return fmt.Errorf("conditions.sharing %q: use sync, search or none", s.Conditions.Sharing)
	}
	if s.Conditions.Workflow == "" {
		s.Conditions.Workflow = "none"
	}
	switch s.Conditions.Workflow {
	case "none", "suggested":
	default:
		return fmt.Errorf("conditions.workflow %q: use none or suggested", s.Conditions.Workflow)
	}
	for _, f := range []float64{s.Hours, s.BudgetUSD} {
		if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("hours and budget_usd must be positive numbers")
		}
	}
	for _, d := range []string{s.CPU, s.Latency} {
		if d != "" {
			if v, err := time.ParseDuration(d); err != nil || v < 0 {
				return fmt.Errorf("duration %q: use Go's form, e.g. 10m or 2s", d)
			}
		}
	}
	if len(s.Researchers) == 0 {
		if n <= 0 {
			n = 3
		}
		if n > 1000 {
			return fmt.Errorf("%d researchers: at most 1000 per campaign", n)
		}
		for i := range n {
			s.Researchers = append(s.Researchers, ResearcherSpec{Seed: uint64(i + 1)})
		}
	} else if n > 0 && n != len(s.Researchers) {
		return fmt.Errorf("--researchers %d but the campaign file lists %d: drop one", n, len(s.Researchers))
	}
	seen := map[string]bool{}
	free := 0 // researchers without their own dollar budget
	var own float64
	for i := range s.Researchers {
		r := &s.Researchers[i]
		if r.Direction == "" {
			switch {
			case s.Conditions.Undirected:
				r.Direction = Undirected
			case i < len(Directions):
				r.Direction = Directions[i].Text
				if r.Name == "" {
					r.Name = Directions[i].Name
				}
			default:
				// Past the built-in nine, directions repeat (said in the name).
				d := Directions[i%len(Directions)]
				r.Direction = d.Text
				if r.Name == "" {
					r.Name = fmt.Sprintf("%s-%d", d.Name, i/len(Directions)+1)
				}
			}
		} else if s.Conditions.Undirected && r.Direction != Undirected {
			return fmt.Errorf("researchers[%d] (%s) has its own direction, but the campaign is undirected: drop one", i, r.Name)
		}
		if r.Name == "" {
			r.Name = fmt.Sprintf("r%d", i+1)
		}
		if !nameRe.MatchString(r.Name) {
			return fmt.Errorf("researchers[%d].name %q: use 1-64 lower-case letters, digits, '.', '_' or '-'", i, r.Name)
		}
		if seen[r.Name] {
			return fmt.Errorf("researchers[%d].name %q is used twice", i, r.Name)
		}
		seen[r.Name] = true
		if r.Backend == "" {
			r.Backend = s.Backend
		}
		if r.AgentCommand == "" {
			r.AgentCommand = s.AgentCommand
		}
		if r.AgentFiles == "" {
			r.AgentFiles = s.AgentFiles
		}
		switch r.Backend {
		case "builtin", "anthropic", "openai", "scripted", "agent-cli":
		default:
			return fmt.Errorf("researchers[%d] (%s): backend %q: use builtin, anthropic, openai, scripted or agent-cli", i, r.Name, r.Backend)
		}
		if r.Model == "" {
			r.Model = s.Model
		}
		if r.Script == "" {
			r.Script = s.Script
		}
		if r.BaseURL == "" {
			r.BaseURL = s.BaseURL
		}
		if r.CPU == "" {
			r.CPU = s.CPU
		}
		if r.Seed == 0 {
			r.Seed = uint64(i + 1)
		}
		if r.BudgetUSD < 0 {
			return fmt.Errorf("researchers[%d] (%s): budget_usd must be positive", i, r.Name)
		}
		if r.BudgetUSD == 0 {
			free++
		} else {
			own += r.BudgetUSD
		}
		if r.Backend == "scripted" && r.Script == "" {
			return fmt.Errorf("researchers[%d] (%s): the scripted backend needs script: FILE", i, r.Name)
		}
		if r.Backend == "agent-cli" && r.AgentCommand == "" {
			return fmt.Errorf("researchers[%d] (%s): the agent-cli backend needs agent_command (--agent-command 'CMD')", i, r.Name)
		}
	}
	if s.BudgetUSD > 0 {
		if own > s.BudgetUSD {
			return fmt.Errorf("the researchers' own budgets ($%.2f) exceed the campaign's ($%.2f)", own, s.BudgetUSD)
		}
		for i := range s.Researchers {
			if s.Researchers[i].BudgetUSD == 0 && free > 0 {
				s.Researchers[i].BudgetUSD = (s.BudgetUSD - own) / float64(free)
			}
		}
	}
	if s.Name != "" && !nameRe.MatchString(s.Name) {
		return fmt.Errorf("name %q: use 1-64 lower-case letters, digits, '.', '_' or '-'", s.Name)
	}
	return nil
}

// Paid says whether any researcher uses a backend that costs money.
func (s *Spec) Paid() bool {
	for _, r := range s.Researchers {
		if r.Backend == "anthropic" || r.Backend == "openai" || r.Backend == "agent-cli" {
			return true
		}
	}
	return false
}

// JSON is the spec as stored in the ledger (compact, fields in struct
// order).
func (s *Spec) JSON() json.RawMessage {
	b, _ := json.Marshal(s)
	var c bytes.Buffer
	_ = json.Compact(&c, b)
	return c.Bytes()
}
