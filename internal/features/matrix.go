package features

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
)

// Vec is a sparse vector under construction: column indexes (increasing)
// and their values.
type Vec struct {
	Idx []int32
	Val []float32
}

// Add appends one entry; zero values are skipped.
func (v *Vec) Add(col int, x float32) {
	if x != 0 {
		v.Idx = append(v.Idx, int32(col))
		v.Val = append(v.Val, x)
	}
}

// Reset empties v, keeping its storage.
func (v *Vec) Reset() { v.Idx, v.Val = v.Idx[:0], v.Val[:0] }

// Matrix is a row-sparse (CSR) float32 matrix: row i's entries are
// Idx[Ptr[i]:Ptr[i+1]] and Val[Ptr[i]:Ptr[i+1]].
type Matrix struct {
	Cols int
	Ptr  []int
	Idx  []int32
	Val  []float32
}

// NewMatrix returns an empty matrix with cols columns.
func NewMatrix(cols int) *Matrix { return &Matrix{Cols: cols, Ptr: []int{0}} }

// Rows is the number of rows.
func (m *Matrix) Rows() int { return len(m.Ptr) - 1 }

// AppendRow appends v as a row.
func (m *Matrix) AppendRow(v *Vec) {
	m.Idx = append(m.Idx, v.Idx...)
	m.Val = append(m.Val, v.Val...)
	m.Ptr = append(m.Ptr, len(m.Idx))
}

// Row returns row i's indexes and values (shared storage).
func (m *Matrix) Row(i int) ([]int32, []float32) {
	a, b := m.Ptr[i], m.Ptr[i+1]
	return m.Idx[a:b], m.Val[a:b]
}

// Select returns a new matrix of the given rows, in order.
func (m *Matrix) Select(rows []int) *Matrix {
	nnz := 0
	for _, r := range rows {
		nnz += m.Ptr[r+1] - m.Ptr[r]
	}
	out := &Matrix{Cols: m.Cols, Ptr: make([]int, 1, len(rows)+1), Idx: make([]int32, 0, nnz), Val: make([]float32, 0, nnz)}
	for _, r := range rows {
		idx, val := m.Row(r)
		out.Idx = append(out.Idx, idx...)
		out.Val = append(out.Val, val...)
		out.Ptr = append(out.Ptr, len(out.Idx))
	}
	return out
}

// DenseRow writes row i into dst (len Cols), zeroing it first.
func (m *Matrix) DenseRow(i int, dst []float32) {
	clear(dst)
	idx, val := m.Row(i)
	for k, c := range idx {
		dst[c] = val[k]
	}
}

// diff sets out = a − b for two sparse vectors with increasing indexes.
func diff(out, a, b *Vec) {
	out.Reset()
	i, j := 0, 0
	for i < len(a.Idx) || j < len(b.Idx) {
		switch {
		case j >= len(b.Idx) || (i < len(a.Idx) && a.Idx[i] < b.Idx[j]):
			out.Add(int(a.Idx[i]), a.Val[i])
			i++
		case i >= len(a.Idx) || b.Idx[j] < a.Idx[i]:
			out.Add(int(b.Idx[j]), -b.Val[j])
			j++
		default:
			out.Add(int(a.Idx[i]), a.Val[i]-b.Val[j])
			i++
			j++
		}
	}
}

// Row is what a featurizer reads of one row: its public text fields.
type Row map[string]string

// Build featurizes rows into a matrix. With pair "diff", each row's features
// are f(first) − f(second); else f(row[field]) with field defaulting to
// "text".
func Build(f Featurizer, spec Spec, pair string, rows []Row) (*Matrix, error) {
	m := NewMatrix(f.Dim())
	var a, b, d Vec
	field := spec.Field
	if field == "" {
		field = "text"
	}
	for i, r := range rows {
		a.Reset()
		switch pair {
		case "":
			if err := f.Append(&a, 0, r[field]); err != nil {
				return nil, fmt.Errorf("row %d: %w", i, err)
			}
			m.AppendRow(&a)
		case "diff":
			b.Reset()
			if err := f.Append(&a, 0, r["first"]); err != nil {
				return nil, fmt.Errorf("row %d first: %w", i, err)
			}
			if err := f.Append(&b, 0, r["second"]); err != nil {
				return nil, fmt.Errorf("row %d second: %w", i, err)
			}
			diff(&d, &a, &b)
			m.AppendRow(&d)
		default:
			return nil, fmt.Errorf("unknown pair mode %q (known: diff)", pair)
		}
		if !slices.IsSorted(m.Idx[m.Ptr[i]:m.Ptr[i+1]]) {
			return nil, fmt.Errorf("row %d: featurizer %s wrote columns out of order", i, spec.Kind)
		}
	}
	return m, nil
}

// matrixMagic starts a saved matrix file.
const matrixMagic = "AARCSR1\n"

// Save writes m to path in a compact binary CSR layout: magic, rows, cols,
// nnz (uint64 little-endian), then Ptr (uint64), Idx (int32), Val (float32).
func (m *Matrix) Save(path string) error {
	var buf bytes.Buffer
	buf.WriteString(matrixMagic)
	w := func(v any) { _ = binary.Write(&buf, binary.LittleEndian, v) }
	w(uint64(m.Rows()))
	w(uint64(m.Cols))
	w(uint64(len(m.Idx)))
	ptr := make([]uint64, len(m.Ptr))
	for i, p := range m.Ptr {
		ptr[i] = uint64(p)
	}
	w(ptr)
	w(m.Idx)
	w(m.Val)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("save matrix: %w", err)
	}
	return os.Rename(tmp, path)
}

// LoadMatrix reads a matrix written by Save, streaming it from disk.
func LoadMatrix(path string) (*Matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	magic := make([]byte, len(matrixMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != matrixMagic {
		return nil, fmt.Errorf("%s is not a saved feature matrix", path)
	}
	var head [3]uint64
	if err := binary.Read(r, binary.LittleEndian, head[:]); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rows, cols, nnz := head[0], head[1], head[2]
	want := uint64(len(matrixMagic)) + 24 + 8*(rows+1) + 8*nnz
	if uint64(st.Size()) != want {
		return nil, fmt.Errorf("%s: %d bytes, want %d: the file is damaged", path, st.Size(), want)
	}
	ptr := make([]uint64, rows+1)
	m := &Matrix{Cols: int(cols), Ptr: make([]int, rows+1), Idx: make([]int32, nnz), Val: make([]float32, nnz)}
	// Decode through a small buffer: binary.Read of a whole slice would
	// allocate a second copy of it.
	buf := make([]byte, 1<<16)
	read := func(n int, put func(i int, b []byte)) error {
		for i := 0; i < n; {
			chunk := min(n-i, len(buf)/8)
			b := buf[:chunk*8]
			if _, err := io.ReadFull(r, b); err != nil {
				return err
			}
			for j := 0; j < chunk; j++ {
				put(i+j, b[8*j:])
			}
			i += chunk
		}
		return nil
	}
	if err := read(len(ptr), func(i int, b []byte) { ptr[i] = binary.LittleEndian.Uint64(b) }); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Idx and Val are 4 bytes each: read them in pairs of entries.
	read4 := func(n int, put func(i int, v uint32)) error {
		for i := 0; i < n; {
			chunk := min(n-i, len(buf)/4)
			b := buf[:chunk*4]
			if _, err := io.ReadFull(r, b); err != nil {
				return err
			}
			for j := 0; j < chunk; j++ {
				put(i+j, binary.LittleEndian.Uint32(b[4*j:]))
			}
			i += chunk
		}
		return nil
	}
	if err := read4(len(m.Idx), func(i int, v uint32) { m.Idx[i] = int32(v) }); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := read4(len(m.Val), func(i int, v uint32) { m.Val[i] = math.Float32frombits(v) }); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, p := range ptr {
		if p > nnz || (i > 0 && p < ptr[i-1]) {
			return nil, fmt.Errorf("%s: damaged row pointers", path)
		}
		m.Ptr[i] = int(p)
	}
	for _, c := range m.Idx {
		if c < 0 || int(c) >= m.Cols {
			return nil, fmt.Errorf("%s: column out of range", path)
		}
	}
	return m, nil
}
