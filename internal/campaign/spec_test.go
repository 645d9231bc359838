package campaign

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNormalizeDirections(t *testing.T) {
	s := &Spec{Testbed: "metamath"}
	if err := s.Normalize(11); err != nil {
		t.Fatal(err)
	}
	if len(s.Researchers) != 11 || s.Policy != "default" || s.Backend != "builtin" || s.Conditions.Sharing != "sync" || s.Conditions.Workflow != "none" {
		t.Fatalf("defaults: %+v", s)
	}
	seen := map[string]bool{}
	for i, r := range s.Researchers[:9] {
		if r.Direction != Directions[i].Text || r.Name != Directions[i].Name || seen[r.Direction] {
			t.Errorf("researcher %d: %+v", i, r)
		}
		seen[r.Direction] = true
	}
	// Past the nine, directions come round again, said in the name.
	if r := s.Researchers[9]; r.Direction != Directions[0].Text || r.Name != "elicit-2" || r.Seed != 10 {
		t.Errorf("tenth researcher: %+v", r)
	}

	u := &Spec{Testbed: "metamath", Conditions: Conditions{Undirected: true}}
	if err := u.Normalize(4); err != nil {
		t.Fatal(err)
	}
	for _, r := range u.Researchers {
		if r.Direction != Undirected {
			t.Errorf("undirected researcher %s: %q", r.Name, r.Direction)
		}
	}
}

func TestNormalizeBudgetsAndErrors(t *testing.T) {
	s := &Spec{Testbed: "reviews", BudgetUSD: 10, Backend: "anthropic", Researchers: []ResearcherSpec{{Name: "a", BudgetUSD: 4}, {Name: "b"}, {Name: "c"}}}
	if err := s.Normalize(0); err != nil {
		t.Fatal(err)
	}
	if s.Researchers[1].BudgetUSD != 3 || s.Researchers[2].BudgetUSD != 3 || !s.Paid() {
		t.Errorf("budget split: %+v", s.Researchers)
	}
	for _, c := range []struct {
		spec Spec
		n    int
		want string
	}{
		{Spec{}, 3, "no testbed"},
		{Spec{Testbed: "x", Policy: "lenient"}, 3, `policy "lenient"`},
		{Spec{Testbed: "x", Conditions: Conditions{Sharing: "all"}}, 3, "conditions.sharing"},
		{Spec{Testbed: "x", Conditions: Conditions{Workflow: "strict"}}, 3, "conditions.workflow"},
		{Spec{Testbed: "x", Backend: "gpt"}, 3, `backend "gpt"`},
		{Spec{Testbed: "x", Backend: "scripted"}, 2, "needs script"},
		{Spec{Testbed: "x", CPU: "ten minutes"}, 2, `duration "ten minutes"`},
		{Spec{Testbed: "x", Researchers: []ResearcherSpec{{Name: "a"}, {Name: "a"}}}, 0, "used twice"},
		{Spec{Testbed: "x", Researchers: []ResearcherSpec{{Name: "Bad Name"}}}, 0, "lower-case"},
		{Spec{Testbed: "x", Researchers: []ResearcherSpec{{Name: "a"}}}, 3, "--researchers 3 but the campaign file lists 1"},
		{Spec{Testbed: "x", BudgetUSD: 1, Researchers: []ResearcherSpec{{Name: "a", BudgetUSD: 2}}}, 0, "exceed the campaign's"},
		{Spec{Testbed: "x", Conditions: Conditions{Undirected: true}, Researchers: []ResearcherSpec{{Name: "a", Direction: "mine"}}}, 0, "undirected"},
		{Spec{Testbed: "x"}, 1001, "at most 1000"},
	} {
		sp := c.spec
		if err := sp.Normalize(c.n); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.spec, err, c.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "c.yaml")
	os.WriteFile(good, []byte("testbed: metamath\npolicy: ladder\nconditions:\n  sharing: none\nresearchers:\n  - name: alice\n    direction: try soft labels\n  - name: bob\n"), 0o644)
	s, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Normalize(0); err != nil {
		t.Fatal(err)
	}
	if s.Policy != "ladder" || s.Conditions.Sharing != "none" || s.Researchers[0].Direction != "try soft labels" || s.Researchers[1].Direction != Directions[1].Text {
		t.Errorf("loaded %+v", s)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("testbed: metamath\nresearcher: 3\n"), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "researcher") {
		t.Errorf("unknown field: %v", err)
	}
	if !strings.Contains(string(s.JSON()), `"testbed":"metamath"`) {
		t.Errorf("JSON %s", s.JSON())
	}
}
