package features

import (
	"slices"
	"strings"
	"testing"
)

func TestGoTokens(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "function",
			src:  "func add(a, b int) int {\n\treturn a + b // sum\n}",
			want: []string{"func", "add", "(", "a", ",", "b", "int", ")", "int", "{", "return", "a", "+", "b", "}"},
		},
		{
			name: "literals",
			src:  "x := []any{1, 2.5, 3i, 'c', \"s\", `raw\nstring`, 0x1F}",
			want: []string{"x", ":=", "[", "]", "any", "{", "<INT>", ",", "<FLOAT>", ",", "<IMAG>", ",",
				"<CHAR>", ",", "<STRING>", ",", "<STRING>", ",", "<INT>", "}"},
		},
		{
			name: "explicit semicolons kept, inserted ones dropped",
			src:  "for i := 0; i < n; i++ {\n\tf()\n}\n",
			want: []string{"for", "i", ":=", "<INT>", ";", "i", "<", "n", ";", "i", "++", "{", "f", "(", ")", "}"},
		},
		{
			name: "comments dropped",
			src:  "/* block */ a /* more */ &^= b // line",
			want: []string{"a", "&^=", "b"},
		},
		{
			name: "not Go",
			src:  "a @ b",
			want: []string{"a", "<ILLEGAL>", "b"},
		},
		{name: "empty", src: "", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := GoTokens(tc.src)
			if !slices.Equal(got, tc.want) {
				t.Errorf("GoTokens(%q)\n got %q\nwant %q", tc.src, got, tc.want)
			}
			for _, tok := range got {
				if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
					t.Errorf("token %q is empty or holds white space (it must fit a vocabulary line)", tok)
				}
			}
		})
	}
}

func TestGoTokenizerRegistered(t *testing.T) {
	tok, err := TokenizerByName("go")
	if err != nil {
		t.Fatal(err)
	}
	if got := tok("a.b"); !slices.Equal(got, []string{"a", ".", "b"}) {
		t.Errorf("go tokenizer: got %q", got)
	}
}

func FuzzGoTokens(f *testing.F) {
	f.Add("func f() { return }")
	f.Add("\"unterminated")
	f.Add("`raw")
	f.Add("/* open")
	f.Fuzz(func(t *testing.T, src string) {
		for _, tok := range GoTokens(src) {
			if tok == "" || strings.ContainsAny(tok, "\r\n") {
				t.Fatalf("token %q is empty or holds a line break", tok)
			}
		}
	})
}
