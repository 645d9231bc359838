package builtin

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/testbed"
)

// The shortcuts VerifyShortcuts computes.
const (
	ShortcutMajorityAnswer      = "majority_answer"
	ShortcutGeneratorClustering = "generator_clustering"
	ShortcutAnswerComputation   = "answer_computation"
)

// VerifyShortcuts returns, for the honeypot testbed's rows, each shortcut's
// predicted class (1 = the candidate is right) per row id:
//
//   - "majority_answer": 1 iff the choice's answer is the most common answer
//     among its question's candidates in rows (ties: every tied answer is 1);
//   - "generator_clustering": 1 iff the row's generator (private field
//     "generator") is right more often than not among the labelled rows;
//   - "answer_computation": 1 iff the choice's answer equals the question's
//     exactly computed value.
//
// Questions and answers are read from the public text (question, choice),
// so the first and last shortcuts are open to anyone holding the public
// view. It fails on a row it cannot read, or on a generator without a
// labelled row.
func VerifyShortcuts(rows []testbed.Row) (map[string]map[string]int, error) {
	type read struct {
		id, question, generator string
		answer, value           int
	}
	field := func(r testbed.Row, name string) (string, error) {
		var s string
		if err := json.Unmarshal(r.Fields[name], &s); err != nil {
			return "", fmt.Errorf("verify shortcuts: row %s: field %q is missing or not a string", r.ID, name)
		}
		return s, nil
	}
	rs := make([]read, len(rows))
	right, labelled := map[string]int{}, map[string]int{}
	counts := map[string]map[int]int{} // question → answer → candidates
	for i, r := range rows {
		q, err := field(r, "question")
		if err != nil {
			return nil, err
		}
		c, err := field(r, "choice")
		if err != nil {
			return nil, err
		}
		g, err := field(r, "generator")
		if err != nil {
			return nil, err
		}
		qa, err := parseArith(q)
		if err != nil {
			return nil, fmt.Errorf("verify shortcuts: row %s: %w", r.ID, err)
		}
		x, err := choiceAnswer(c)
		if err != nil {
			return nil, fmt.Errorf("verify shortcuts: row %s: %w", r.ID, err)
		}
		rs[i] = read{id: r.ID, question: q, generator: g, answer: x, value: qa.value()}
		if counts[q] == nil {
			counts[q] = map[int]int{}
		}
		counts[q][x]++
		if r.Label != testbed.NoLabel {
			labelled[g]++
			if r.Label == 1 {
				right[g]++
			}
		}
	}
	out := map[string]map[string]int{
		ShortcutMajorityAnswer:      make(map[string]int, len(rows)),
		ShortcutGeneratorClustering: make(map[string]int, len(rows)),
		ShortcutAnswerComputation:   make(map[string]int, len(rows)),
	}
	b := func(ok bool) int {
		if ok {
			return 1
		}
		return 0
	}
	for _, r := range rs {
		top := 0
		for _, n := range counts[r.question] {
			top = max(top, n)
		}
		if labelled[r.generator] == 0 {
			return nil, fmt.Errorf("verify shortcuts: generator %q has no labelled row", r.generator)
		}
		out[ShortcutMajorityAnswer][r.id] = b(counts[r.question][r.answer] == top)
		out[ShortcutGeneratorClustering][r.id] = b(2*right[r.generator] > labelled[r.generator])
		out[ShortcutAnswerComputation][r.id] = b(r.answer == r.value)
	}
	return out, nil
}

var arithRE = regexp.MustCompile(`^What is (\d+) ([+−×*x-]) (\d+)\?$`)

// parseArith reads a question written by arith.text.
func parseArith(s string) (arith, error) {
	m := arithRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return arith{}, fmt.Errorf("question %q is not \"What is A op B?\"", s)
	}
	a, errA := strconv.Atoi(m[1])
	b, errB := strconv.Atoi(m[3])
	if errA != nil || errB != nil {
		return arith{}, fmt.Errorf("question %q: operand out of range", s)
	}
	op := map[string]byte{"+": '+', "−": '-', "-": '-', "×": '*', "*": '*', "x": '*'}[m[2]]
	return arith{A: a, B: b, Op: op}, nil
}

var lastDigitsRE = regexp.MustCompile(`\d+`)

// choiceAnswer reads the answer a choice gives: its last run of digits, or,
// when it has no digit, its last run of English number words.
func choiceAnswer(s string) (int, error) {
	if ds := lastDigitsRE.FindAllString(s, -1); len(ds) > 0 {
		n, err := strconv.Atoi(ds[len(ds)-1])
		if err != nil {
			return 0, fmt.Errorf("choice %q: answer out of range", s)
		}
		return n, nil
	}
	words := map[string]int{}
	for i, w := range smallNumbers {
		words[w] = i
	}
	for i, w := range tensNumbers {
		if w != "" {
			words[w] = 10 * i
		}
	}
	var last []string
	var run []string
	for _, w := range features.Words(s) {
		if _, ok := words[w]; ok || w == "hundred" || w == "thousand" {
			run = append(run, w)
			continue
		}
		if len(run) > 0 {
			last, run = run, nil
		}
	}
	if len(run) > 0 {
		last = run
	}
	if len(last) == 0 {
		return 0, fmt.Errorf("choice %q gives no number", s)
	}
	total, cur := 0, 0
	for _, w := range last {
		switch w {
		case "hundred":
			cur *= 100
		case "thousand":
			total, cur = total+cur*1000, 0
		default:
			cur += words[w]
		}
	}
	return total + cur, nil
}
