package w2s

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/aar-lab/aar/internal/features"
)

// Flags for BenchmarkLRFile, set by scripts/bench-lr.sh.
var (
	lrX      = flag.String("lr.x", "", "dense float32 .npy features (rows × cols)")
	lrY      = flag.String("lr.y", "", "JSONL with an integer \"label\" per row, in the rows' order")
	lrC      = flag.Float64("lr.c", 1, "inverse L2 strength, as sklearn's C")
	lrSolver = flag.String("lr.solver", "lbfgs", "lbfgs or newton")
)

// BenchmarkLRFile fits L2 logistic regression (L-BFGS, one thread) to the
// features and labels given by flags, and reports the final objective in
// sklearn's scale (C·Σ CE + ½‖W‖²) so the two fits can be compared at equal
// loss. scripts/bench-lr.sh runs it side by side with scikit-learn.
func BenchmarkLRFile(b *testing.B) {
	if *lrX == "" {
		b.Skip("set -lr.x and -lr.y (see scripts/bench-lr.sh)")
	}
	x, err := readNPY(*lrX)
	if err != nil {
		b.Fatal(err)
	}
	y, k, err := readLabels(*lrY)
	if err != nil {
		b.Fatal(err)
	}
	if len(y) != x.Rows() {
		b.Fatalf("%d labels for %d rows", len(y), x.Rows())
	}
	cfg := DefaultConfig()
	cfg.Solver, cfg.C, cfg.MaxIter, cfg.Threads = *lrSolver, *lrC, 1000, 1
	var m *Model
	var ce float64
	var last EpochLog
	for b.Loop() {
		m, err = Train(context.Background(), Data{X: x, Targets: OneHot(y, k)}, k, TrainOptions{Config: cfg, Log: func(l EpochLog) { ce, last = l.Loss, l }})
		if err != nil {
			b.Fatal(err)
		}
	}
	var reg float64
	for _, w := range m.W1 {
		reg += w * w
	}
	n := float64(x.Rows())
	b.ReportMetric(*lrC*n*ce+0.5*reg, "sklearn-objective")
	fmt.Printf("aar objective %.4f (C·Σ CE + ½‖W‖²)\n", *lrC*n*ce+0.5*reg)
	b.ReportMetric(ce, "mean-ce")
	b.ReportMetric(float64(last.Evaluations), "evals")
	b.ReportMetric(float64(last.Iterations), "iters")
}

var shapeRE = regexp.MustCompile(`'shape': \((\d+), (\d+)\)`)

func readNPY(path string) (*features.Matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	head := make([]byte, 10)
	if _, err := r.Read(head); err != nil || string(head[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("%s is not .npy", path)
	}
	hl := binary.LittleEndian.Uint16(head[8:10])
	h := make([]byte, hl)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	mm := shapeRE.FindSubmatch(h)
	if mm == nil {
		return nil, fmt.Errorf("%s: no 2-d shape in header", path)
	}
	rows, _ := strconv.Atoi(string(mm[1]))
	cols, _ := strconv.Atoi(string(mm[2]))
	x := features.NewMatrix(cols)
	buf := make([]byte, 4*cols)
	var v features.Vec
	for range rows {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		v.Reset()
		for j := 0; j < cols; j++ {
			v.Add(j, math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:])))
		}
		x.AppendRow(&v)
	}
	return x, nil
}

func readLabels(path string) ([]int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var y []int
	k := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var l struct {
			Label int       `json:"label"`
			Probs []float64 `json:"probs"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, 0, err
		}
		y = append(y, l.Label)
		k = max(k, len(l.Probs), l.Label+1)
	}
	return y, k, sc.Err()
}
