package testbed

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aar-lab/aar/internal/jsonl"
)

// studyPreset is how aar reads the public study's test subsets, which the
// study itself does not mark as ID or OOD: the subsets that share a source
// with its training data are ID, the others OOD. A preset applies only when
// every test subset matches one of its prefixes.
type studyPreset struct {
	name    string
	id, ood []string // subset name prefixes
}

var studyPresets = []studyPreset{
	{name: "chat", id: []string{"helpsteer"}, ood: []string{"reward_bench", "rm_bench"}},
	{name: "math", id: []string{"dapo_"}, ood: []string{"aime_"}},
}

func hasAnyPrefix(s string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}

// resolveGroups sets m.IDSubsets and m.OODSubsets so every test subset is in
// exactly one of them. Flags override the manifest; without either, a study
// preset applies when it fits, else every subset is ID. It returns a note
// saying what it decided when it decided anything.
func resolveGroups(m *Manifest, test []Row, opts ImportOptions, file string) (string, error) {
	present := map[string]int{}
	for _, r := range test {
		present[r.Subset]++
	}
	var subsets []string
	for s := range present {
		subsets = append(subsets, s)
	}
	sort.Strings(subsets)

	idList, oodList := m.IDSubsets, m.OODSubsets
	source := "testbed.json"
	if len(opts.IDSubsets) > 0 || len(opts.OODSubsets) > 0 {
		idList, oodList, source = opts.IDSubsets, opts.OODSubsets, "the --id-subsets/--ood-subsets flags"
	}
	for _, s := range slices.Concat(idList, oodList) {
		if present[s] == 0 {
			return "", jsonl.Errorf(file, 0, "subset", fmt.Sprintf("name only subsets that occur (%s)", quoteList(subsets)), "subset %q from %s has no test rows", s, source)
		}
	}
	for _, s := range idList {
		if slices.Contains(oodList, s) {
			return "", jsonl.Errorf(file, 0, "subset", "list each subset once, as ID or as OOD", "subset %q is listed as both ID and OOD in %s", s, source)
		}
	}
	var note string
	switch {
	case len(idList) > 0 && len(oodList) > 0:
		for _, s := range subsets {
			if !slices.Contains(idList, s) && !slices.Contains(oodList, s) {
				return "", jsonl.Errorf(file, 0, "subset", "add it to the ID or the OOD list", "subset %q is neither ID nor OOD in %s", s, source)
			}
		}
	case len(idList) > 0:
		for _, s := range subsets {
			if !slices.Contains(idList, s) {
				oodList = append(oodList, s)
			}
		}
	case len(oodList) > 0:
		for _, s := range subsets {
			if !slices.Contains(oodList, s) {
				idList = append(idList, s)
			}
		}
	default:
		var p *studyPreset
		for i := range studyPresets {
			fits := true
			for _, s := range subsets {
				if !hasAnyPrefix(s, studyPresets[i].id) && !hasAnyPrefix(s, studyPresets[i].ood) {
					fits = false
				}
			}
			if fits {
				p = &studyPresets[i]
			}
		}
		for _, s := range subsets {
			if p != nil && hasAnyPrefix(s, p.ood) {
				oodList = append(oodList, s)
			} else {
				idList = append(idList, s)
			}
		}
		if p != nil {
			note = fmt.Sprintf("subsets read with the study's %s preset (the study does not mark ID/OOD itself): ID = %s; OOD = %s; override with --id-subsets/--ood-subsets",
				p.name, quoteList(idList), quoteList(oodList))
		} else if len(subsets) > 1 {
			note = fmt.Sprintf("no ID/OOD subsets given: all %d subsets (%s) count as ID and the OOD cells are empty; set --ood-subsets to score OOD", len(subsets), quoteList(subsets))
		}
	}
	sort.Strings(idList)
	sort.Strings(oodList)
	m.IDSubsets, m.OODSubsets = idList, oodList
	return note, nil
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}
