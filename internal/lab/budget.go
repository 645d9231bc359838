package lab

import "encoding/json"

// ResearcherBudgetUSD is a researcher's model budget in dollars from its
// campaign's spec (researchers[].budget_usd, as aar run normalises it; a
// researcher added by the operator: its config's budget_usd), and whether
// one is set. The metering proxy stops a researcher at it.
func (l *Lab) ResearcherBudgetUSD(campaign, researcher string) (float64, bool) {
	l.mu.Lock()
	c := l.campaigns[campaign]
	var added json.RawMessage
	if cc := l.control[campaign]; cc != nil {
		added = cc.added[researcher]
	}
	l.mu.Unlock()
	if c == nil {
		return 0, false
	}
	var one struct {
		Name      string  `json:"name"`
		BudgetUSD float64 `json:"budget_usd"`
	}
	if len(added) > 0 && json.Unmarshal(added, &one) == nil && one.BudgetUSD > 0 {
		return one.BudgetUSD, true
	}
	var spec struct {
		BudgetUSD   float64 `json:"budget_usd"`
		Researchers []struct {
			Name      string  `json:"name"`
			BudgetUSD float64 `json:"budget_usd"`
		} `json:"researchers"`
	}
	if len(c.Spec) == 0 || json.Unmarshal(c.Spec, &spec) != nil {
		return 0, false
	}
	for _, r := range spec.Researchers {
		if r.Name == researcher && r.BudgetUSD > 0 {
			return r.BudgetUSD, true
		}
	}
	return 0, false
}
