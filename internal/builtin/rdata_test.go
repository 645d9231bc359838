package builtin

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ulikunitz/xz/lzma"
)

// rEnc writes R's XDR serialization, as R's serialize() does, for the
// objects the tests need: vectors with attributes, symbols (repeated ones as
// references), pairlists and ALTREP compact sequences.
type rEnc struct {
	buf  bytes.Buffer
	syms map[string]int
	refs int
}

// rval writes one object.
type rval func(e *rEnc)

type rattr struct {
	name string
	val  rval
}

func newREnc(version int) *rEnc {
	e := &rEnc{syms: map[string]int{}}
	e.buf.WriteString("X\n")
	e.int(int32(version))
	e.int(0x040201) // writer: R 4.2.1
	e.int(0x020300) // oldest reader: R 2.3.0
	if version == 3 {
		e.int(5)
		e.buf.WriteString("UTF-8")
	}
	return e
}

func (e *rEnc) int(v int32) { _ = binary.Write(&e.buf, binary.BigEndian, v) }

func (e *rEnc) flags(typ int, attrs []rattr, tag bool, levels int) {
	f := typ | levels<<12
	for _, a := range attrs {
		if a.name == "class" {
			f |= 1 << 8
		}
	}
	if len(attrs) > 0 {
		f |= 1 << 9
	}
	if tag {
		f |= 1 << 10
	}
	e.int(int32(f))
}

func (e *rEnc) char(s string, na bool, levels int) {
	e.flags(RChar, nil, false, levels)
	if na {
		e.int(-1)
		return
	}
	e.int(int32(len(s)))
	e.buf.WriteString(s)
}

func (e *rEnc) sym(name string) {
	if i, ok := e.syms[name]; ok {
		e.int(int32(i<<8 | refSXP))
		return
	}
	e.flags(RSym, nil, false, 0)
	e.char(name, false, 1<<6) // ASCII
	e.refs++
	e.syms[name] = e.refs
}

func (e *rEnc) attrs(as []rattr) {
	if len(as) == 0 {
		return
	}
	for _, a := range as {
		e.flags(RList, nil, true, 0)
		e.sym(a.name)
		a.val(e)
	}
	e.int(nilValueSXP)
}

func rInts(typ int, vals []int32, as ...rattr) rval {
	return func(e *rEnc) {
		e.flags(typ, as, false, 0)
		e.int(int32(len(vals)))
		for _, v := range vals {
			e.int(v)
		}
		e.attrs(as)
	}
}

func rReals(vals []float64, as ...rattr) rval {
	return func(e *rEnc) {
		e.flags(RReal, as, false, 0)
		e.int(int32(len(vals)))
		for _, v := range vals {
			_ = binary.Write(&e.buf, binary.BigEndian, math.Float64bits(v))
		}
		e.attrs(as)
	}
}

// rStrs writes a character vector; "<NA>" stands for NA, and strings that
// are not UTF-8 are written as latin1.
func rStrs(vals []string, as ...rattr) rval {
	return func(e *rEnc) {
		e.flags(RString, as, false, 0)
		e.int(int32(len(vals)))
		for _, v := range vals {
			lev := 1 << 3 // UTF-8
			if !isUTF8(v) {
				lev = 1 << 2 // latin1
			}
			e.char(v, v == "<NA>", lev)
		}
		e.attrs(as)
	}
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func rList(elems []rval, as ...rattr) rval {
	return func(e *rEnc) {
		e.flags(RVector, as, false, 0)
		e.int(int32(len(elems)))
		for _, el := range elems {
			el(e)
		}
		e.attrs(as)
	}
}

// rCompactIntSeq writes start:(start+n-1) as R 3.5+ does: an ALTREP
// compact_intseq whose state is c(n, start, 1).
func rCompactIntSeq(n, start int, as ...rattr) rval {
	return func(e *rEnc) {
		e.int(altrepSXP)
		e.flags(RList, nil, false, 0) // info: pairlist(class, package, type)
		e.sym("compact_intseq")
		e.flags(RList, nil, false, 0)
		e.sym("base")
		e.flags(RList, nil, false, 0)
		rInts(RInt, []int32{RInt})(e)
		e.int(nilValueSXP)
		rReals([]float64{float64(n), float64(start), 1})(e)
		if len(as) == 0 {
			e.int(nilValueSXP)
		} else {
			e.attrs(as)
		}
	}
}

func serializeR(version int, v rval) []byte {
	e := newREnc(version)
	v(e)
	return e.buf.Bytes()
}

// rDataFrame is a tibble of character columns (score as a factor).
func rDataFrame(product, text, score []string) rval {
	levels := []string{"great", "other"}
	codes := make([]int32, len(score))
	for i, s := range score {
		codes[i] = int32(slices.Index(levels, s) + 1)
	}
	return rList([]rval{
		rStrs(product),
		rStrs(text),
		rInts(RInt, codes, rattr{"levels", rStrs(levels)}, rattr{"class", rStrs([]string{"factor"})}),
	},
		rattr{"names", rStrs([]string{"product", "review", "score"})},
		rattr{"row.names", rInts(RInt, []int32{RNAInt, -int32(len(text))})},
		rattr{"class", rStrs([]string{"tbl_df", "tbl", "data.frame"})},
	)
}

// bzip2Ints is bzip2(serialize(c(7L, 8L, 9L), version = 2)), made with
// Python's bz2 module (Go has no bzip2 writer).
const bzip2Ints = "425a6839314159265359e3b224b300001142007cf2004020003100d34d0254fd534d32690dfa2ae40eb482dbb74639f177245385090e3b224b30"

// rObj is one object of a test database: its serialization and the type
// byte to compress it with (kind 3 databases only).
type rObj struct {
	name    string
	payload []byte
	typ     byte
}

// makeRDB writes a lazy-load database as R's makeLazyLoadDB does, with
// compression kind 1 (zlib, no type byte) or 3 (a type byte per object).
func makeRDB(t testing.TB, kind int, objs []rObj) (rdx, rdb []byte) {
	t.Helper()
	var db bytes.Buffer
	var entries []rval
	var names []string
	for _, o := range objs {
		var body bytes.Buffer
		typ := o.typ
		if kind == 1 {
			typ = '1'
		}
		switch typ {
		case 'Z':
			w, err := lzma.Writer2Config{DictCap: 1 << 16}.NewWriter2(&body)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(o.payload)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		case '1':
			w := zlib.NewWriter(&body)
			w.Write(o.payload)
			w.Close()
		case '2':
			b, _ := hex.DecodeString(bzip2Ints)
			body.Write(b)
		case '0':
			body.Write(o.payload)
		}
		off := db.Len()
		_ = binary.Write(&db, binary.BigEndian, uint32(len(o.payload)))
		if kind != 1 {
			db.WriteByte(typ)
		}
		db.Write(body.Bytes())
		entries = append(entries, rInts(RInt, []int32{int32(off), int32(db.Len() - off)}))
		names = append(names, o.name)
	}
	compressed := rInts(RLogical, []int32{1})
	if kind != 1 {
		compressed = rReals([]float64{float64(kind)})
	}
	idx := rList([]rval{
		rList(entries, rattr{"names", rStrs(names)}),
		rList(nil),
		compressed,
	}, rattr{"names", rStrs([]string{"variables", "references", "compressed"})})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(serializeR(2, idx))
	zw.Close()
	return gz.Bytes(), db.Bytes()
}

func TestRDBRoundTrip(t *testing.T) {
	frame := serializeR(3, rDataFrame(
		[]string{"B01", "B02", "<NA>"},
		[]string{"Tasty.<br />Would buy", "caf\xe9 au lait", "meh"},
		[]string{"great", "other", "great"}))
	seq := serializeR(3, rCompactIntSeq(5, 10, rattr{"names", rStrs([]string{"a", "b", "c", "d", "e"})}))
	ints := serializeR(2, rInts(RInt, []int32{7, 8, 9}))
	for _, kind := range []int{1, 3} {
		rdx, rdb := makeRDB(t, kind, []rObj{
			{"frame", frame, 'Z'},
			{"seq", seq, '1'},
			{"ints", ints, '2'},
			{"stored", ints, '0'},
		})
		db, err := ParseRDB(rdx, rdb)
		if err != nil {
			t.Fatalf("kind %d: %v", kind, err)
		}
		if got := db.Names(); !slices.Equal(got, []string{"frame", "seq", "ints", "stored"}) {
			t.Fatalf("kind %d: names %v", kind, got)
		}
		df, err := db.Get("frame")
		if err != nil {
			t.Fatalf("kind %d: %v", kind, err)
		}
		if got := df.Class(); !slices.Equal(got, []string{"tbl_df", "tbl", "data.frame"}) {
			t.Errorf("class %v", got)
		}
		if rn := df.Attr("row.names"); rn == nil || !slices.Equal(rn.Ints, []int32{RNAInt, -3}) {
			t.Errorf("row.names %+v", rn)
		}
		prod, err := df.Column("product")
		if err != nil {
			t.Fatal(err)
		}
		pv, pok, _ := prod.StringValues()
		if !slices.Equal(pv[:2], []string{"B01", "B02"}) || !slices.Equal(pok, []bool{true, true, false}) {
			t.Errorf("product %q %v", pv, pok)
		}
		rev, _ := df.Column("review")
		if rv, _, _ := rev.StringValues(); !slices.Equal(rv, []string{"Tasty.<br />Would buy", "café au lait", "meh"}) {
			t.Errorf("review %q (latin1 must become UTF-8)", rv)
		}
		score, _ := df.Column("score")
		if sv, _, err := score.StringValues(); err != nil || !slices.Equal(sv, []string{"great", "other", "great"}) {
			t.Errorf("score %q %v", sv, err)
		}
		if _, err := df.Column("nope"); err == nil {
			t.Error("a missing column gave no error")
		}
		s, err := db.Get("seq")
		if err != nil {
			t.Fatal(err)
		}
		if s.Type != RInt || !slices.Equal(s.Ints, []int32{10, 11, 12, 13, 14}) || !slices.Equal(s.Names(), []string{"a", "b", "c", "d", "e"}) {
			t.Errorf("compact sequence %+v", s)
		}
		for _, n := range []string{"ints", "stored"} {
			o, err := db.Get(n)
			if err != nil {
				t.Fatalf("kind %d %s: %v", kind, n, err)
			}
			if o.Type != RInt || !slices.Equal(o.Ints, []int32{7, 8, 9}) {
				t.Errorf("kind %d %s: %+v", kind, n, o)
			}
		}
		if _, err := db.Get("absent"); err == nil || !strings.Contains(err.Error(), "no such object") {
			t.Errorf("absent object: %v", err)
		}
	}
}

func TestOpenRDBFiles(t *testing.T) {
	rdx, rdb := makeRDB(t, 3, []rObj{{"x", serializeR(3, rStrs([]string{"hi"})), 'Z'}})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Rdata.rdx"), rdx, 0o644)
	os.WriteFile(filepath.Join(dir, "Rdata.rdb"), rdb, 0o644)
	db, err := OpenRDB(filepath.Join(dir, "Rdata"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := db.Get("x")
	if err != nil || !slices.Equal(x.Strs, []string{"hi"}) {
		t.Fatalf("x = %+v, %v", x, err)
	}
	if _, err := OpenRDB(filepath.Join(dir, "Missing")); err == nil {
		t.Error("a missing database opened")
	}
}

func TestUnserializeBadInput(t *testing.T) {
	good := serializeR(3, rStrs([]string{"a", "b"}))
	deep := newREnc(2)
	for range maxRDepth + 5 {
		deep.flags(RVector, nil, false, 0)
		deep.int(1)
	}
	deep.int(nilValueSXP)
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not an XDR"},
		{"ascii format", []byte("A\n1\n"), "not an XDR"},
		{"header only", good[:2], "truncated"},
		{"version 4", append([]byte("X\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0), "format version 4"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"huge length", append(append([]byte(nil), good[:27]...), 0x7f, 0xff, 0xff, 0xff), "exceeds"},
		{"bad reference", append(serializeR(2, func(e *rEnc) {})[:14], 0, 0, 0x05, refSXP), "reference 5"},
		{"too deep", deep.buf.Bytes(), "nested deeper"},
		{"byte code", append(serializeR(2, func(e *rEnc) {})[:14], 0, 0, 0, bcodeSXP), "byte code"},
		{"unknown type", append(serializeR(2, func(e *rEnc) {})[:14], 0, 0, 0, 99), "unsupported SEXPTYPE 99"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Unserialize(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestParseRDBBadInput(t *testing.T) {
	rdx, rdb := makeRDB(t, 3, []rObj{{"x", serializeR(3, rStrs([]string{"hi"})), 'Z'}})
	if _, err := ParseRDB(rdx[:10], rdb); err == nil {
		t.Error("a truncated index parsed")
	}
	if _, err := ParseRDB(rdx, rdb[:4]); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("an index pointing past the database: %v", err)
	}
	bad := append([]byte(nil), rdb...)
	bad[4] = 'Q'
	db, err := ParseRDB(rdx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get("x"); err == nil || !strings.Contains(err.Error(), "compression type") {
		t.Errorf("unknown compression: %v", err)
	}
	big := append([]byte(nil), rdb...)
	binary.BigEndian.PutUint32(big, 1000)
	db, _ = ParseRDB(rdx, big)
	if _, err := db.Get("x"); err == nil {
		t.Error("a wrong uncompressed length passed")
	}
}

func FuzzUnserialize(f *testing.F) {
	f.Add(serializeR(3, rDataFrame([]string{"p"}, []string{"t"}, []string{"great"})))
	f.Add(serializeR(3, rCompactIntSeq(3, 1)))
	f.Add(serializeR(2, rInts(RInt, []int32{1, 2})))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := Unserialize(b)
		if err == nil && o == nil {
			t.Fatal("no object and no error")
		}
	})
}

func FuzzParseRDB(f *testing.F) {
	rdx, rdb := makeRDB(f, 3, []rObj{
		{"x", serializeR(3, rStrs([]string{"hi"})), 'Z'},
		{"y", serializeR(2, rInts(RInt, []int32{7, 8, 9})), '2'},
	})
	f.Add(rdx, rdb)
	rdx, rdb = makeRDB(f, 1, []rObj{{"z", serializeR(3, rCompactIntSeq(4, 2)), '1'}})
	f.Add(rdx, rdb)
	f.Fuzz(func(t *testing.T, rdx, rdb []byte) {
		db, err := ParseRDB(rdx, rdb)
		if err != nil {
			return
		}
		for _, n := range db.Names() {
			db.Get(n)
		}
	})
}
