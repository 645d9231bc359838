package agent

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// cand is one point of the built-in researcher's method space: a built-in
// method or plain training with a loss, optional targets/weights made by
// prep.py from the weak labels, and training overrides.
type cand struct {
	ID     string            `json:"id"`
	Family string            `json:"family"`
	Method string            `json:"method,omitempty"`
	Loss   string            `json:"loss,omitempty"`
	Prep   string            `json:"prep,omitempty"` // prep.py mode and argument, e.g. "confpow 2"
	Flags  map[string]string `json:"flags,omitempty"`
	Origin string            `json:"origin,omitempty"` // "space", "mutation of c3", "adopted from alice"
	Why    string            `json:"-"`
}

// key identifies a configuration (not its id or origin).
func (c cand) key() string {
	var fl []string
	for k, v := range c.Flags {
		fl = append(fl, k+"="+v)
	}
	sort.Strings(fl)
	return strings.Join([]string{c.Method, c.Loss, c.Prep, strings.Join(fl, ",")}, "|")
}

// complexity counts what a candidate changes from plain training.
func (c cand) complexity() int {
	n := len(c.Flags)
	if c.Method != "" && c.Method != "vanilla_w2s_soft" {
		n++
	}
	if c.Loss != "" {
		n++
	}
	if c.Prep != "" {
		n++
	}
	return n
}

// describe is a short human name.
func (c cand) describe() string {
	var parts []string
	switch {
	case c.Method != "":
		parts = append(parts, c.Method)
	case c.Loss != "":
		parts = append(parts, "loss "+c.Loss)
	default:
		parts = append(parts, "vanilla_w2s_soft")
	}
	if c.Prep != "" {
		parts = append(parts, "prep "+c.Prep)
	}
	var fl []string
	for k, v := range c.Flags {
		fl = append(fl, k+"="+v)
	}
	sort.Strings(fl)
	parts = append(parts, fl...)
	return strings.Join(parts, ", ")
}

// method is the candidate as a method script following the lab's contract
// (aar.toml): for the seed in $AAR_SEED it trains on the view at
// $AAR_DATA and writes $AAR_OUT; intermediate files go to a scratch
// directory; AAR_SMOKE=1 makes it a smoke run.
func (c cand) method() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# %s (built-in researcher candidate %s)\nset -e\n", c.describe(), c.ID)
	args := []string{"aar", "w2s", "train", "--view", `"$AAR_DATA"`, "--seed", `"$AAR_SEED"`}
	if c.Method != "" {
		args = append(args, "--method", c.Method)
	}
	if c.Loss != "" {
		args = append(args, "--loss", c.Loss)
	}
	if c.Prep != "" {
		mode := strings.Fields(c.Prep)
		b.WriteString("W=$(mktemp -d)\ntrap 'rm -rf \"$W\"' EXIT\n")
		b.WriteString(`aar w2s weak --view "$AAR_DATA" --seed "$AAR_SEED" --out "$W/weak.jsonl"` + "\n")
		fmt.Fprintf(&b, "python3 prep.py \"$W/weak.jsonl\" %s \"$W/prep\"\n", strings.Join(mode, " "))
		if mode[0] == "confpow" {
			args = append(args, "--weights", `"$W/prep.weights.jsonl"`)
		} else {
			args = append(args, "--targets", `"$W/prep.targets.jsonl"`)
		}
	}
	keys := make([]string, 0, len(c.Flags))
	for k := range c.Flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--"+k, c.Flags[k])
	}
	args = append(args, "--out", `"$AAR_OUT"`, "${AAR_SMOKE:+--smoke}")
	b.WriteString(strings.Join(args, " ") + "\n")
	return b.String()
}

// script is the shell that writes the candidate's method script
// (methods/ID.sh) and points aar.toml at it, then runs it for the given
// seeds (a smoke run first on the first seed), writing runs/ID/SEED.jsonl:
// what is submitted is exactly what the lab's verifier re-runs.
func (c cand) script(seeds []string, smoke bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\nmkdir -p runs/%s methods\ncat > methods/%s.sh <<'AAR_METHOD'\n%sAAR_METHOD\n", c.ID, c.ID, c.method())
	fmt.Fprintf(&b, "printf '[method]\\nname = \"%s\"\\ncommand = \"sh methods/%s.sh\"\\n' > aar.toml\n", strings.ReplaceAll(c.describe(), `"`, ""), c.ID)
	// Each run's output goes to a log; a failure shows its tail and stops
	// the script (sh has no pipefail, so no pipes).
	run := func(seed, out, env string) {
		fmt.Fprintf(&b, "%sAAR_DATA=/data AAR_SEED=%s AAR_OUT=%s sh methods/%s.sh >runs/%s/log 2>&1 || { tail -n 5 runs/%s/log; exit 1; }; tail -n 1 runs/%s/log\n",
			env, seed, out, c.ID, c.ID, c.ID, c.ID)
	}
	for i, s := range seeds {
		if smoke && i == 0 {
			run(s, fmt.Sprintf("runs/%s/smoke.jsonl", c.ID), "AAR_SMOKE=1 ")
		}
		run(s, fmt.Sprintf("runs/%s/%s.jsonl", c.ID, s), "")
	}
	return b.String()
}

// prepScript is the built-in researcher's helper, written into the
// workspace: it turns `aar w2s weak` output into weights or targets.
const prepScript = `"""prep.py WEAK.jsonl MODE ARG OUT — targets or weights from the weak labels.

confpow P   weights = ((confidence - 1/K) / (1 - 1/K)) ** P       -> OUT.weights.jsonl
temper T    targets = probs ** (1/T), renormalised (T < 1 sharpens) -> OUT.targets.jsonl
topfrac F   targets = probs for the F most confident share of each weak class, others dropped -> OUT.targets.jsonl
"""
import json, sys

weak_path, mode, arg, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
rows = [json.loads(l) for l in open(weak_path) if l.strip()]
k = len(rows[0]["probs"])
if mode == "confpow":
    with open(out + ".weights.jsonl", "w") as f:
        for r in rows:
            c = max(0.0, (max(r["probs"]) - 1.0 / k) / (1 - 1.0 / k))
            f.write(json.dumps({"id": r["id"], "weight": max(c ** arg, 1e-3)}) + "\n")
elif mode == "temper":
    with open(out + ".targets.jsonl", "w") as f:
        for r in rows:
            p = [max(x, 1e-9) ** (1.0 / arg) for x in r["probs"]]
            s = sum(p)
            f.write(json.dumps({"id": r["id"], "probs": [x / s for x in p]}) + "\n")
elif mode == "topfrac":
    by = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r)
    with open(out + ".targets.jsonl", "w") as f:
        for lab, rs in by.items():
            rs.sort(key=lambda r: -max(r["probs"]))
            for r in rs[: max(1, int(len(rs) * arg))]:
                f.write(json.dumps({"id": r["id"], "probs": r["probs"]}) + "\n")
else:
    sys.exit("unknown mode " + mode)
print(mode, arg, len(rows), "rows")
`

// familyCands is the method space, family by family, in the order tried
// within a family.
func familyCands(rng *rand.Rand) map[string][]cand {
	lr := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	return map[string][]cand{
		"loss function": {
			{Method: "logconf", Why: "an auxiliary confidence loss lets the student overrule weak labels it confidently disagrees with"},
			{Method: "product", Why: "fitting the product of weak labels and student predictions discounts weak errors the student's features contradict"},
			{Loss: "logconf", Flags: map[string]string{"epochs": "2"}, Why: "logconf needs the student to harden: a second epoch gives it time"},
		},
		"data filtering": {
			{Method: "train_only_on_confident_labels", Why: "weak labels near the decision boundary are mostly noise"},
			{Method: "confident_balanced", Why: "filtering by confidence skews the class balance; keeping each class's share fixes it"},
			{Prep: "topfrac 0.6", Why: "keeping the most confident 60% of each weak class removes most flipped labels"},
		},
		"confidence weighting": {
			{Prep: "confpow 1", Why: "weighting rows by weak confidence keeps every row but trusts the sure ones more"},
			{Prep: "confpow 2", Why: "a sharper weighting pushes further towards the confident rows"},
		},
		"self-training": {
			{Method: "bootstrap", Why: "relabelling the pool with the student lets it correct the teacher where its features disagree"},
			{Method: "bootstrap", Flags: map[string]string{"epochs": "2"}, Why: "self-training with a better-fitted first student"},
		},
		"distillation": {
			{Method: "vanilla_w2s_soft", Why: "soft labels carry the teacher's uncertainty"},
			{Prep: "temper 0.5", Why: "sharpened soft labels: between hard and soft distillation"},
			{Prep: "temper 2", Why: "smoothed soft labels limit how much the student copies the teacher's confident errors"},
		},
		"unsupervised elicitation": {
			{Method: "ue_cluster", Why: "the strong representation may already separate the classes without any label"},
		},
		"curriculum": {
			{Flags: map[string]string{"epochs": "2", "schedule": "cosine"}, Why: "a longer, annealed schedule fits the weak labels' signal before their noise"},
		},
		"other": {
			{Flags: map[string]string{"weight-decay": lr("0.001", "0.0003")}, Why: "a simplicity bias (weight decay) keeps the student from memorising weak errors"},
			{Flags: map[string]string{"lr": lr("0.003", "0.005")}, Why: "a smaller step under-fits the noise"},
		},
	}
}

// familyOrder puts the direction's families first (by keywords), then the
// rest in an order shuffled by the researcher's seed.
func familyOrder(direction string, rng *rand.Rand) []string {
	all := []string{"loss function", "data filtering", "confidence weighting", "self-training", "distillation", "curriculum", "other", "unsupervised elicitation"}
	keywords := map[string][]string{
		"loss function":            {"loss", "objective", "auxiliary", "logconf", "product"},
		"data filtering":           {"filter", "select", "clean", "prun", "learnab", "subset"},
		"confidence weighting":     {"weight", "confiden", "reweigh", "uncertain", "noisy", "posterior"},
		"self-training":            {"self-train", "bootstrap", "relabel", "pseudo", "iterat"},
		"distillation":             {"distill", "soft", "temperature", "teacher"},
		"unsupervised elicitation": {"unsupervised", "elicit", "cluster", "representation", "probe", "latent"},
		"curriculum":               {"curriculum", "schedule", "easy"},
		"other":                    {"simplic", "regulari", "decay", "evolution", "search"},
	}
	d := strings.ToLower(direction)
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	score := func(f string) int {
		n := 0
		for _, k := range keywords[f] {
			if strings.Contains(d, k) {
				n++
			}
		}
		return n
	}
	sort.SliceStable(all, func(i, j int) bool { return score(all[i]) > score(all[j]) })
	return all
}

// mutate makes a neighbour of a good candidate: another epoch count or
// learning rate, or a combination with another good candidate's method.
func mutate(rng *rand.Rand, a, b cand) cand {
	c := cand{Family: "evolutionary", Method: a.Method, Loss: a.Loss, Prep: a.Prep, Flags: map[string]string{}}
	for k, v := range a.Flags {
		c.Flags[k] = v
	}
	switch rng.IntN(4) {
	case 0:
		c.Flags["epochs"] = []string{"2", "3"}[rng.IntN(2)]
	case 1:
		c.Flags["lr"] = []string{"0.005", "0.02"}[rng.IntN(2)]
	case 2:
		if b.Prep != "" && c.Prep == "" && c.Method != "ue_cluster" && c.Method != "bootstrap" {
			// a built-in method cannot take targets; a loss can.
			if c.Method == "logconf" || c.Method == "product" {
				c.Loss, c.Method = c.Method, ""
			}
			if c.Method == "" {
				c.Prep = b.Prep
				break
			}
		}
		c.Flags["weight-decay"] = "0.0003"
	default:
		c.Flags["schedule"] = "cosine"
		c.Flags["epochs"] = "2"
	}
	c.Origin = "mutation of " + a.ID
	c.Why = "a neighbour of the best so far (" + a.describe() + ")"
	if len(c.Flags) == 0 {
		c.Flags = nil
	}
	return c
}
