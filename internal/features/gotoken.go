package features

import (
	"go/scanner"
	"go/token"
)

func init() {
	RegisterTokenizer("go", GoTokens)
}

// goLiteralClass maps each literal kind to the token that stands for every
// literal of that kind: a vocabulary of every string and number in a corpus
// would be huge and would mostly hold one-off values.
var goLiteralClass = map[token.Token]string{
	token.INT:    "<INT>",
	token.FLOAT:  "<FLOAT>",
	token.IMAG:   "<IMAG>",
	token.CHAR:   "<CHAR>",
	token.STRING: "<STRING>",
}

// GoTokens splits Go source text into tokens with go/scanner: identifiers as
// written, keywords and operators as Go spells them, each literal as its
// class (<INT>, <FLOAT>, <IMAG>, <CHAR>, <STRING>), anything the scanner
// cannot read as <ILLEGAL>. Comments and the semicolons the scanner inserts
// at line ends are dropped; a semicolon written in the text is kept. It never
// fails: text that is not Go still gives tokens.
func GoTokens(text string) []string {
	src := []byte(text)
	fset := token.NewFileSet()
	file := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(file, src, func(token.Position, string) {}, 0)
	var out []string
	for {
		_, tok, lit := s.Scan()
		switch {
		case tok == token.EOF:
			return out
		case tok == token.SEMICOLON:
			if lit == ";" {
				out = append(out, ";")
			}
		case tok == token.IDENT:
			out = append(out, lit)
		case tok == token.ILLEGAL:
			out = append(out, "<ILLEGAL>")
		case tok.IsLiteral():
			out = append(out, goLiteralClass[tok])
		default:
			out = append(out, tok.String())
		}
	}
}
