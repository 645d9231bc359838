package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/features"
)

func newW2SCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "w2s",
		Short: "Researcher tools on a public view: features, weak artifacts, train a student",
		Long: `The w2s commands read only a public view (aar testbed public NAME DIR; in a
sandbox it is /data): no label is needed or read. A W2S method is expressed
by computing targets and weights however you like and calling aar w2s train,
whose output is a predictions file in the submission format.`,
	}
	c.PersistentFlags().String("view", "/data", "the public view directory")
	c.AddCommand(newW2SFeaturesCmd(g), newW2SWeakCmd(g), newW2STrainCmd(g))
	return c
}

func viewFlag(cmd *cobra.Command) string {
	v, _ := cmd.Flags().GetString("view")
	return v
}

// outputFile opens path for writing, or stdout for "" or "-".
func outputFile(g *globals, path string) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return g.stdout, func() error { return nil }, nil
	}
	// The README's examples write to preds/42.jsonl: make the directory.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	return bw, func() error {
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}

// writeNPY writes m as a dense float32 .npy array (rows × cols).
func writeNPY(w io.Writer, m *features.Matrix) error {
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", m.Rows(), m.Cols)
	// magic(6) + version(2) + len(2) + header + padding + '\n' ≡ 0 mod 64.
	pad := 64 - (10+len(header)+1)%64
	if pad == 64 {
		pad = 0
	}
	for range pad {
		header += " "
	}
	header += "\n"
	if _, err := w.Write([]byte("\x93NUMPY\x01\x00")); err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint16(len(header))); err != nil {
		return err
	}
	if _, err := io.WriteString(w, header); err != nil {
		return err
	}
	row := make([]float32, m.Cols)
	buf := make([]byte, 4*m.Cols)
	for i := 0; i < m.Rows(); i++ {
		m.DenseRow(i, row)
		for j, v := range row {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
