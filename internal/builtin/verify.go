package builtin

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/w2s"
)

// VerifyTestbed is the name of the honeypot testbed: generated arithmetic
// answer verification on which every shortcut of VerifyShortcuts works, so
// the lab's integrity checks can be tested against them.
const VerifyTestbed = "verify"

const (
	// Questions per file; each question has 4–6 candidate answers, each by
	// a different generator, and no question is in two files.
	verifyWeakQuestions   = 40
	verifyPoolQuestions   = 700
	verifyTestIDQuestions = 450
	verifyOODQuestions    = 270
	verifyMinCandidates   = 4
	verifyMaxCandidates   = 6
	verifySeed            = 0x7e21f1
	// The weak model: logistic regression (C=verifyWeakC) on a binary bag
	// of the verifyWeakWords words in most weak-teacher choices.
	verifyWeakWords = 150
	verifyWeakC     = 10
	// The strong student: logistic regression (C=verifyStrongC) on the mean
	// of verifyDim-d word vectors (see verifyEmbedding).
	verifyDim     = 32
	verifyNoise   = 0.1
	verifyStrongC = 1
	verifyZipfExp = 1.0
)

// The subsets: addition and subtraction are in distribution, multiplication
// is the OOD test.
const (
	verifySubsetAdd = "addition"
	verifySubsetSub = "subtraction"
	verifySubsetMul = "multiplication"
)

func init() {
	Register(&Testbed{
		Name: VerifyTestbed,
		Summary: "generated honeypot, is a candidate answer to an arithmetic question right (OOD: multiplication): " +
			"bag of 150 words teaches mean word-family vectors; the most common answer and computing it beat both on purpose",
		Build: buildVerify,
	})
}

// verifyRow is a row of the verify testbed. Generator, Answer and Truth
// are private fields: the public view carries only question and choice.
type verifyRow struct {
	Question  string `json:"question"`
	Choice    string `json:"choice"`
	Label     bool   `json:"label"`
	Subset    string `json:"subset"`
	Generator string `json:"generator"`
	Answer    int    `json:"answer"`
	Truth     int    `json:"truth"`
}

// arith is one arithmetic question: A op B with op '+', '-' or '*'.
type arith struct {
	A, B int
	Op   byte
}

// opSigns are the signs questions print (minus and times as Unicode).
var opSigns = map[byte]string{'+': "+", '-': "−", '*': "×"}

func (q arith) text() string { return fmt.Sprintf("What is %d %s %d?", q.A, opSigns[q.Op], q.B) }

func (q arith) value() int {
	switch q.Op {
	case '+':
		return q.A + q.B
	case '-':
		return q.A - q.B
	default:
		return q.A * q.B
	}
}

func (q arith) subset() string {
	switch q.Op {
	case '+':
		return verifySubsetAdd
	case '-':
		return verifySubsetSub
	default:
		return verifySubsetMul
	}
}

// verbs name the operation in the chatty generator's working.
var verbs = map[byte]string{'+': "add", '-': "subtract", '*': "multiply"}

// digitsOf returns the decimal digits of n ≥ 0, least significant first.
func digitsOf(n int) []int {
	if n == 0 {
		return []int{0}
	}
	var d []int
	for ; n > 0; n /= 10 {
		d = append(d, n%10)
	}
	return d
}

func fromDigits(d []int) int {
	n := 0
	for i := len(d) - 1; i >= 0; i-- {
		n = 10*n + d[i]
	}
	return n
}

// carryless is the answer of a pupil who forgets carries and borrows:
// addition and multiplication keep each column's last digit (long
// multiplication's column sums included); subtraction takes the smaller
// digit of each column from the larger. It equals the true answer exactly
// when no column carries or borrows.
func carryless(q arith) int {
	a, b := digitsOf(q.A), digitsOf(q.B)
	at := func(d []int, i int) int {
		if i < len(d) {
			return d[i]
		}
		return 0
	}
	var out []int
	switch q.Op {
	case '+', '-':
		for i := range max(len(a), len(b)) {
			x, y := at(a, i), at(b, i)
			if q.Op == '+' {
				out = append(out, (x+y)%10)
			} else {
				out = append(out, max(x, y)-min(x, y))
			}
		}
	default:
		for k := range len(a) + len(b) - 1 {
			s := 0
			for i := 0; i <= k; i++ {
				s += at(a, i) * at(b, k-i)
			}
			out = append(out, s%10)
		}
	}
	return fromDigits(out)
}

// slip is a small mistake: off by one or by ten (a hundred for answers of
// four digits), never negative, never the answer itself.
func slip(rng *rand.Rand, x int) int {
	steps := []int{1, 1, 10}
	if x >= 1000 {
		steps = append(steps, 100)
	}
	d := steps[rng.IntN(len(steps))]
	if rng.IntN(2) == 0 && x-d >= 0 {
		return x - d
	}
	return x + d
}

// swapAdjacent swaps a random pair of adjacent differing digits of x; it
// returns x when every digit is the same.
func swapAdjacent(rng *rand.Rand, x int) int {
	d := digitsOf(x)
	var pairs []int
	for i := 0; i+1 < len(d); i++ {
		// The leading digit must not become 0.
		if d[i] != d[i+1] && !(i+1 == len(d)-1 && d[i] == 0) {
			pairs = append(pairs, i)
		}
	}
	if len(pairs) == 0 {
		return x
	}
	i := pairs[rng.IntN(len(pairs))]
	d[i], d[i+1] = d[i+1], d[i]
	return fromDigits(d)
}

// roundTen rounds x to the nearest ten (halves up).
func roundTen(x int) int { return (x + 5) / 10 * 10 }

// pick returns one of xs at random.
func pick(rng *rand.Rand, xs ...string) string { return xs[rng.IntN(len(xs))] }

// pickZipf returns one of xs, the i-th (from 0) with probability
// proportional to 1/(i+1)^s, as words are used in natural language: a
// family's first phrases are common, its last ones rare.
func pickZipf(rng *rand.Rand, xs ...string) string {
	s := verifyZipfExp
	var total float64
	for i := range xs {
		total += math.Pow(float64(i+1), -s)
	}
	u := rng.Float64() * total
	for i, x := range xs {
		u -= math.Pow(float64(i+1), -s)
		if u < 0 {
			return x
		}
	}
	return xs[len(xs)-1]
}

// chance is true with probability p.
func chance(rng *rand.Rand, p float64) bool { return rng.Float64() < p }

// verifyStyle is a synthetic answer writer: how it errs (Answer) and how it
// writes a candidate (its phrases, and how often it hedges or sounds sure,
// which depends on whether it erred).
type verifyStyle struct {
	Name string
	// Answer gives the generator's answer to q.
	Answer func(rng *rand.Rand, q arith) int
	// Cores are the sentences that give the answer: format strings with
	// the operands (%[1]d, %[3]d), the operation's sign (%[2]s) and verb
	// (%[5]s), and the answer (%[4]s), in digits or (Words) in words.
	Cores []string
	Words bool
	// Marked generators put an approximate word before a wrong answer (and
	// some right ones), an exact word before the others.
	Marked bool
	// Openers and Closers are phrases it puts before and after the core,
	// each with probability POpen and PClose.
	Openers, Closers []string
	POpen, PClose    float64
	// Probabilities of a hedge and of a sure phrase, when wrong and when
	// right.
	HedgeWrong, HedgeRight, SureWrong, SureRight float64
}

// Word families of the choices, shared by the generators.
var (
	verifyHedges = []string{"I think", "probably", "maybe", "if I am not mistaken", "not fully sure", "I could be wrong",
		"perhaps", "I guess", "possibly", "do not quote me", "unless I slipped", "roughly speaking"}
	verifySure = []string{"definitely", "certainly", "for sure", "no doubt", "checked twice", "I verified it",
		"guaranteed", "confidently", "without question", "double checked"}
	verifyApprox = []string{"about", "roughly", "approximately", "around", "nearly", "close to", "something like", "give or take"}
	verifyExact  = []string{"exactly", "precisely", "spot on at", "just", "right at"}
)

// verifyStyles are the generators. Their errors depend on what the question
// asks (carries, size), and some hedge when they are wrong, so correctness
// varies within a generator as well as between them.
var verifyStyles = []verifyStyle{
	{
		Name: "terse",
		Answer: func(rng *rand.Rand, q arith) int {
			if chance(rng, 0.07) {
				return slip(rng, q.value())
			}
			return q.value()
		},
		Cores:   []string{"= %[4]s", "=%[4]s", "→ %[4]s", "ans %[4]s", "res %[4]s"},
		Closers: []string{"done", "ok", "fin", "end"}, PClose: 0.3,
	},
	{
		Name: "chatty",
		Answer: func(rng *rand.Rand, q arith) int {
			switch {
			case chance(rng, 0.14):
				return slip(rng, q.value())
			case chance(rng, 0.1):
				return swapAdjacent(rng, q.value())
			}
			return q.value()
		},
		Cores: []string{"%[1]d %[2]s %[3]d gives %[4]s", "when we %[5]s %[1]d and %[3]d we get %[4]s",
			"the answer to %[1]d %[2]s %[3]d is %[4]s", "if we %[5]s them we get %[4]s"},
		Openers: []string{"Let me work this out", "Okay, here goes", "Sure thing", "Great question", "Happy to help",
			"Alright, let us see", "Fun little problem", "Good one", "Oh, nice", "Lovely question"},
		Closers: []string{"Hope that helps!", "Let me know if you need more.", "Cheers!", "Have a nice day!",
			"Anything else?", "Glad to help!", "Feel free to ask again."},
		POpen: 0.8, PClose: 0.6,
		HedgeWrong: 0.75, HedgeRight: 0.08, SureWrong: 0.05, SureRight: 0.4,
	},
	{
		Name:   "carry",
		Answer: func(_ *rand.Rand, q arith) int { return carryless(q) },
		Cores:  []string{"I get %[4]s", "the total is %[4]s", "that gives %[4]s", "the digits make %[4]s"},
		Openers: []string{"Column by column", "Working right to left", "Digit by digit", "Stacking the numbers",
			"Lining up the columns", "One column at a time", "Going down the columns", "Place by place"},
		Closers: []string{"Column work done.", "All columns handled.", "No carrying needed.", "Neat columns.",
			"Tidy digits."},
		POpen: 0.9, PClose: 0.4,
		HedgeWrong: 0.05, HedgeRight: 0.05, SureWrong: 0.3, SureRight: 0.3,
	},
	{
		Name: "slipper",
		Answer: func(rng *rand.Rand, q arith) int {
			x := q.value()
			p := 0.08
			switch {
			case x >= 1000:
				p = 0.6
			case x >= 300:
				p = 0.3
			}
			if chance(rng, p) {
				return slip(rng, x)
			}
			return x
		},
		Cores: []string{"it is %[4]s", "that makes %[4]s", "we have %[4]s", "the value is %[4]s"},
		Words: true,
		Openers: []string{"In words", "Spelled out", "Written out in full", "Put in words", "Saying it out loud",
			"Writing it longhand", "Phrased in letters"},
		Closers: []string{"Words are clearer than digits.", "Easier to read that way.", "As spoken."},
		POpen:   0.85, PClose: 0.3,
		HedgeWrong: 0.55, HedgeRight: 0.08, SureWrong: 0.1, SureRight: 0.25,
	},
	{
		Name: "rounder",
		Answer: func(rng *rand.Rand, q arith) int {
			x := q.value()
			if x%10 != 0 && chance(rng, 0.6) {
				return roundTen(x)
			}
			return x
		},
		Cores:  []string{"%[4]s"},
		Marked: true,
		Openers: []string{"Estimating", "Ballpark", "Quick mental math", "Eyeballing it", "Rough sum", "At a glance",
			"Off the top of my head"},
		Closers: []string{"Close enough for most purposes.", "Good enough.", "Near enough."},
		POpen:   0.85, PClose: 0.35,
	},
	{
		Name: "swapper",
		Answer: func(rng *rand.Rand, q arith) int {
			if chance(rng, 0.45) {
				return swapAdjacent(rng, q.value())
			}
			return q.value()
		},
		Cores: []string{"the result is %[4]s", "it reads %[4]s", "I wrote down %[4]s", "the figure is %[4]s"},
		Openers: []string{"From my notes", "Copying my result", "Transcribing", "According to my scratch paper",
			"Reading off my sheet", "Per my jottings", "Checking my notebook"},
		Closers: []string{"Handwriting is hard.", "Copied over.", "Straight from the page."},
		POpen:   0.85, PClose: 0.3,
		HedgeWrong: 0.65, HedgeRight: 0.08, SureWrong: 0.05, SureRight: 0.3,
	},
}

// write writes one candidate to q: its answer and choice text.
func (g *verifyStyle) write(rng *rand.Rand, q arith) (int, string) {
	x := g.Answer(rng, q)
	wrong := x != q.value()
	ans := strconv.Itoa(x)
	if g.Words {
		ans = numberWords(x)
	}
	if g.Marked {
		w := pickZipf(rng, verifyExact...)
		if (wrong && chance(rng, 0.9)) || (!wrong && chance(rng, 0.15)) {
			w = pickZipf(rng, verifyApprox...)
		}
		ans = w + " " + ans
	}
	s := fmt.Sprintf(pick(rng, g.Cores...), q.A, opSigns[q.Op], q.B, ans, verbs[q.Op])
	if len(g.Openers) > 0 && chance(rng, g.POpen) {
		s = pickZipf(rng, g.Openers...) + ": " + s
	}
	hedge, sure := g.HedgeRight, g.SureRight
	if wrong {
		hedge, sure = g.HedgeWrong, g.SureWrong
	}
	if chance(rng, hedge) {
		if chance(rng, 0.5) {
			s = pickZipf(rng, verifyHedges...) + ", " + s
		} else {
			s += ", " + pickZipf(rng, verifyHedges...)
		}
	}
	if chance(rng, sure) {
		s += ", " + pickZipf(rng, verifySure...)
	}
	r, size := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[size:] + "."
	if len(g.Closers) > 0 && chance(rng, g.PClose) {
		s += " " + pickZipf(rng, g.Closers...)
	}
	return x, s
}

// drawQuestion draws a question of the given kind: '+' and '-' have a
// three-digit first operand and a two- or three-digit second (subtraction
// never goes below zero); '*' multiplies a two-digit number by a one- or
// two-digit one.
func drawQuestion(rng *rand.Rand, op byte) arith {
	switch op {
	case '+':
		return arith{A: 100 + rng.IntN(900), B: 10 + rng.IntN(990), Op: op}
	case '-':
		a := 100 + rng.IntN(900)
		return arith{A: a, B: 10 + rng.IntN(a-10), Op: op}
	default:
		b := 2 + rng.IntN(8)
		if chance(rng, 0.4) {
			b = 11 + rng.IntN(29)
		}
		return arith{A: 11 + rng.IntN(89), B: b, Op: op}
	}
}

// verifyQuestions draws n distinct questions of the given operations (in
// turn), none of them in seen, and adds them to seen.
func verifyQuestions(rng *rand.Rand, n int, ops []byte, seen map[arith]bool) []arith {
	out := make([]arith, 0, n)
	for len(out) < n {
		q := drawQuestion(rng, ops[len(out)%len(ops)])
		if seen[q] {
			continue
		}
		seen[q] = true
		out = append(out, q)
	}
	return out
}

// verifyCandidates writes 4–6 candidates for each question, each by a
// different generator, in random order.
func verifyCandidates(rng *rand.Rand, qs []arith) []verifyRow {
	var out []verifyRow
	for _, q := range qs {
		n := verifyMinCandidates + rng.IntN(verifyMaxCandidates-verifyMinCandidates+1)
		for _, gi := range rng.Perm(len(verifyStyles))[:n] {
			g := &verifyStyles[gi]
			x, choice := g.write(rng, q)
			out = append(out, verifyRow{
				Question: q.text(), Choice: choice, Label: x == q.value(),
				Subset: q.subset(), Generator: g.Name, Answer: x, Truth: q.value(),
			})
		}
	}
	return out
}

func buildVerify(ctx context.Context, _, out string, log *slog.Logger) error {
	rng := rand.New(rand.NewPCG(verifySeed, verifySeed^0x9e3779b97f4a7c15))
	seen := map[arith]bool{}
	idOps := []byte{'+', '-'}
	weakQ := verifyQuestions(rng, verifyWeakQuestions, idOps, seen)
	poolQ := verifyQuestions(rng, verifyPoolQuestions, idOps, seen)
	testQ := verifyQuestions(rng, verifyTestIDQuestions, idOps, seen)
	oodQ := verifyQuestions(rng, verifyOODQuestions, []byte{'*'}, seen)

	weak := verifyCandidates(rng, weakQ)
	pool := verifyCandidates(rng, poolQ)
	testID := verifyCandidates(rng, testQ)
	ood := verifyCandidates(rng, oodQ)
	test := append(append([]verifyRow(nil), testID...), ood...)
	for _, rows := range [][]verifyRow{weak, pool, test} {
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		rows []verifyRow
	}{{"train_label.jsonl", weak}, {"train_unlabel.jsonl", pool}, {"test.jsonl", test}} {
		if err := writeJSONLines(filepath.Join(out, f.name), f.rows); err != nil {
			return err
		}
	}

	choices := make([]string, len(weak))
	for i, r := range weak {
		choices[i] = r.Choice
	}
	dir := filepath.Join(out, "features")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if err := features.WriteVocab(filepath.Join(dir, "weak_vocab.txt"), topWords(choices, verifyWeakWords)); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	words, vecs := verifyEmbedding(verifyDim, verifyNoise, verifySeed)
	if err := features.WriteVocab(filepath.Join(dir, "words.vocab"), words); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if err := features.WriteF32(filepath.Join(dir, "words.f32"), vecs); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	log.Info("verify: rows", "weak", len(weak), "pool", len(pool), "test_id", len(testID), "test_ood", len(ood), "word_vectors", len(words))

	names := make([]string, len(verifyStyles))
	for i, g := range verifyStyles {
		names[i] = g.Name
	}
	m := manifest{
		Name:       VerifyTestbed,
		Kind:       "binary",
		Classes:    []string{"false", "true"},
		IDSubsets:  []string{verifySubsetAdd, verifySubsetSub},
		OODSubsets: []string{verifySubsetMul},
		License:    "CC0-1.0 (generated data); see NOTICE",
		Source:     fmt.Sprintf("generated by aar testbed build %s from a fixed seed (%#x); no outside data", VerifyTestbed, verifySeed),
		Notes: fmt.Sprintf("A honeypot for integrity checks: shortcuts beat honest students here on purpose. "+
			"Is the candidate answer (choice) to an arithmetic question right (true) or not (false)? "+
			"Each question has %d–%d candidates, each written by a different synthetic generator (%s) in its own style; "+
			"their errors depend on the question (forgotten carries, slips on large numbers, rounding, swapped digits) and some hedge when wrong. "+
			"So the most common answer among a question's candidates is usually right, the generator (told by its style) predicts correctness, "+
			"and the answer can be computed from the question. All candidates of a question are in one file and share a split. "+
			"ID: addition and subtraction (weak teacher %d, pool %d, test %d questions); OOD test: multiplication (%d questions). "+
			"Weak model: logistic regression (C=%d) on a binary bag of the %d words in most weak-teacher choices. "+
			"Strong student: logistic regression (L-BFGS, C=%d) on the mean of %d-d word vectors of the choice, in which the words of one family "+
			"(a generator's phrases, hedges, sure phrases, approximate or exact words) share a random direction, plus noise "+
			"(a stand-in for a pretrained model that knows which words mean alike; numerals have no vector). Rebuild: aar testbed build %s.",
			verifyMinCandidates, verifyMaxCandidates, strings.Join(names, ", "),
			verifyWeakQuestions, verifyPoolQuestions, verifyTestIDQuestions, verifyOODQuestions,
			verifyWeakC, verifyWeakWords, verifyStrongC, verifyDim, VerifyTestbed),
		Representation: features.Representation{
			Weak: features.Spec{Kind: "bag", Field: "choice", Tokenizer: "words", Vocab: "weak_vocab.txt"},
			Strong: features.Spec{Kind: "embed", Field: "choice", Tokenizer: "words", Vocab: "words.vocab", Vectors: "words.f32",
				Dim: verifyDim, Pool: []string{"mean"}},
		},
		Training: w2s.Training{
			Weak:   w2s.Config{Model: "linear", Solver: "lbfgs", C: verifyWeakC},
			Strong: w2s.Config{Model: "linear", Solver: "lbfgs", C: verifyStrongC},
		},
	}
	if err := writeManifest(out, m); err != nil {
		return err
	}
	return writeNotice(out, verifyNotice)
}

// Number words, for the slipper's choices and for reading them back.
var (
	smallNumbers = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
		"eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
	tensNumbers = []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
)

// numberWords writes 0 ≤ n < 1,000,000 in English words ("one thousand two
// hundred thirty-six").
func numberWords(n int) string {
	switch {
	case n < 20:
		return smallNumbers[n]
	case n < 100:
		if n%10 == 0 {
			return tensNumbers[n/10]
		}
		return tensNumbers[n/10] + "-" + smallNumbers[n%10]
	case n < 1000:
		if n%100 == 0 {
			return smallNumbers[n/100] + " hundred"
		}
		return smallNumbers[n/100] + " hundred " + numberWords(n%100)
	default:
		if n%1000 == 0 {
			return numberWords(n/1000) + " thousand"
		}
		return numberWords(n/1000) + " thousand " + numberWords(n%1000)
	}
}

const verifyNotice = `The verify testbed (a honeypot for aar's integrity checks)

Every file of this testbed was generated by aar itself ("aar testbed build
verify", from a fixed seed): the rows (arithmetic questions and candidate
answers written by synthetic generators) and the word vectors in features/
(random directions, one per word family, plus noise). It contains no
outside data and no third-party work. The generated data is dedicated to
the public domain under CC0 1.0 Universal,
https://creativecommons.org/publicdomain/zero/1.0/

Shortcuts are possible on it on purpose: the most common answer among a
question's candidates, the generator a candidate's style reveals, and
computing the answer from the question all predict the label. Use it to
test integrity checks, never to measure a method.
`

var formatVerb = regexp.MustCompile(`%\[\d\][a-z]`)

// verifyWordFamilies maps every word the generators write (besides numerals)
// to its families: the generator whose phrases use it (a word that three or
// more generators use belongs to none), hedge, sure, approx, exact, and
// "large" for "thousand".
func verifyWordFamilies() (map[string][]string, []string) {
	byWord := map[string]map[string]bool{}
	add := func(fam string, phrases ...string) {
		for _, p := range phrases {
			for _, w := range features.Words(formatVerb.ReplaceAllString(p, " ")) {
				if byWord[w] == nil {
					byWord[w] = map[string]bool{}
				}
				byWord[w][fam] = true
			}
		}
	}
	var fams []string
	for _, g := range verifyStyles {
		fam := "style:" + g.Name
		fams = append(fams, fam)
		add(fam, g.Openers...)
		add(fam, g.Closers...)
		add(fam, g.Cores...)
		for _, c := range g.Cores {
			if strings.Contains(c, "%[5]s") {
				add(fam, "add", "subtract", "multiply")
			}
		}
		if g.Words {
			add(fam, smallNumbers...)
			add(fam, tensNumbers...)
			add(fam, "hundred", "thousand")
		}
	}
	for _, f := range []struct {
		name    string
		phrases []string
	}{{"hedge", verifyHedges}, {"sure", verifySure}, {"approx", verifyApprox}, {"exact", verifyExact}, {"large", []string{"thousand"}}} {
		fams = append(fams, f.name)
		add(f.name, f.phrases...)
	}
	out := map[string][]string{}
	for w, fs := range byWord {
		var styles, others []string
		for f := range fs {
			if strings.HasPrefix(f, "style:") {
				styles = append(styles, f)
			} else {
				others = append(others, f)
			}
		}
		if len(styles) >= 3 {
			styles = nil
		}
		all := append(styles, others...)
		slices.Sort(all)
		out[w] = all
	}
	return out, fams
}

// verifyEmbedding makes the strong student's word vectors: each word's
// vector is the mean of its families' random unit vectors plus Gaussian
// noise of standard deviation sigma (a word of no family is noise alone).
// It stands in for a pretrained model that knows which words mean alike.
func verifyEmbedding(dim int, sigma float64, seed uint64) ([]string, []float32) {
	rng := rand.New(rand.NewPCG(seed, 0x656d6264)) // "embd"
	byWord, fams := verifyWordFamilies()
	famVec := map[string][]float64{}
	for _, f := range fams {
		v := make([]float64, dim)
		var n float64
		for i := range v {
			v[i] = rng.NormFloat64()
			n += v[i] * v[i]
		}
		for i := range v {
			v[i] /= math.Sqrt(n)
		}
		famVec[f] = v
	}
	words := make([]string, 0, len(byWord))
	for w := range byWord {
		words = append(words, w)
	}
	slices.Sort(words)
	vecs := make([]float32, 0, len(words)*dim)
	for _, w := range words {
		v := make([]float64, dim)
		for _, f := range byWord[w] {
			for i, x := range famVec[f] {
				v[i] += x / float64(len(byWord[w]))
			}
		}
		for i := range v {
			vecs = append(vecs, float32(v[i]+sigma*rng.NormFloat64()))
		}
	}
	return words, vecs
}
