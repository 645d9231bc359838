package builtin

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/w2s"
)

// metamathSource is Debian's packaging of the Metamath databases (set.mm
// and iset.mm are CC0). Its version is the one bookworm serves.
var metamathSource = Source{Registry: "deb", Name: "metamath-databases", Version: "0.0.0~20210101.git55fe226-2"}

var metamathClasses = []string{"logic", "set_theory", "numbers"}

// metamathParts maps each database's part titles (the line between the two
// rows of '#' that open a part, see mmParse) to a class. Parts not listed
// (elementary number theory, structures, geometry, graph theory, guides,
// deprecated material, mathboxes) are left out: they are neither of the three
// classes, or (mathboxes, guides) mix them. set.mm's ZFC and TG parts are
// ZF set theory with one more axiom each, so they are set theory too.
var metamathParts = map[string]map[string]string{
	"set.mm": {
		"CLASSICAL FIRST-ORDER LOGIC WITH EQUALITY":     "logic",
		"ZF (ZERMELO-FRAENKEL) SET THEORY":              "set_theory",
		"ZFC (ZERMELO-FRAENKEL WITH CHOICE) SET THEORY": "set_theory",
		"TG (TARSKI-GROTHENDIECK) SET THEORY":           "set_theory",
		"REAL AND COMPLEX NUMBERS":                      "numbers",
	},
	"iset.mm": {
		"FIRST ORDER LOGIC WITH EQUALITY": "logic",
		"SET THEORY":                      "set_theory",
		"REAL AND COMPLEX NUMBERS":        "numbers",
	},
}

const (
	metamathWeak    = 300
	metamathPool    = 7000
	metamathTestID  = 4800
	metamathSeed    = 0x3e7a3a7
	metamathWeakTop = 30
)

// metamathSkipGram trains the symbol vectors: every $a, $e, $f and $p
// statement of both databases is a sentence.
var metamathSkipGram = SkipGramOptions{Dim: 100, Window: 5, Negatives: 5, MinCount: 3, Epochs: 5,
	Subsample: 1e-3, LR: 0.025, Seed: 1}

func init() {
	Register(&Testbed{
		Name: "metamath",
		Summary: "Metamath theorems (set.mm; OOD iset.mm), 3 parts of the database: " +
			"LR on a bag of 30 symbols teaches a linear probe on skip-gram symbol vectors",
		Sources: []Source{metamathSource},
		Build:   buildMetamath,
	})
}

// mmStatement is one labelled statement of a Metamath database.
type mmStatement struct {
	Label string
	Kind  string   // "$a", "$e", "$f" or "$p"
	Math  []string // the math symbols, typecode first
	Part  string   // title of the enclosing part ("" before the first)
}

// mmParse reads a Metamath database (the whole text; $[ inclusions are not
// followed) and returns its labelled statements in file order.
//
// Parts: set.mm and iset.mm open each part with a comment whose first line
// is a row of '#' (at least four), then the part's title, then another row
// of '#' (the databases' header convention, which metamath's
// `write theorem_list` reads too). Every statement after such a comment, up
// to the next one, belongs to that part.
func mmParse(src []byte) ([]mmStatement, error) {
	var (
		out   []mmStatement
		part  string
		pos   int
		label string
	)
	// next returns the next token that is not inside a comment; "" at the
	// end of the text.
	next := func() (string, error) {
		for {
			for pos < len(src) && isMMSpace(src[pos]) {
				pos++
			}
			start := pos
			for pos < len(src) && !isMMSpace(src[pos]) {
				pos++
			}
			tok := string(src[start:pos])
			if tok != "$(" {
				return tok, nil
			}
			end := bytes.Index(src[pos:], []byte("$)"))
			if end < 0 {
				return "", fmt.Errorf("comment at byte %d is not closed", start)
			}
			if title, ok := mmPartTitle(src[pos : pos+end]); ok {
				part = title
			}
			pos += end + 2
		}
	}
	for {
		tok, err := next()
		if err != nil {
			return nil, err
		}
		switch tok {
		case "":
			return out, nil
		case "${", "$}":
		case "$c", "$v", "$d", "$a", "$e", "$f", "$p":
			var math []string
			inProof := false
			for {
				t, err := next()
				if err != nil {
					return nil, err
				}
				if t == "" {
					return nil, fmt.Errorf("statement %s %s: no closing $. before the end", label, tok)
				}
				if t == "$." {
					break
				}
				if tok == "$p" && t == "$=" {
					inProof = true
					continue
				}
				if !inProof {
					math = append(math, t)
				}
			}
			switch tok {
			case "$a", "$e", "$f", "$p":
				if label == "" {
					return nil, fmt.Errorf("a %s statement has no label", tok)
				}
				out = append(out, mmStatement{Label: label, Kind: tok, Math: math, Part: part})
			}
			label = ""
		case "$[":
			for {
				t, err := next()
				if err != nil {
					return nil, err
				}
				if t == "$]" || t == "" {
					break
				}
			}
		default:
			if strings.HasPrefix(tok, "$") {
				return nil, fmt.Errorf("unexpected keyword %q after label %q", tok, label)
			}
			label = tok
		}
	}
}

func isMMSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f'
}

// mmPartTitle recognizes a part header comment (see mmParse).
func mmPartTitle(comment []byte) (string, bool) {
	lines := strings.Split(strings.TrimSpace(string(comment)), "\n")
	isRule := func(s string) bool {
		s = strings.TrimSpace(s)
		return len(s) >= 4 && strings.Trim(s, "#") == ""
	}
	if len(lines) < 3 || !isRule(lines[0]) || !isRule(lines[2]) {
		return "", false
	}
	return strings.TrimSpace(lines[1]), true
}

// txRow is one row of a classification testbed's files.
type txRow struct {
	Text   string `json:"text"`
	Label  string `json:"label"`
	Subset string `json:"subset"`
}

// metamathRows turns a database's $p statements into rows: the assertion's
// symbols joined by spaces, labelled by part. Statements outside the mapped
// parts are skipped; it fails when a mapped part is missing, so a changed
// database cannot silently lose a class.
func metamathRows(db string, stmts []mmStatement) ([]txRow, error) {
	parts := metamathParts[db]
	found := map[string]bool{}
	var rows []txRow
	for _, s := range stmts {
		label, ok := parts[s.Part]
		if !ok {
			continue
		}
		found[s.Part] = true
		if s.Kind != "$p" || len(s.Math) == 0 {
			continue
		}
		rows = append(rows, txRow{Text: strings.Join(s.Math, " "), Label: label, Subset: db})
	}
	for title := range parts {
		if !found[title] {
			return nil, fmt.Errorf("%s: no statement in part %q", db, title)
		}
	}
	return rows, nil
}

func buildMetamath(ctx context.Context, cache, out string, log *slog.Logger) error {
	dir := filepath.Join(metamathSource.Dir(cache), "root", "usr", "share", "metamath", "databases")
	var rows [2][]txRow
	var corpus [][]string
	for i, db := range []string{"set.mm", "iset.mm"} {
		src, err := os.ReadFile(filepath.Join(dir, db))
		if err != nil {
			return err
		}
		stmts, err := mmParse(src)
		if err != nil {
			return fmt.Errorf("parse %s: %w", db, err)
		}
		for _, s := range stmts {
			if s.Kind != "$f" {
				corpus = append(corpus, s.Math)
			}
		}
		if rows[i], err = metamathRows(db, stmts); err != nil {
			return err
		}
		log.Info("metamath: parsed", "database", db, "statements", len(stmts), "theorems", len(rows[i]))
	}
	// Identical assertions are one row. Within a database, an assertion
	// proved in two parts is dropped (its label is ambiguous). iset.mm
	// restates most of set.mm's theorems that hold intuitionistically; a
	// shared assertion is a set.mm row, so the OOD rows are the theorems
	// only iset.mm states.
	id := txDedupe(rows[0])
	inID := map[string]bool{}
	for _, r := range id {
		inID[r.Text] = true
	}
	var ood []txRow
	for _, r := range txDedupe(rows[1]) {
		if !inID[r.Text] {
			ood = append(ood, r)
		}
	}
	log.Info("metamath: distinct assertions", "set.mm", len(id), "iset.mm", len(ood),
		"per class set.mm", txClassCounts(id, metamathClasses), "per class iset.mm", txClassCounts(ood, metamathClasses))

	rng := rand.New(rand.NewPCG(metamathSeed, 2))
	splits, err := txSplit(id, metamathClasses, []int{metamathWeak, metamathPool, metamathTestID}, rng)
	if err != nil {
		return fmt.Errorf("metamath: %w", err)
	}
	weak, pool, testID := splits[0], splits[1], splits[2]
	txShuffle(ood, rng)
	test := append(slices.Clip(testID), ood...)

	opt := metamathSkipGram
	opt.Log = log
	if err := writeTxTestbed(ctx, out, "metamath", weak, pool, test, txTopTokens(weak, strings.Fields, metamathWeakTop), corpus, opt, "symbols"); err != nil {
		return err
	}
	m := manifest{
		Name:       "metamath",
		Kind:       "classification",
		Classes:    metamathClasses,
		IDSubsets:  []string{"set.mm"},
		OODSubsets: []string{"iset.mm"},
		License:    "CC0-1.0 (set.mm, iset.mm); see NOTICE",
		Source: fmt.Sprintf("Metamath databases set.mm and iset.mm (us.metamath.org) from Debian package %s %s",
			metamathSource.Name, metamathSource.Version),
		Notes: fmt.Sprintf("Each row is the assertion of one $p theorem (hypotheses and proof left out): its math "+
			"symbols, typecode first, separated by single spaces. Label: the part of the database the theorem is in. "+
			"Parts are read from the databases' part headers (a comment opening with a row of '#', the title, "+
			"another row of '#'): set.mm \"CLASSICAL FIRST-ORDER LOGIC WITH EQUALITY\" = logic; "+
			"\"ZF (ZERMELO-FRAENKEL) SET THEORY\", \"ZFC (ZERMELO-FRAENKEL WITH CHOICE) SET THEORY\" and "+
			"\"TG (TARSKI-GROTHENDIECK) SET THEORY\" = set_theory; \"REAL AND COMPLEX NUMBERS\" = numbers; "+
			"iset.mm \"FIRST ORDER LOGIC WITH EQUALITY\", \"SET THEORY\", \"REAL AND COMPLEX NUMBERS\" likewise; "+
			"other parts (number theory onwards, guides, mathboxes) are left out. "+
			"ID (subset set.mm): weak teacher %d, pool %d, test %d rows, drawn at random with the classes as balanced "+
			"as the parts allow. OOD (subset iset.mm, intuitionistic logic and set theory): every distinct iset.mm "+
			"theorem of the three parts whose assertion set.mm does not state (%d test rows; iset.mm restates most "+
			"set.mm theorems that hold intuitionistically, and those are set.mm rows). Identical assertions are one row; "+
			"one proved in two parts of a database is dropped. "+
			"Weak model: logistic regression on a binary bag of the %d symbols in most train_label rows. "+
			"Strong student: one Adam epoch of a linear probe on the mean and max of %d-d skip-gram symbol vectors "+
			"(word2vec skip-gram with negative sampling, window %d, %d negatives, min count %d, %d epochs, seed %d), "+
			"trained without labels on every $a, $e and $p statement of both databases. "+
			"Rebuild: aar testbed build metamath.",
			len(weak), len(pool), len(testID), len(ood), metamathWeakTop, opt.Dim, opt.Window, opt.Negatives,
			opt.MinCount, opt.Epochs, opt.Seed),
		Representation: features.Representation{
			Weak: features.Spec{Kind: "bag", Tokenizer: "space", Vocab: "weak_vocab.txt"},
			Strong: features.Spec{Kind: "embed", Tokenizer: "space", Vocab: "symbols.vocab", Vectors: "symbols.f32",
				Dim: opt.Dim, Pool: []string{"mean", "max"}},
		},
		Training: w2s.Training{
			Weak:   w2s.Config{Model: "linear", Solver: "lbfgs", C: 1},
			Strong: w2s.Config{Model: "linear", Solver: "adam", Epochs: 1, BatchSize: 32, LR: 0.01},
		},
	}
	if err := writeManifest(out, m); err != nil {
		return err
	}
	return writeNotice(out, metamathNotice)
}

// txDedupe keeps the first row of each text, in order, and drops every row
// of a text that carries two labels.
func txDedupe(rows []txRow) []txRow {
	labels := map[string]string{}
	conflict := map[string]bool{}
	for _, r := range rows {
		if l, ok := labels[r.Text]; ok && l != r.Label {
			conflict[r.Text] = true
		}
		labels[r.Text] = r.Label
	}
	seen := map[string]bool{}
	var out []txRow
	for _, r := range rows {
		if conflict[r.Text] || seen[r.Text] {
			continue
		}
		seen[r.Text] = true
		out = append(out, r)
	}
	return out
}

func txClassCounts(rows []txRow, classes []string) []int {
	n := make([]int, len(classes))
	for _, r := range rows {
		if i := slices.Index(classes, r.Label); i >= 0 {
			n[i]++
		}
	}
	return n
}

func txShuffle(rows []txRow, rng *rand.Rand) {
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
}

// txSplit draws disjoint splits of the given sizes from rows, each split's
// classes as balanced as the rows allow. The classes' counts in the union are
// water-filled (every class gets the same count unless it has fewer rows,
// then all of them); the chosen rows are dealt in an order that spreads each
// class evenly (the k-th row of a class with n chosen rows at (k+½)/n, ties to
// the earlier class) and cut into the splits in turn, so each split holds
// every class in proportion, within one row. Each split comes back shuffled.
func txSplit(rows []txRow, classes []string, sizes []int, rng *rand.Rand) ([][]txRow, error) {
	byClass := make([][]txRow, len(classes))
	for _, r := range rows {
		i := slices.Index(classes, r.Label)
		if i < 0 {
			return nil, fmt.Errorf("row label %q is not a class", r.Label)
		}
		byClass[i] = append(byClass[i], r)
	}
	avail := make([]int, len(classes))
	for i, rs := range byClass {
		avail[i] = len(rs)
		txShuffle(rs, rng)
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	share, err := txWaterFill(avail, total)
	if err != nil {
		return nil, err
	}
	type slot struct{ c, k int }
	var deal []slot
	for c, n := range share {
		for k := range n {
			deal = append(deal, slot{c, k})
		}
	}
	slices.SortFunc(deal, func(a, b slot) int {
		// (2a.k+1)/share[a.c] against (2b.k+1)/share[b.c].
		if c := cmp.Compare(int64(2*a.k+1)*int64(share[b.c]), int64(2*b.k+1)*int64(share[a.c])); c != 0 {
			return c
		}
		return cmp.Compare(a.c, b.c)
	})
	out := make([][]txRow, len(sizes))
	at := 0
	for s, size := range sizes {
		for _, d := range deal[at : at+size] {
			out[s] = append(out[s], byClass[d.c][d.k])
		}
		at += size
		txShuffle(out[s], rng)
	}
	return out, nil
}

// txWaterFill gives each class min(avail, level) rows, with level the
// smallest that reaches total (the classes below the level split the
// remainder, earlier classes first).
func txWaterFill(avail []int, total int) ([]int, error) {
	sum := 0
	for _, a := range avail {
		sum += a
	}
	if sum < total {
		return nil, fmt.Errorf("%d rows in all, %d needed", sum, total)
	}
	share := make([]int, len(avail))
	left := total
	for left > 0 {
		open := 0
		for c := range avail {
			if share[c] < avail[c] {
				open++
			}
		}
		step := max(left/open, 1)
		for c := range avail {
			if left == 0 {
				break
			}
			k := min(step, avail[c]-share[c], left)
			share[c] += k
			left -= k
		}
	}
	return share, nil
}

// txTopTokens returns the n tokens found in the most rows (ties by token).
// writeTxTestbed writes a token-level testbed's files under out: the weak
// model's vocabulary, skip-gram vectors trained on corpus (as
// features/EMB.vocab and EMB.f32), and the three row files.
func writeTxTestbed(ctx context.Context, out, name string, weak, pool, test []txRow, weakVocab []string, corpus [][]string, opt SkipGramOptions, emb string) error {
	fdir := filepath.Join(out, "features")
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		return err
	}
	if err := features.WriteVocab(filepath.Join(fdir, "weak_vocab.txt"), weakVocab); err != nil {
		return err
	}
	sg, err := TrainSkipGram(ctx, corpus, opt)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := features.WriteVocab(filepath.Join(fdir, emb+".vocab"), sg.Vocab); err != nil {
		return err
	}
	if err := features.WriteF32(filepath.Join(fdir, emb+".f32"), sg.Vectors); err != nil {
		return err
	}
	for file, rs := range map[string][]txRow{"train_label.jsonl": weak, "train_unlabel.jsonl": pool, "test.jsonl": test} {
		if err := writeJSONLines(filepath.Join(out, file), rs); err != nil {
			return err
		}
	}
	return nil
}

func txTopTokens(rows []txRow, tok features.Tokenizer, n int) []string {
	df := map[string]int{}
	for _, r := range rows {
		seen := map[string]bool{}
		for _, t := range tok(r.Text) {
			if !seen[t] {
				seen[t] = true
				df[t]++
			}
		}
	}
	toks := make([]string, 0, len(df))
	for t := range df {
		toks = append(toks, t)
	}
	slices.SortFunc(toks, func(a, b string) int {
		if c := cmp.Compare(df[b], df[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	if len(toks) > n {
		toks = toks[:n]
	}
	return toks
}

const metamathNotice = `Metamath databases set.mm and iset.mm
http://us.metamath.org/

Taken from the Debian package metamath-databases, version
0.0.0~20210101.git55fe226-2 (files usr/share/metamath/databases/set.mm,
set.mm "Version of 28-Dec-2020", and usr/share/metamath/databases/iset.mm),
packaged by Giovanni Mascellani <gio@debian.org>.

The rows of this testbed are the assertions (math symbol strings) of $p
theorems of set.mm and iset.mm; each row's label is the part of the
database its theorem is in, read from the databases' part headers (a
comment that opens with a row of '#', then the part's title, then another
row of '#'):

  set.mm  CLASSICAL FIRST-ORDER LOGIC WITH EQUALITY       -> logic
          ZF (ZERMELO-FRAENKEL) SET THEORY                -> set_theory
          ZFC (ZERMELO-FRAENKEL WITH CHOICE) SET THEORY   -> set_theory
          TG (TARSKI-GROTHENDIECK) SET THEORY             -> set_theory
          REAL AND COMPLEX NUMBERS                        -> numbers
  iset.mm FIRST ORDER LOGIC WITH EQUALITY                 -> logic
          SET THEORY                                      -> set_theory
          REAL AND COMPLEX NUMBERS                        -> numbers

All other parts are left out. features/symbols.vocab and symbols.f32 are
skip-gram vectors trained on the statements of both databases;
features/weak_vocab.txt lists symbols of the weak teacher's rows.

Licence of set.mm and iset.mm (from the package's copyright file):

  License: CC0-1.0
   This work is waived of all rights, including copyright, according to
   the CC0 Public Domain Dedication.
   http://creativecommons.org/publicdomain/zero/1.0/

Contributors named there: David Abernethy, Stefan Allan, Thierry Arnoux,
Juha Arpiainen, Jonathan Ben-Naim, Gregory Bush, Mario Carneiro, Filip
Cernatescu, Paul Chapman, Drahflow, Georgy Dunaev, Scott Fenton, Jeff
Hankins, Anthony Hart, David Harvey, Chen-Pang He, Jeff Hoffman, Jerry
James, Szymon Jaroszewicz, Benoit Jubin, Jim Kingdon, Wolf Lammen, Gerard
Lang, Brendan Leahy, Raph Levien, Frederic Line, Roy F. Longton, Giovanni
Mascellani, Jeff Madsen, Rodolfo Medina, Norman Megill, Mykola Mostovenko,
Mel L. O'Cat, OpenAI, Stefan O'Rear, Jason Orendorff, Jon Pennant, Richard
Penner, Stanislas Polu, Josh Purinton, Steve Rodriguez, Andrew Salmon, Alan
Sare, Eric Schmidt, Glauco Siliprandi, Saveliy Skresanov, Jarvin Udandy,
Alexander van der Vekens, David A. Wheeler, Jonathan Yan, Fan Zheng.
`
