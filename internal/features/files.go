package features

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// safePath resolves a file name inside dir, refusing anything that would
// leave it.
func safePath(dir, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("a file name is missing from the spec")
	}
	if filepath.IsAbs(name) || strings.Contains(name, "..") {
		return "", fmt.Errorf("file %q must be a plain name inside features/", name)
	}
	return filepath.Join(dir, name), nil
}

// ReadVocab reads a vocabulary file: one token per line.
func ReadVocab(dir, name string) ([]string, error) {
	p, err := safePath(dir, name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return out, nil
}

// WriteVocab writes tokens one per line.
func WriteVocab(path string, tokens []string) error {
	for _, t := range tokens {
		if strings.ContainsAny(t, "\n\r") {
			return fmt.Errorf("write %s: token with a line break", path)
		}
	}
	return os.WriteFile(path, []byte(strings.Join(tokens, "\n")+"\n"), 0o644)
}

// ReadF32 reads a little-endian float32 file holding exactly n values.
func ReadF32(dir, name string, n int) ([]float32, error) {
	p, err := safePath(dir, name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("%s holds %d bytes, want %d (%d float32 values)", p, len(b), 4*n, n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// WriteF32 writes values as little-endian float32.
func WriteF32(path string, vals []float32) error {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return os.WriteFile(path, b, 0o644)
}
