package builtin

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/aar-lab/aar/internal/features"
	"github.com/aar-lab/aar/internal/w2s"
)

// fashionSource is Debian's packaging of Fashion-MNIST (Zalando, MIT).
var fashionSource = Source{Registry: "deb", Name: "dataset-fashion-mnist", Version: "0.0~git20200523.55506a9-1"}

// fashionClasses are the Fashion-MNIST classes in label order (0 is
// "T-shirt/top", 9 "Ankle boot"), written as plain ascii names.
var fashionClasses = []string{"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"}

const (
	fashionSide = 28
	// Per class: weak-teacher rows, pool rows, shifted OOD test rows; all
	// drawn without overlap from the official training set.
	fashionWeakPerClass = 100
	fashionPoolPerClass = 2000
	fashionOODPerClass  = 200
	fashionShift        = 2
	fashionSeed         = 0xfa5410
	// The representation: k-means on patches sampled from the pool.
	fashionPatch      = 5
	fashionK          = 128
	fashionPatches    = 100000
	fashionZCAEps     = 0.1
	fashionKMeansIter = 50
)

func init() {
	Register(&Testbed{
		Name:    "fashion",
		Summary: "Fashion-MNIST, 10 classes: LR on 4×4 pooled pixels teaches a linear probe on conv k-means features",
		Sources: []Source{fashionSource},
		Build:   buildFashion,
	})
}

// fashionRow is one row of the testbed's files.
type fashionRow struct {
	Text   string `json:"text"`
	Label  string `json:"label"`
	Subset string `json:"subset"`
}

type fashionImage struct {
	pix   []byte
	label int
}

func buildFashion(ctx context.Context, cache, out string, log *slog.Logger) error {
	dir := filepath.Join(fashionSource.Dir(cache), "root", "usr", "share", "datasets", "fashion-mnist")
	train, err := readFashionSet(dir, "train")
	if err != nil {
		return err
	}
	test, err := readFashionSet(dir, "t10k")
	if err != nil {
		return err
	}

	// Identical images appear once in the whole testbed: the official test
	// set first, then the training images in file order.
	seen := map[[32]byte]bool{}
	fresh := func(pix []byte) bool {
		h := sha256.Sum256(pix)
		if seen[h] {
			return false
		}
		seen[h] = true
		return true
	}
	var testRows []fashionRow
	for _, im := range test {
		if fresh(im.pix) {
			testRows = append(testRows, fashionRow{features.EncodeImage(im.pix), fashionClasses[im.label], "fashion"})
		}
	}
	byClass := make([][]int, len(fashionClasses))
	for i, im := range train {
		if fresh(im.pix) {
			byClass[im.label] = append(byClass[im.label], i)
		}
	}
	log.Info("fashion: distinct images", "test", len(testRows), "test_dropped", len(test)-len(testRows),
		"train", len(seen)-len(testRows))

	rng := rand.New(rand.NewPCG(fashionSeed, 1))
	var weak, pool []fashionRow
	var poolImages [][]byte
	var ood []fashionRow
	for c, idx := range byClass {
		need := fashionWeakPerClass + fashionPoolPerClass + fashionOODPerClass
		if len(idx) < need {
			return fmt.Errorf("fashion: class %s has %d distinct training images, need %d", fashionClasses[c], len(idx), need)
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx[:fashionWeakPerClass] {
			weak = append(weak, fashionRow{features.EncodeImage(train[i].pix), fashionClasses[c], "fashion"})
		}
		for _, i := range idx[fashionWeakPerClass : fashionWeakPerClass+fashionPoolPerClass] {
			pool = append(pool, fashionRow{features.EncodeImage(train[i].pix), fashionClasses[c], "fashion"})
			poolImages = append(poolImages, train[i].pix)
		}
		// Shifted copies of further training images: an OOD test whose
		// objects sit off-centre.
		n := 0
		for _, i := range idx[fashionWeakPerClass+fashionPoolPerClass:] {
			if n == fashionOODPerClass {
				break
			}
			dx, dy := randomShift(rng)
			pix := shiftImage(train[i].pix, fashionSide, fashionSide, dx, dy)
			if !fresh(pix) {
				continue
			}
			ood = append(ood, fashionRow{features.EncodeImage(pix), fashionClasses[c], "fashion_shifted"})
			n++
		}
		if n < fashionOODPerClass {
			return fmt.Errorf("fashion: class %s has %d distinct shifted images, need %d", fashionClasses[c], n, fashionOODPerClass)
		}
	}
	// Rows of one class must not sit together in the files.
	shuffle := func(rows []fashionRow) {
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	}
	shuffle(weak)
	shuffle(pool)
	shuffle(ood)
	testRows = append(testRows, ood...)

	for _, f := range []struct {
		name string
		rows []fashionRow
	}{{"train_label.jsonl", weak}, {"train_unlabel.jsonl", pool}, {"test.jsonl", testRows}} {
		if err := writeJSONLines(filepath.Join(out, f.name), f.rows); err != nil {
			return err
		}
	}

	// The representation: whitening and centroids from unlabelled pool
	// patches only.
	if err := os.MkdirAll(filepath.Join(out, "features"), 0o755); err != nil {
		return err
	}
	d := fashionPatch * fashionPatch
	patches := samplePatches(poolImages, fashionSide, fashionSide, fashionPatch, fashionPatches, rand.New(rand.NewPCG(fashionSeed, 2)))
	mean, whiten, err := zcaWhitening(patches, fashionPatches, d, fashionZCAEps)
	if err != nil {
		return fmt.Errorf("fashion: %w", err)
	}
	applyWhitening(patches, fashionPatches, d, mean, whiten)
	cent, iters, err := kMeans(ctx, patches, fashionPatches, d, fashionK, fashionKMeansIter, fashionSeed)
	if err != nil {
		return fmt.Errorf("fashion: %w", err)
	}
	log.Info("fashion: k-means", "patches", fashionPatches, "k", fashionK, "iterations", iters)
	if err := features.WriteF32(filepath.Join(out, "features", "centroids.f32"), toF32(cent)); err != nil {
		return err
	}
	if err := features.WriteF32(filepath.Join(out, "features", "whiten.f32"), toF32(append(mean, whiten...))); err != nil {
		return err
	}

	if err := writeFashionManifest(out, len(weak), len(pool), len(testRows)-len(ood), len(ood)); err != nil {
		return err
	}
	return writeNotice(out, fashionNotice)
}

// readFashionSet reads one IDX image file and its label file.
func readFashionSet(dir, prefix string) ([]fashionImage, error) {
	imgDims, pix, err := readIDXFile(filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"))
	if err != nil {
		return nil, err
	}
	labDims, labels, err := readIDXFile(filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"))
	if err != nil {
		return nil, err
	}
	if len(imgDims) != 3 || imgDims[1] != fashionSide || imgDims[2] != fashionSide {
		return nil, fmt.Errorf("%s images: dimensions %v, want N×%d×%d", prefix, imgDims, fashionSide, fashionSide)
	}
	if len(labDims) != 1 || labDims[0] != imgDims[0] {
		return nil, fmt.Errorf("%s labels: dimensions %v for %d images", prefix, labDims, imgDims[0])
	}
	n, size := imgDims[0], fashionSide*fashionSide
	out := make([]fashionImage, n)
	for i := range out {
		if int(labels[i]) >= len(fashionClasses) {
			return nil, fmt.Errorf("%s labels: item %d has label %d, want 0–%d", prefix, i, labels[i], len(fashionClasses)-1)
		}
		out[i] = fashionImage{pix: pix[i*size : (i+1)*size], label: int(labels[i])}
	}
	return out, nil
}

func readIDXFile(path string) ([]int, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	dims, data, err := parseIDX(b)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return dims, data, nil
}

// parseIDX decodes an IDX file of unsigned bytes (LeCun's MNIST format):
// two zero bytes, the type 0x08, the number of dimensions, each dimension
// as a big-endian uint32, then the data, which must fill the rest exactly.
func parseIDX(b []byte) (dims []int, data []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("idx: %d bytes, too short for a header", len(b))
	}
	if b[0] != 0 || b[1] != 0 {
		return nil, nil, fmt.Errorf("idx: bad magic %x", b[:4])
	}
	if b[2] != 0x08 {
		return nil, nil, fmt.Errorf("idx: element type 0x%02x, want 0x08 (unsigned byte)", b[2])
	}
	nd := int(b[3])
	if nd == 0 || len(b) < 4+4*nd {
		return nil, nil, fmt.Errorf("idx: %d dimensions in %d bytes", nd, len(b))
	}
	size := 1
	for i := 0; i < nd; i++ {
		n := int(binary.BigEndian.Uint32(b[4+4*i:]))
		if n == 0 || size > (1<<40)/n {
			return nil, nil, fmt.Errorf("idx: dimension %d is %d", i, n)
		}
		dims = append(dims, n)
		size *= n
	}
	data = b[4+4*nd:]
	if len(data) != size {
		return nil, nil, fmt.Errorf("idx: %d data bytes, dimensions %v need %d", len(data), dims, size)
	}
	return dims, data, nil
}

// randomShift draws one of the eight shifts by fashionShift pixels
// (horizontal, vertical or diagonal).
func randomShift(rng *rand.Rand) (dx, dy int) {
	s := rng.IntN(8)
	if s >= 4 {
		s++ // skip (0, 0)
	}
	return (s%3 - 1) * fashionShift, (s/3 - 1) * fashionShift
}

// shiftImage moves the w × h image by (dx, dy) pixels, filling with black
// (0, the background).
func shiftImage(pix []byte, w, h, dx, dy int) []byte {
	out := make([]byte, len(pix))
	for y := 0; y < h; y++ {
		sy := y - dy
		if sy < 0 || sy >= h {
			continue
		}
		for x := 0; x < w; x++ {
			if sx := x - dx; sx >= 0 && sx < w {
				out[y*w+x] = pix[sy*w+sx]
			}
		}
	}
	return out
}

func writeFashionManifest(out string, weak, pool, testID, testOOD int) error {
	m := manifest{
		Name:       "fashion",
		Kind:       "classification",
		Classes:    fashionClasses,
		IDSubsets:  []string{"fashion"},
		OODSubsets: []string{"fashion_shifted"},
		License:    "MIT (Fashion-MNIST © 2017 Zalando SE); see NOTICE",
		Source: fmt.Sprintf("Fashion-MNIST (github.com/zalandoresearch/fashion-mnist) from Debian package %s %s",
			fashionSource.Name, fashionSource.Version),
		Notes: fmt.Sprintf("Rows are 28×28 grey images (text: base64 of 784 bytes, row-major, 0 = background). "+
			"Classes in Fashion-MNIST label order; t-shirt is \"T-shirt/top\", ankle-boot \"Ankle boot\". "+
			"Weak teacher rows (%d), pool (%d) and the shifted OOD test (%d) are drawn class-balanced and "+
			"disjoint from the official training set; the ID test (%d) is the official test set. "+
			"Identical images are kept once across all files. "+
			"OOD (fashion_shifted): training images not used elsewhere, shifted by %d pixels in one of 8 directions, black fill. "+
			"Weak model: logistic regression (C=1) on 4×4 average-pooled pixels (16 features). "+
			"Strong student: 2-epoch Adam linear probe on convolutional k-means features (Coates & Ng): "+
			"%d centroids from %d normalized, ZCA-whitened %d×%d patches sampled from the pool images (no labels), "+
			"triangle activation, sum-pooled over the image quadrants (%d features). "+
			"Both models standardize their inputs over their training rows. "+
			"Rebuild: aar testbed build fashion.",
			weak, pool, testOOD, testID, fashionShift, fashionK, fashionPatches, fashionPatch, fashionPatch, 4*fashionK),
		Representation: features.Representation{
			Weak: features.Spec{Kind: "image-pool", Width: fashionSide, Height: fashionSide, Grid: 4},
			Strong: features.Spec{Kind: "conv-kmeans", Width: fashionSide, Height: fashionSide, Grid: 2,
				Patch: fashionPatch, K: fashionK, Centroids: "centroids.f32", Whiten: "whiten.f32"},
		},
		Training: w2s.Training{
			Weak:   w2s.Config{Model: "linear", Solver: "lbfgs", C: 1, Standardize: true},
			Strong: w2s.Config{Model: "linear", Solver: "adam", Epochs: 2, BatchSize: 32, LR: 0.001, Standardize: true},
		},
	}
	return writeManifest(out, m)
}

const fashionNotice = `Fashion-MNIST
https://github.com/zalandoresearch/fashion-mnist
Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Taken from the Debian package dataset-fashion-mnist, version
0.0~git20200523.55506a9-1 (files usr/share/datasets/fashion-mnist/*-idx*-ubyte.gz),
packaged by Mo Zhou <lumin@debian.org>.

The rows of this testbed are images of Fashion-MNIST (some shifted by two
pixels); features/ holds centroids and a whitening transform computed from
them.

The MIT License (Expat)

Permission is hereby granted, free of charge, to any person obtaining a
copy of this software and associated documentation files (the "Software"),
to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense,
and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included
in all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS
OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.
IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY
CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT,
TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
`
