package builtin

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/w2s"
)

// gocodeSource is the Go distribution as the module proxy serves it to the
// go command's toolchain switching: the whole GOROOT, src/ included, of one
// pinned release. The standard library is BSD-3-Clause.
var gocodeSource = Source{Registry: "gomod", Name: "golang.org/toolchain", Version: "v0.0.1-go1.26.8.linux-amd64"}

// gocodeAreas are the classes: each is the functions of the directory trees
// under GOROOT/src listed with it.
var gocodeAreas = []struct {
	Class string
	Dirs  []string
}{
	{"cmd/compile", []string{"cmd/compile"}},
	{"runtime", []string{"runtime"}},
	{"crypto", []string{"crypto"}},
	{"net", []string{"net"}},
	{"go", []string{"go"}},
	{"encoding", []string{"encoding"}},
}

func gocodeClasses() []string {
	var out []string
	for _, a := range gocodeAreas {
		out = append(out, a.Class)
	}
	return out
}

const (
	gocodeWeak   = 1000
	gocodePool   = 9000
	gocodeTestID = 5000
	gocodeOOD    = 8591
	gocodeSeed   = 0x60c0de
	// Functions whose text (comments removed) is shorter or longer than
	// these many bytes are left out: one-liners say little, and the longest
	// functions would dominate the testbed's size.
	gocodeMinBytes = 40
	gocodeMaxBytes = 2000
	gocodeWeakTop  = 100
)

// gocodeSkipGram trains the token vectors on every extracted function.
var gocodeSkipGram = SkipGramOptions{Dim: 100, Window: 5, Negatives: 5, MinCount: 5, MaxVocab: 10000,
	Epochs: 15, Subsample: 1e-4, LR: 0.025, Seed: 1}

func init() {
	Register(&Testbed{
		Name: "gocode",
		Summary: "Go standard library functions (OOD: their areas' tests), 6 areas: " +
			"LR on a bag of 100 tokens teaches a linear probe on skip-gram token vectors",
		Sources: []Source{gocodeSource},
		Build:   buildGocode,
	})
}

// goFunc is one top-level function (or method) declaration.
type goFunc struct {
	Name string
	Text string // source text, comments removed
}

// goFuncs returns the top-level function and method declarations that have
// a body, in file order, each as its source text from "func" to the closing
// brace (no doc comment, no package clause) with every comment inside
// removed: comments name packages, files and authors. Blank lines are
// dropped and trailing white space is trimmed.
func goFuncs(fset *token.FileSet, file *ast.File, src []byte) []goFunc {
	tf := fset.File(file.Pos())
	var out []goFunc
	for _, d := range file.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		start, end := tf.Offset(fn.Pos()), tf.Offset(fn.End())
		var b strings.Builder
		pos := start
		for _, cg := range file.Comments {
			for _, c := range cg.List {
				cs, ce := tf.Offset(c.Pos()), tf.Offset(c.End())
				if cs < start || ce > end {
					continue
				}
				b.Write(src[pos:cs])
				// A block comment may be all that separates two tokens.
				if strings.HasPrefix(c.Text, "/*") && cs > 0 && ce < len(src) &&
					!isGoSpace(src[cs-1]) && !isGoSpace(src[ce]) {
					b.WriteByte(' ')
				}
				pos = ce
			}
		}
		b.Write(src[pos:end])
		var lines []string
		for _, l := range strings.Split(b.String(), "\n") {
			if l = strings.TrimRight(l, " \t\r"); l != "" {
				lines = append(lines, l)
			}
		}
		out = append(out, goFunc{Name: fn.Name.Name, Text: strings.Join(lines, "\n")})
	}
	return out
}

func isGoSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// gocodeRows reads the Go files of one area under root (GOROOT/src):
// functions of non-test files are ID rows ("std"), functions of _test.go
// files OOD rows ("tests"). Directories named testdata or vendor, or
// starting with "." or "_", are skipped (they hold inputs, not the area's
// code), and so are generated files ("Code generated ... DO NOT EDIT."):
// thousands of near-identical rewrite rules would swamp cmd/compile.
func gocodeRows(root, class string, dirs []string) (id, ood []txRow, skipped int, err error) {
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(d)), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := e.Name()
			if e.IsDir() {
				if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return nil
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, p, src, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				skipped++
				return nil
			}
			if ast.IsGenerated(file) {
				return nil
			}
			test := strings.HasSuffix(name, "_test.go")
			for _, fn := range goFuncs(fset, file, src) {
				if len(fn.Text) < gocodeMinBytes || len(fn.Text) > gocodeMaxBytes {
					continue
				}
				if test {
					ood = append(ood, txRow{Text: fn.Text, Label: class, Subset: "tests"})
				} else {
					id = append(id, txRow{Text: fn.Text, Label: class, Subset: "std"})
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, 0, fmt.Errorf("read %s: %w", d, err)
		}
	}
	return id, ood, skipped, nil
}

func buildGocode(ctx context.Context, cache, out string, log *slog.Logger) error {
	modDir := filepath.Join(gocodeSource.Dir(cache), "modcache", filepath.FromSlash(gocodeSource.Name)+"@"+gocodeSource.Version)
	root := filepath.Join(modDir, "src")
	if _, err := os.Stat(filepath.Join(root, "runtime")); err != nil {
		return fmt.Errorf("gocode: no Go source tree: %w", err)
	}
	classes := gocodeClasses()
	var allID, allOOD []txRow
	for _, a := range gocodeAreas {
		id, ood, skipped, err := gocodeRows(root, a.Class, a.Dirs)
		if err != nil {
			return fmt.Errorf("gocode: %w", err)
		}
		log.Info("gocode: area", "area", a.Class, "functions", len(id), "test functions", len(ood), "unparsable files", skipped)
		allID = append(allID, id...)
		allOOD = append(allOOD, ood...)
	}
	// Every extracted function is a sentence of the skip-gram corpus.
	var corpus [][]string
	for _, r := range append(slices.Clip(allID), allOOD...) {
		corpus = append(corpus, features.GoTokens(r.Text))
	}
	// Identical functions are one row: one found in two areas is dropped,
	// one in both a test and a non-test file is an ID row.
	id := txDedupe(allID)
	inID := map[string]bool{}
	for _, r := range id {
		inID[r.Text] = true
	}
	var ood []txRow
	for _, r := range txDedupe(allOOD) {
		if !inID[r.Text] {
			ood = append(ood, r)
		}
	}
	log.Info("gocode: distinct functions", "std", len(id), "tests", len(ood),
		"per class std", txClassCounts(id, classes), "per class tests", txClassCounts(ood, classes))

	rng := rand.New(rand.NewPCG(gocodeSeed, 3))
	splits, err := txSplit(id, classes, []int{gocodeWeak, gocodePool, gocodeTestID}, rng)
	if err != nil {
		return fmt.Errorf("gocode: %w", err)
	}
	weak, pool, testID := splits[0], splits[1], splits[2]
	oodSplit, err := txSplit(ood, classes, []int{min(gocodeOOD, len(ood))}, rng)
	if err != nil {
		return fmt.Errorf("gocode OOD: %w", err)
	}
	test := append(slices.Clip(testID), oodSplit[0]...)

	opt := gocodeSkipGram
	opt.Log = log
	if err := writeTxTestbed(ctx, out, "gocode", weak, pool, test, txTopTokens(weak, features.GoTokens, gocodeWeakTop), corpus, opt, "tokens"); err != nil {
		return err
	}
	goVersion, err := os.ReadFile(filepath.Join(modDir, "VERSION"))
	if err != nil {
		return err
	}
	release := strings.SplitN(string(goVersion), "\n", 2)[0]
	m := manifest{
		Name:       "gocode",
		Kind:       "classification",
		Classes:    classes,
		IDSubsets:  []string{"std"},
		OODSubsets: []string{"tests"},
		License:    "BSD-3-Clause (the Go standard library, © The Go Authors); see NOTICE",
		Source: fmt.Sprintf("Go %s source tree (GOROOT/src) from the Go module proxy, module %s %s",
			release, gocodeSource.Name, gocodeSource.Version),
		Notes: fmt.Sprintf("Each row is one top-level function or method of the Go standard library: its source text "+
			"from \"func\" to the closing brace, without its doc comment and with every comment inside removed (no "+
			"package clause, no file name). Label: the area its file is in, by directory under GOROOT/src: "+
			"cmd/compile, runtime, crypto, net, go (go/...), encoding (each with its subdirectories; testdata and "+
			"vendor directories and generated files left out). Functions of %d to %d bytes only. "+
			"ID (subset std): functions of non-test files; weak teacher %d, pool %d, test %d rows, classes as "+
			"balanced as the areas allow. OOD (subset tests): functions of the same areas' _test.go files, %d rows "+
			"(at most %d, classes as balanced as the areas allow). Identical functions are one row: one in two areas is "+
			"dropped, one in both a test and a non-test file is an ID row. "+
			"Tokens (tokenizer go): go/scanner tokens, comments and inserted semicolons dropped, literals as "+
			"<INT>, <FLOAT>, <IMAG>, <CHAR>, <STRING>. "+
			"Weak model: logistic regression on a binary bag of the %d tokens in most train_label rows. "+
			"Strong student: 3 Adam epochs of a linear probe on the mean of %d-d skip-gram token vectors "+
			"(word2vec skip-gram with negative sampling, window %d, %d negatives, min count %d, at most %d tokens, "+
			"%d epochs, seed %d), trained without labels on every extracted function, tests included. "+
			"Rebuild: aar testbed build gocode.",
			gocodeMinBytes, gocodeMaxBytes, len(weak), len(pool), len(testID), len(oodSplit[0]), gocodeOOD, gocodeWeakTop,
			opt.Dim, opt.Window, opt.Negatives, opt.MinCount, opt.MaxVocab, opt.Epochs, opt.Seed),
		Representation: features.Representation{
			Weak: features.Spec{Kind: "bag", Tokenizer: "go", Vocab: "weak_vocab.txt"},
			Strong: features.Spec{Kind: "embed", Tokenizer: "go", Vocab: "tokens.vocab", Vectors: "tokens.f32",
				Dim: opt.Dim, Pool: []string{"mean"}},
		},
		Training: w2s.Training{
			Weak:   w2s.Config{Model: "linear", Solver: "lbfgs", C: 1},
			Strong: w2s.Config{Model: "linear", Solver: "adam", Epochs: 3, BatchSize: 32, LR: 0.01},
		},
	}
	if err := writeManifest(out, m); err != nil {
		return err
	}
	license, err := os.ReadFile(filepath.Join(modDir, "LICENSE"))
	if err != nil {
		return err
	}
	notice := fmt.Sprintf(gocodeNotice, release, gocodeSource.Name, gocodeSource.Version) + string(license)
	return writeNotice(out, notice)
}

const gocodeNotice = `The Go programming language, standard library and compiler
https://go.dev/

Taken from the Go %s distribution as the Go module proxy serves it
(module %s, version %s, directory src/).

The rows of this testbed are functions of Go source files under
src/cmd/compile, src/runtime, src/crypto, src/net, src/go and src/encoding
(comments removed); features/ holds skip-gram token vectors trained on them
and a list of tokens.

The Go source code is distributed under the following licence (the
distribution's LICENSE file):

`
