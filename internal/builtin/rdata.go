package builtin

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"unicode/utf8"

	"github.com/ulikunitz/xz/lzma"
)

// This file reads R's lazy-load databases, the data/Rdata.rdb and
// data/Rdata.rdx files of R packages, without R.
//
// The .rdx index is a gzip'd R serialization of a list whose "variables"
// member maps each object name to c(offset, length) in the .rdb file and
// whose "compressed" member says how objects are compressed: TRUE (zlib),
// 2 (bzip2) or 3 (xz). An object in the .rdb is a 4-byte big-endian
// uncompressed length followed, for zlib, directly by a zlib stream, and for
// bzip2 and xz by one type byte ('Z' raw LZMA2, '2' bzip2, '1' zlib, '0'
// stored) and the data. The uncompressed bytes are an XDR serialization
// ("X\n", format version 2 or 3).

// R SEXPTYPEs that RObject.Type takes.
const (
	RNil     = 0  // NILSXP
	RSym     = 1  // SYMSXP
	RList    = 2  // LISTSXP (pairlist): Elems with Tags
	REnv     = 4  // ENVSXP (contents are not kept)
	RLang    = 6  // LANGSXP: Elems with Tags
	RChar    = 9  // CHARSXP: Strs[0]
	RLogical = 10 // LGLSXP: Ints
	RInt     = 13 // INTSXP: Ints
	RReal    = 14 // REALSXP: Reals
	RComplex = 15 // CPLXSXP: Reals, (re, im) pairs
	RString  = 16 // STRSXP: Strs and NA
	RVector  = 19 // VECSXP (list): Elems
	RExpr    = 20 // EXPRSXP: Elems
	RRaw     = 24 // RAWSXP: Raw
	RS4      = 25 // S4SXP
	// RPersist is a reference the writer stored by name (in a lazy-load
	// database, an environment kept as another key); Strs holds the name.
	RPersist = 247
)

// RNAInt is R's NA_integer_ (and NA for logicals).
const RNAInt = math.MinInt32

// RObject is a decoded R value. Which members are set depends on Type.
type RObject struct {
	Type  int
	Ints  []int32
	Reals []float64
	Strs  []string
	// NA marks the NA strings of a character vector (nil when none is).
	NA    []bool
	Elems []*RObject
	// Tags are the names of a pairlist's elements ("" for none).
	Tags  []string
	Raw   []byte
	Attrs []RAttr
}

// RAttr is one attribute of an R object.
type RAttr struct {
	Name  string
	Value *RObject
}

// Attr returns the attribute called name, or nil.
func (o *RObject) Attr(name string) *RObject {
	if o == nil {
		return nil
	}
	for _, a := range o.Attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return nil
}

// Names returns the "names" attribute (nil when absent).
func (o *RObject) Names() []string {
	if n := o.Attr("names"); n != nil && n.Type == RString {
		return n.Strs
	}
	return nil
}

// Class returns the "class" attribute (nil when absent).
func (o *RObject) Class() []string {
	if c := o.Attr("class"); c != nil && c.Type == RString {
		return c.Strs
	}
	return nil
}

// Len is the number of elements of a vector.
func (o *RObject) Len() int {
	switch o.Type {
	case RLogical, RInt:
		return len(o.Ints)
	case RReal:
		return len(o.Reals)
	case RComplex:
		return len(o.Reals) / 2
	case RString:
		return len(o.Strs)
	case RVector, RExpr, RList, RLang:
		return len(o.Elems)
	case RRaw:
		return len(o.Raw)
	}
	return 0
}

// Column returns the list element called name (a data frame's column).
func (o *RObject) Column(name string) (*RObject, error) {
	if o.Type != RVector {
		return nil, fmt.Errorf("column %q: not a list (SEXPTYPE %d)", name, o.Type)
	}
	for i, n := range o.Names() {
		if n == name && i < len(o.Elems) {
			return o.Elems[i], nil
		}
	}
	return nil, fmt.Errorf("no column %q (columns: %v)", name, o.Names())
}

// StringValues returns a character vector's or a factor's values as
// strings; ok[i] is false for NA.
func (o *RObject) StringValues() (vals []string, ok []bool, err error) {
	switch {
	case o.Type == RString:
		vals = o.Strs
		ok = make([]bool, len(vals))
		for i := range ok {
			ok[i] = o.NA == nil || !o.NA[i]
		}
		return vals, ok, nil
	case o.Type == RInt && o.Attr("levels") != nil:
		lev := o.Attr("levels")
		if lev.Type != RString {
			return nil, nil, fmt.Errorf("factor levels are SEXPTYPE %d, not strings", lev.Type)
		}
		vals = make([]string, len(o.Ints))
		ok = make([]bool, len(o.Ints))
		for i, c := range o.Ints {
			if c == RNAInt {
				continue
			}
			if c < 1 || int(c) > len(lev.Strs) {
				return nil, nil, fmt.Errorf("factor code %d outside its %d levels", c, len(lev.Strs))
			}
			vals[i], ok[i] = lev.Strs[c-1], true
		}
		return vals, ok, nil
	}
	return nil, nil, fmt.Errorf("SEXPTYPE %d is neither a character vector nor a factor", o.Type)
}

// RDB is an opened R lazy-load database.
type RDB struct {
	path       string
	data       []byte
	compressed int
	names      []string
	index      map[string][2]int
}

// OpenRDB reads an R lazy-load database: path.rdx (the index) and
// path.rdb (the objects), path given without the extension.
func OpenRDB(path string) (*RDB, error) {
	rdx, err := os.ReadFile(path + ".rdx")
	if err != nil {
		return nil, fmt.Errorf("open R database: %w", err)
	}
	rdb, err := os.ReadFile(path + ".rdb")
	if err != nil {
		return nil, fmt.Errorf("open R database: %w", err)
	}
	db, err := ParseRDB(rdx, rdb)
	if err != nil {
		return nil, fmt.Errorf("open R database %s: %w", path, err)
	}
	db.path = path
	return db, nil
}

// ParseRDB reads a lazy-load database from the bytes of its .rdx and .rdb
// files.
func ParseRDB(rdx, rdb []byte) (*RDB, error) {
	zr, err := gzip.NewReader(bytes.NewReader(rdx))
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("index: gunzip: %w", err)
	}
	idx, err := Unserialize(raw)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	vars, err := idx.Column("variables")
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	db := &RDB{data: rdb, compressed: 1, index: map[string][2]int{}}
	if c, err := idx.Column("compressed"); err == nil {
		switch {
		case (c.Type == RLogical || c.Type == RInt) && len(c.Ints) == 1:
			db.compressed = int(c.Ints[0])
		case c.Type == RReal && len(c.Reals) == 1:
			db.compressed = int(c.Reals[0])
		default:
			return nil, fmt.Errorf("index: \"compressed\" is not a scalar")
		}
	}
	names := vars.Names()
	if vars.Type != RVector || len(names) != len(vars.Elems) {
		return nil, fmt.Errorf("index: \"variables\" is not a named list")
	}
	for i, n := range names {
		e := vars.Elems[i]
		var off, n2 int
		switch {
		case e.Type == RInt && len(e.Ints) == 2:
			off, n2 = int(e.Ints[0]), int(e.Ints[1])
		case e.Type == RReal && len(e.Reals) == 2:
			off, n2 = int(e.Reals[0]), int(e.Reals[1])
		default:
			return nil, fmt.Errorf("index: entry %q is not c(offset, length)", n)
		}
		if off < 0 || n2 < 5 || off+n2 > len(rdb) {
			return nil, fmt.Errorf("index: entry %q (offset %d, length %d) lies outside the %d-byte database", n, off, n2, len(rdb))
		}
		db.names = append(db.names, n)
		db.index[n] = [2]int{off, n2}
	}
	return db, nil
}

// Names lists the database's objects in index order.
func (db *RDB) Names() []string { return append([]string(nil), db.names...) }

// Get decodes the object called name.
func (db *RDB) Get(name string) (*RObject, error) {
	loc, ok := db.index[name]
	if !ok {
		return nil, fmt.Errorf("read object %q of R database %s: no such object (objects: %v)", name, db.path, db.names)
	}
	raw, err := decompressR(db.data[loc[0]:loc[0]+loc[1]], db.compressed)
	if err != nil {
		return nil, fmt.Errorf("read object %q of R database %s: %w", name, db.path, err)
	}
	o, err := Unserialize(raw)
	if err != nil {
		return nil, fmt.Errorf("read object %q of R database %s: %w", name, db.path, err)
	}
	return o, nil
}

// maxRObject bounds the uncompressed size of one object.
const maxRObject = 1 << 30

// decompressR undoes R_compress1 (zlib, kind 1), R_compress2 (bzip2, kind
// 2) or R_compress3 (xz, kind 3).
func decompressR(b []byte, kind int) ([]byte, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%d bytes: too short for a compressed object", len(b))
	}
	n := int(binary.BigEndian.Uint32(b))
	if n > maxRObject {
		return nil, fmt.Errorf("uncompressed length %d over the %d limit", n, maxRObject)
	}
	var r io.Reader
	var err error
	if kind == 1 {
		if r, err = zlib.NewReader(bytes.NewReader(b[4:])); err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
	} else {
		body := bytes.NewReader(b[5:])
		switch t := b[4]; t {
		case 'Z':
			// R compresses with preset 9 (a 64 MiB dictionary); no match
			// reaches further back than the output's length either.
			dict := min(max(n, lzma.MinDictCap), 64<<20)
			if r, err = (lzma.Reader2Config{DictCap: dict}).NewReader2(body); err != nil {
				return nil, fmt.Errorf("lzma2: %w", err)
			}
		case '2':
			r = bzip2.NewReader(body)
		case '1':
			if r, err = zlib.NewReader(body); err != nil {
				return nil, fmt.Errorf("zlib: %w", err)
			}
		case '0':
			r = body
		default:
			return nil, fmt.Errorf("unknown compression type byte %q", t)
		}
	}
	// Read at most one byte more than announced, so a damaged length
	// cannot make us allocate more than the data holds.
	out, err := io.ReadAll(io.LimitReader(r, int64(n)+1))
	if err != nil {
		return nil, fmt.Errorf("decompress %d bytes: %w", n, err)
	}
	if len(out) != n {
		return nil, fmt.Errorf("decompressed %d bytes, the header announces %d", len(out), n)
	}
	return out, nil
}

// Serialization constants (R's serialize.c).
const (
	refSXP          = 255
	nilValueSXP     = 254
	globalEnvSXP    = 253
	unboundValueSXP = 252
	missingArgSXP   = 251
	baseNamespace   = 250
	namespaceSXP    = 249
	packageSXP      = 248
	persistSXP      = 247
	emptyEnvSXP     = 242
	baseEnvSXP      = 241
	attrLangSXP     = 240
	attrListSXP     = 239
	altrepSXP       = 238

	closSXP    = 3
	promSXP    = 5
	specialSXP = 7
	builtinSXP = 8
	dotSXP     = 17
	extptrSXP  = 22
	weakrefSXP = 23
	bcodeSXP   = 21

	latin1Mask = 1 << 2
)

const (
	// maxRDepth bounds the nesting of decoded objects.
	maxRDepth = 2000
	// maxCompactSeq bounds the length of an ALTREP compact sequence (which
	// takes a few bytes to write whatever its length).
	maxCompactSeq = 1 << 24
)

// Unserialize decodes an XDR R serialization (format version 2 or 3).
func Unserialize(b []byte) (*RObject, error) {
	if len(b) < 2 || b[0] != 'X' || b[1] != '\n' {
		return nil, errors.New("not an XDR R serialization (want \"X\\n\")")
	}
	d := &rdecoder{b: b, off: 2}
	ver, err := d.int()
	if err != nil {
		return nil, err
	}
	if _, err := d.int(); err != nil { // writer's R version
		return nil, err
	}
	if _, err := d.int(); err != nil { // oldest reader's R version
		return nil, err
	}
	switch ver {
	case 2:
	case 3:
		n, err := d.int()
		if err != nil {
			return nil, err
		}
		if _, err := d.bytes(n); err != nil { // native encoding
			return nil, err
		}
	default:
		return nil, fmt.Errorf("serialization format version %d (want 2 or 3)", ver)
	}
	o, err := d.item(0)
	if err != nil {
		return nil, fmt.Errorf("at byte %d: %w", d.off, err)
	}
	return o, nil
}

type rdecoder struct {
	b    []byte
	off  int
	refs []*RObject
}

func (d *rdecoder) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, fmt.Errorf("truncated: %d bytes wanted, %d left", n, len(d.b)-d.off)
	}
	out := d.b[d.off : d.off+n]
	d.off += n
	return out, nil
}

func (d *rdecoder) int() (int, error) {
	b, err := d.bytes(4)
	if err != nil {
		return 0, err
	}
	return int(int32(binary.BigEndian.Uint32(b))), nil
}

func (d *rdecoder) length() (int, error) {
	n, err := d.int()
	if err != nil {
		return 0, err
	}
	if n == -1 { // long vector: upper and lower 32 bits
		hi, err := d.int()
		if err != nil {
			return 0, err
		}
		lo, err := d.int()
		if err != nil {
			return 0, err
		}
		n = hi<<32 | int(uint32(lo))
	}
	if n < 0 || n > len(d.b)-d.off {
		return 0, fmt.Errorf("vector length %d exceeds the %d bytes left", n, len(d.b)-d.off)
	}
	return n, nil
}

// str reads a CHARSXP's body given its flags; ok is false for NA.
func (d *rdecoder) str(flags int) (s string, ok bool, err error) {
	n, err := d.int()
	if err != nil {
		return "", false, err
	}
	if n == -1 {
		return "", false, nil
	}
	b, err := d.bytes(n)
	if err != nil {
		return "", false, err
	}
	if (flags>>12)&latin1Mask != 0 && !utf8.Valid(b) {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), true, nil
	}
	return string(b), true, nil
}

func (d *rdecoder) item(depth int) (*RObject, error) {
	if depth > maxRDepth {
		return nil, fmt.Errorf("objects nested deeper than %d", maxRDepth)
	}
	flags, err := d.int()
	if err != nil {
		return nil, err
	}
	typ := flags & 0xff
	hasAttr := flags&(1<<9) != 0
	switch typ {
	case nilValueSXP:
		return &RObject{Type: RNil}, nil
	case globalEnvSXP, emptyEnvSXP, baseEnvSXP, baseNamespace, unboundValueSXP, missingArgSXP:
		return &RObject{Type: REnv}, nil
	case refSXP:
		i := flags >> 8
		if i == 0 {
			if i, err = d.int(); err != nil {
				return nil, err
			}
		}
		if i < 1 || i > len(d.refs) {
			return nil, fmt.Errorf("reference %d outside the %d read so far", i, len(d.refs))
		}
		return d.refs[i-1], nil
	case persistSXP, packageSXP, namespaceSXP:
		o := &RObject{Type: typ}
		if typ != persistSXP {
			o.Type = REnv
		}
		d.refs = append(d.refs, o)
		if _, err := d.int(); err != nil { // always 0
			return nil, err
		}
		n, err := d.length()
		if err != nil {
			return nil, err
		}
		for range n {
			s, err := d.item(depth + 1)
			if err != nil {
				return nil, err
			}
			if s.Type != RChar {
				return nil, fmt.Errorf("persistent name holds SEXPTYPE %d, not a string", s.Type)
			}
			o.Strs = append(o.Strs, s.Strs...)
		}
		return o, nil
	case RSym:
		o := &RObject{Type: RSym}
		d.refs = append(d.refs, o)
		c, err := d.item(depth + 1)
		if err != nil {
			return nil, err
		}
		if c.Type != RChar {
			return nil, fmt.Errorf("symbol name is SEXPTYPE %d, not a string", c.Type)
		}
		o.Strs = c.Strs
		return o, nil
	case REnv:
		o := &RObject{Type: REnv}
		d.refs = append(d.refs, o)
		if _, err := d.int(); err != nil { // locked
			return nil, err
		}
		for range 4 { // enclosure, frame, hash table, attributes
			if _, err := d.item(depth + 1); err != nil {
				return nil, err
			}
		}
		return o, nil
	case RList, RLang, closSXP, promSXP, dotSXP, attrListSXP, attrLangSXP:
		return d.pairlist(flags, depth)
	case altrepSXP:
		return d.altrep(depth)
	case bcodeSXP:
		return nil, errors.New("byte code is not supported")
	}

	o := &RObject{Type: typ}
	switch typ {
	case extptrSXP:
		d.refs = append(d.refs, o)
		for range 2 { // protected value, tag
			if _, err := d.item(depth + 1); err != nil {
				return nil, err
			}
		}
	case weakrefSXP:
		d.refs = append(d.refs, o)
	case specialSXP, builtinSXP:
		n, err := d.int()
		if err != nil {
			return nil, err
		}
		name, err := d.bytes(n)
		if err != nil {
			return nil, err
		}
		o.Strs = []string{string(name)}
	case RChar:
		s, ok, err := d.str(flags)
		if err != nil {
			return nil, err
		}
		o.Strs = []string{s}
		if !ok {
			o.NA = []bool{true}
		}
	case RLogical, RInt:
		n, err := d.length()
		if err != nil {
			return nil, err
		}
		b, err := d.bytes(4 * n)
		if err != nil {
			return nil, err
		}
		o.Ints = make([]int32, n)
		for i := range o.Ints {
			o.Ints[i] = int32(binary.BigEndian.Uint32(b[4*i:]))
		}
	case RReal, RComplex:
		n, err := d.length()
		if err != nil {
			return nil, err
		}
		if typ == RComplex {
			n *= 2
		}
		b, err := d.bytes(8 * n)
		if err != nil {
			return nil, err
		}
		o.Reals = make([]float64, n)
		for i := range o.Reals {
			o.Reals[i] = math.Float64frombits(binary.BigEndian.Uint64(b[8*i:]))
		}
	case RString:
		n, err := d.length()
		if err != nil {
			return nil, err
		}
		o.Strs = make([]string, n)
		for i := range n {
			cf, err := d.int()
			if err != nil {
				return nil, err
			}
			if cf&0xff != RChar {
				return nil, fmt.Errorf("character vector element %d is SEXPTYPE %d", i, cf&0xff)
			}
			s, ok, err := d.str(cf)
			if err != nil {
				return nil, err
			}
			o.Strs[i] = s
			if !ok {
				if o.NA == nil {
					o.NA = make([]bool, n)
				}
				o.NA[i] = true
			}
		}
	case RVector, RExpr:
		n, err := d.length()
		if err != nil {
			return nil, err
		}
		o.Elems = make([]*RObject, n)
		for i := range o.Elems {
			if o.Elems[i], err = d.item(depth + 1); err != nil {
				return nil, err
			}
		}
	case RRaw:
		n, err := d.length()
		if err != nil {
			return nil, err
		}
		b, err := d.bytes(n)
		if err != nil {
			return nil, err
		}
		o.Raw = append([]byte(nil), b...)
	case RS4:
	default:
		return nil, fmt.Errorf("unsupported SEXPTYPE %d", typ)
	}
	if hasAttr {
		a, err := d.item(depth + 1)
		if err != nil {
			return nil, err
		}
		if typ != RChar {
			if o.Attrs, err = attrsOf(a); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

// pairlist reads a pairlist (or a language object, closure, promise) whose
// first cell's flags are given, walking the CDR chain iteratively.
func (d *rdecoder) pairlist(flags, depth int) (*RObject, error) {
	typ := flags & 0xff
	o := &RObject{Type: typ}
	switch typ {
	case attrListSXP:
		o.Type = RList
	case attrLangSXP:
		o.Type = RLang
	}
	first := true
	for {
		if flags&(1<<9) != 0 {
			a, err := d.item(depth + 1)
			if err != nil {
				return nil, err
			}
			if first {
				if o.Attrs, err = attrsOf(a); err != nil {
					return nil, err
				}
			}
		}
		tag := ""
		if flags&(1<<10) != 0 {
			t, err := d.item(depth + 1)
			if err != nil {
				return nil, err
			}
			if (t.Type == RSym || t.Type == RChar) && len(t.Strs) == 1 {
				tag = t.Strs[0]
			}
		}
		car, err := d.item(depth + 1)
		if err != nil {
			return nil, err
		}
		o.Elems = append(o.Elems, car)
		o.Tags = append(o.Tags, tag)
		first = false
		// The CDR: another cell of a pairlist continues the chain.
		if flags, err = d.int(); err != nil {
			return nil, err
		}
		switch flags & 0xff {
		case RList, attrListSXP:
			continue
		case nilValueSXP:
			return o, nil
		}
		d.off -= 4
		tail, err := d.item(depth + 1)
		if err != nil {
			return nil, err
		}
		o.Elems = append(o.Elems, tail)
		o.Tags = append(o.Tags, "")
		return o, nil
	}
}

// attrsOf turns an attribute pairlist into RAttrs.
func attrsOf(a *RObject) ([]RAttr, error) {
	if a.Type == RNil {
		return nil, nil
	}
	if a.Type != RList {
		return nil, fmt.Errorf("attributes are SEXPTYPE %d, not a pairlist", a.Type)
	}
	out := make([]RAttr, len(a.Elems))
	for i, v := range a.Elems {
		out[i] = RAttr{Name: a.Tags[i], Value: v}
	}
	return out, nil
}

// altrep reconstructs the ALTREP classes R writes in data: compact integer
// and real sequences, wrappers and deferred strings.
func (d *rdecoder) altrep(depth int) (*RObject, error) {
	info, err := d.item(depth + 1)
	if err != nil {
		return nil, err
	}
	state, err := d.item(depth + 1)
	if err != nil {
		return nil, err
	}
	attr, err := d.item(depth + 1)
	if err != nil {
		return nil, err
	}
	if info.Type != RList || len(info.Elems) < 1 || info.Elems[0].Type != RSym {
		return nil, errors.New("ALTREP class information is malformed")
	}
	class := info.Elems[0].Strs[0]
	var o *RObject
	switch class {
	case "compact_intseq", "compact_realseq":
		var s []float64
		switch state.Type {
		case RReal:
			s = state.Reals
		case RInt:
			for _, v := range state.Ints {
				s = append(s, float64(v))
			}
		}
		if len(s) != 3 || !(s[0] >= 0 && s[0] <= maxCompactSeq) {
			return nil, fmt.Errorf("ALTREP %s: malformed state", class)
		}
		n, start, inc := int(s[0]), s[1], s[2]
		if class == "compact_intseq" {
			o = &RObject{Type: RInt, Ints: make([]int32, n)}
			for i := range o.Ints {
				o.Ints[i] = int32(start + float64(i)*inc)
			}
		} else {
			o = &RObject{Type: RReal, Reals: make([]float64, n)}
			for i := range o.Reals {
				o.Reals[i] = start + float64(i)*inc
			}
		}
	case "wrap_integer", "wrap_logical", "wrap_real", "wrap_complex", "wrap_string", "wrap_raw", "wrap_list":
		if (state.Type != RList && state.Type != RVector) || len(state.Elems) < 1 {
			return nil, fmt.Errorf("ALTREP %s: malformed state", class)
		}
		c := *state.Elems[0]
		o = &c
	case "deferred_string":
		if state.Type != RList || len(state.Elems) < 1 {
			return nil, fmt.Errorf("ALTREP %s: malformed state", class)
		}
		arg := state.Elems[0]
		o = &RObject{Type: RString}
		switch arg.Type {
		case RInt, RLogical:
			for _, v := range arg.Ints {
				if v == RNAInt {
					o.Strs = append(o.Strs, "")
					continue
				}
				o.Strs = append(o.Strs, strconv.Itoa(int(v)))
			}
		case RReal:
			for _, v := range arg.Reals {
				o.Strs = append(o.Strs, strconv.FormatFloat(v, 'g', 15, 64))
			}
		case RString:
			o.Strs = arg.Strs
		default:
			return nil, fmt.Errorf("ALTREP %s: argument of SEXPTYPE %d", class, arg.Type)
		}
	default:
		return nil, fmt.Errorf("unsupported ALTREP class %q", class)
	}
	if o.Attrs, err = attrsOf(attr); err != nil {
		return nil, err
	}
	return o, nil
}
