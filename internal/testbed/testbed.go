package testbed

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/jsonl"
)

// Testbed is a testbed loaded from the private store: every row with its
// label, the splits, the weak soft labels and the baseline predictions.
// It holds labels: only the lab process and admin commands may load one.
type Testbed struct {
	Manifest Manifest
	Labeled  []Row
	Pool     []Row
	Test     []Row
	Splits   map[string]string // row id → split (test: feedback|holdout|sealed; pool: public|sealed)
	Soft     []SoftLabels      // weak soft labels on the pool, per seed
	WeakPred []SeedPredictions // weak model's per-row test predictions, per seed
	CeilPred []SeedPredictions // ceiling's per-row test predictions, per seed

	dir   string
	views views // derived row lists, computed once
}

// views caches the row lists derived from a loaded testbed (public orders,
// cells). A Testbed is not changed after Load or Import, so they are
// computed once, safely from several goroutines. The slices are shared:
// callers must not modify them.
type views struct {
	once       sync.Once
	publicTest []Row
	publicPool []Row
	cells      map[string][]Row
	units      map[string][]string
}

// Dir is the testbed's directory in the private store.
func (tb *Testbed) Dir() string { return tb.dir }

// Store is the private testbed store: <data>/testbeds/<name>/.
type Store struct {
	root string
}

// NotFoundError says a testbed does not exist.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("testbed %q not found (see: aar testbed list)", e.Name)
}

// OpenStore opens (creating if needed) the testbed store under dataDir.
func OpenStore(dataDir string) (*Store, error) {
	if dataDir == "" {
		return nil, errors.New("open testbed store: no data directory")
	}
	root := filepath.Join(dataDir, "testbeds")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("open testbed store: %w", err)
	}
	return &Store{root: root}, nil
}

// Names lists the testbeds in the store, sorted.
func (s *Store) Names() ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list testbeds: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			if _, err := os.Stat(filepath.Join(s.root, e.Name(), manifestFile)); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

const (
	manifestFile = "testbed.json"
	splitsFile   = "splits.json"
)

// Manifest reads one testbed's manifest without loading its rows.
func (s *Store) Manifest(name string) (*Manifest, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(s.root, name, manifestFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, &NotFoundError{Name: name}
	}
	var m Manifest
	if err := readJSONFile(path, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Load reads a whole testbed from the store.
func (s *Store) Load(name string) (*Testbed, error) {
	m, err := s.Manifest(name)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.root, name)
	tb := &Testbed{Manifest: *m, dir: dir}
	rl, err := readRowLines(dir)
	if err != nil {
		return nil, fmt.Errorf("load testbed %s: %w", name, err)
	}
	if tb.Labeled, tb.Pool, tb.Test, err = rl.rows(m); err != nil {
		return nil, fmt.Errorf("load testbed %s: %w", name, err)
	}
	if err := readJSONFile(filepath.Join(dir, splitsFile), &tb.Splits); err != nil {
		return nil, fmt.Errorf("load testbed %s: %w", name, err)
	}
	for _, r := range slices.Concat(tb.Pool, tb.Test) {
		if tb.Splits[r.ID] == "" {
			return nil, fmt.Errorf("load testbed %s: row %s has no split in %s: the store is damaged; re-import the testbed", name, r.ID, splitsFile)
		}
	}
	if tb.Soft, err = readSoftLabels(filepath.Join(dir, dirWeak), m, tb.Pool); err != nil {
		return nil, fmt.Errorf("load testbed %s: %w", name, err)
	}
	if tb.WeakPred, err = readPredictionDir(filepath.Join(dir, dirBaseWeak), m, tb.Test); err != nil {
		return nil, fmt.Errorf("load testbed %s: %w", name, err)
	}
	if tb.CeilPred, err = readPredictionDir(filepath.Join(dir, dirBaseCeiling), m, tb.Test); err != nil {
		return nil, fmt.Errorf("load testbed %s: %w", name, err)
	}
	return tb, nil
}

// rowLines are the raw lines of a testbed's three row files.
type rowLines struct {
	dir                 string
	labeled, pool, test []jsonl.Line
}

// readRowLines reads the three row files of a testbed directory; each must
// hold at least one row.
func readRowLines(dir string) (*rowLines, error) {
	rl := &rowLines{dir: dir}
	for _, f := range []struct {
		file string
		dst  *[]jsonl.Line
	}{{FileTrainLabel, &rl.labeled}, {FilePool, &rl.pool}, {FileTest, &rl.test}} {
		name := filepath.Join(dir, f.file)
		lines, err := jsonl.ReadFile(name, jsonl.Limits{})
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 {
			return nil, jsonl.Errorf(name, 0, "", "add rows to the file", "no rows")
		}
		*f.dst = lines
	}
	return rl, nil
}

// detectKind tells the row kind from the first test row.
func (rl *rowLines) detectKind() (Kind, error) {
	k, ok := DetectKind(rl.test[0].Fields)
	if !ok {
		return "", jsonl.Errorf(filepath.Join(rl.dir, FileTest), rl.test[0].Num, "",
			`give rows {prompt, first, second, label}, {question, choice, label} or {text, label}, or set "kind" in testbed.json`,
			"cannot tell the row kind from the fields")
	}
	return k, nil
}

// rows parses and checks the lines as rows of m's kind; ids must be unique
// across the three files.
func (rl *rowLines) rows(m *Manifest) (labeled, pool, test []Row, err error) {
	parse := func(file string, lines []jsonl.Line, needLabel bool) ([]Row, error) {
		return parseRows(m, file, filepath.Join(rl.dir, file), lines, needLabel)
	}
	if labeled, err = parse(FileTrainLabel, rl.labeled, true); err != nil {
		return
	}
	if pool, err = parse(FilePool, rl.pool, false); err != nil {
		return
	}
	if test, err = parse(FileTest, rl.test, true); err != nil {
		return
	}
	type where struct {
		file string
		line int
	}
	seen := map[string]where{}
	for _, set := range []struct {
		file string
		rows []Row
	}{{FileTrainLabel, labeled}, {FilePool, pool}, {FileTest, test}} {
		for _, r := range set.rows {
			if prev, dup := seen[r.ID]; dup {
				return nil, nil, nil, jsonl.Errorf(filepath.Join(rl.dir, set.file), r.Line, "id", "give every row of the testbed a distinct id",
					"id %q is already used by %s:%d", r.ID, prev.file, prev.line)
			}
			seen[r.ID] = where{set.file, r.Line}
		}
	}
	return labeled, pool, test, nil
}

// ImportOptions control Import.
type ImportOptions struct {
	Name string // required
	// Cache is the public study's cache_results directory (optional);
	// CacheDataset the dataset name inside it (default: the source
	// directory's base name, e.g. "chat").
	Cache        string
	CacheDataset string
	// IDSubsets and OODSubsets override the manifest.
	IDSubsets, OODSubsets []string
	// SplitSeed fixes the split draw; nil draws a random seed.
	SplitSeed *uint64
	// SealedFraction is the share of pool and of test rows sealed; nil
	// means DefaultSealedFraction.
	SealedFraction *float64
	// Soft, WeakPred and CeilPred supply weak soft labels and per-row
	// baseline predictions computed by the caller (keyed by row id), used
	// when the source directory has none.
	Soft     []SoftLabels
	WeakPred []SeedPredictions
	CeilPred []SeedPredictions
	Now      func() time.Time
}

// Import validates the labelled testbed directory src and copies it into the
// store as opts.Name, with splits, soft labels, baseline predictions and
// fixed baselines. Nothing is written unless everything checks out.
func (s *Store) Import(src string, opts ImportOptions) (*Testbed, error) {
	if err := ValidateName(opts.Name); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(s.root, opts.Name)); err == nil {
		return nil, fmt.Errorf("testbed %q already exists in %s: import under another --name", opts.Name, s.root)
	}
	source, err := ReadSource(src)
	if err != nil {
		return nil, err
	}
	return s.ImportSource(source, opts)
}

// Source is a labelled testbed directory, read and checked but not yet
// imported: its manifest and its rows with their ids.
type Source struct {
	Dir      string
	Manifest Manifest
	Labeled  []Row
	Pool     []Row
	Test     []Row

	fromManifest []CellBaseline
}

// ReadSource reads and checks the rows and manifest of a labelled testbed
// directory (see Import).
func ReadSource(src string) (*Source, error) {
	if st, err := os.Stat(src); err != nil || !st.IsDir() {
		return nil, jsonl.Errorf(src, 0, "", "give a directory holding train_label.jsonl, train_unlabel.jsonl and test.jsonl", "not a directory")
	}
	m := Manifest{}
	if _, err := os.Stat(filepath.Join(src, manifestFile)); err == nil {
		if err := readStrictJSON(filepath.Join(src, manifestFile), &m); err != nil {
			return nil, err
		}
	}
	out := &Source{Dir: src, fromManifest: m.Baselines}
	m.Baselines, m.Split, m.Counts, m.WeakSeeds, m.ImportNotes = nil, nil, nil, nil, nil
	rl, err := readRowLines(src)
	if err != nil {
		return nil, err
	}
	if m.Kind == "" {
		if m.Kind, err = rl.detectKind(); err != nil {
			return nil, err
		}
	}
	if m.Kind == KindClassification && len(m.Classes) == 0 {
		return nil, jsonl.Errorf(filepath.Join(src, manifestFile), 0, "classes", "add a testbed.json listing the class names in prediction-index order", "a classification testbed needs its class names")
	}
	if err := m.validate(filepath.Join(src, manifestFile)); err != nil {
		return nil, err
	}
	if out.Labeled, out.Pool, out.Test, err = rl.rows(&m); err != nil {
		return nil, err
	}
	out.Manifest = m
	return out, nil
}

// ImportSource imports a source read by ReadSource into the store as
// opts.Name. Weak soft labels and baseline predictions come from the source
// directory's weak/ and baselines/, else from opts, else from opts.Cache.
func (s *Store) ImportSource(source *Source, opts ImportOptions) (*Testbed, error) {
	if err := ValidateName(opts.Name); err != nil {
		return nil, err
	}
	sealed := DefaultSealedFraction
	if opts.SealedFraction != nil {
		sealed = *opts.SealedFraction
	}
	if !(sealed >= 0 && sealed < 1) {
		return nil, fmt.Errorf("sealed fraction %v is out of range: use a value in [0, 1)", sealed)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	final := filepath.Join(s.root, opts.Name)
	if _, err := os.Stat(final); err == nil {
		return nil, fmt.Errorf("testbed %q already exists in %s: import under another --name", opts.Name, s.root)
	}
	src, m := source.Dir, source.Manifest
	m.Name = opts.Name
	labeled, pool, test := source.Labeled, source.Pool, source.Test
	fromManifest := source.fromManifest
	var err error
	var notes []string
	note, err := resolveGroups(&m, test, opts, filepath.Join(src, FileTest))
	if err != nil {
		return nil, err
	}
	if note != "" {
		notes = append(notes, note)
	}

	seed := randomSeed()
	if opts.SplitSeed != nil {
		seed = *opts.SplitSeed
	}
	tb := &Testbed{Manifest: m, Labeled: labeled, Pool: pool, Test: test}
	tb.Splits = assignSplits(m.Kind, test, pool, seed, sealed, DefaultHoldoutFraction)
	tb.Manifest.Split = &SplitConfig{
		Seed: seed, SealedFraction: sealed, HoldoutFraction: DefaultHoldoutFraction,
		StratifiedBy: "subset, label; a comparison pair in both orders is one unit, and so are a binary question's candidates",
	}
	if test[0].DerivedID {
		tb.Manifest.Split.DerivedIDsFrom = "sha256 of each row's public fields (ids were not in the files)"
	}

	in := baselineInputs{fromManifest: fromManifest}
	if tb.Soft, err = readSoftLabels(filepath.Join(src, dirWeak), &m, pool); err != nil {
		return nil, err
	}
	if in.weakPreds, err = readPredictionDir(filepath.Join(src, dirBaseWeak), &m, test); err != nil {
		return nil, err
	}
	if in.ceilPreds, err = readPredictionDir(filepath.Join(src, dirBaseCeiling), &m, test); err != nil {
		return nil, err
	}
	if len(tb.Soft) == 0 {
		tb.Soft = opts.Soft
	}
	if len(in.weakPreds) == 0 {
		in.weakPreds = opts.WeakPred
	}
	if len(in.ceilPreds) == 0 {
		in.ceilPreds = opts.CeilPred
	}
	if opts.Cache != "" {
		ds := opts.CacheDataset
		if ds == "" {
			ds = filepath.Base(filepath.Clean(src))
		}
		cr, err := readStudyCache(opts.Cache, ds, &m, pool, test)
		if err != nil {
			return nil, err
		}
		notes = append(notes, cr.notes...)
		if len(tb.Soft) == 0 {
			tb.Soft = cr.soft
		}
		if len(in.weakPreds) == 0 {
			in.weakPreds = cr.weakPreds
		}
		if len(in.ceilPreds) == 0 {
			in.ceilPreds = cr.ceilPreds
		}
		in.agg = &cr.agg
	}
	tb.WeakPred, tb.CeilPred = in.weakPreds, in.ceilPreds
	tb.Manifest.Baselines = tb.computeBaselines(in)
	notes = append(notes, baselineNotes(tb.Manifest.Baselines)...)
	for _, sl := range tb.Soft {
		tb.Manifest.WeakSeeds = append(tb.Manifest.WeakSeeds, sl.Seed)
	}
	tb.Manifest.Counts = tb.counts()
	tb.Manifest.ImportNotes = notes
	tb.Manifest.ImportedAt = opts.Now().UTC().Format(time.RFC3339)

	if err := s.write(tb, src, final); err != nil {
		return nil, err
	}
	tb.dir = final
	return tb, nil
}

// baselineNotes groups the cells whose baselines have the same note, so an
// import says each cause once.
func baselineNotes(cells []CellBaseline) []string {
	var order []string
	byNote := map[string][]string{}
	for _, cb := range cells {
		if cb.Note == "" || cb.Rows == 0 {
			continue
		}
		if _, ok := byNote[cb.Note]; !ok {
			order = append(order, cb.Note)
		}
		byNote[cb.Note] = append(byNote[cb.Note], cb.Split+"/"+cb.Group)
	}
	out := make([]string, len(order))
	for i, n := range order {
		out[i] = fmt.Sprintf("baselines of %s: %s", strings.Join(byNote[n], ", "), n)
	}
	return out
}

func (tb *Testbed) counts() *Counts {
	c := &Counts{TrainLabel: len(tb.Labeled), Pool: len(tb.Pool), Test: len(tb.Test)}
	for _, r := range tb.Pool {
		if tb.Splits[r.ID] == SplitSealed {
			c.PoolSealed++
		}
	}
	for _, r := range tb.Test {
		switch tb.Splits[r.ID] {
		case SplitFeedback:
			c.TestFeedback++
		case SplitHoldout:
			c.TestHoldout++
		case SplitSealed:
			c.TestSealed++
		}
	}
	return c
}

// write stores tb under final, through a temporary directory renamed into
// place, so a failure leaves nothing behind.
func (s *Store) write(tb *Testbed, src, final string) (err error) {
	tmp, err := os.MkdirTemp(s.root, ".import-"+tb.Manifest.Name+"-")
	if err != nil {
		return fmt.Errorf("import %s: %w", tb.Manifest.Name, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := writeJSON(filepath.Join(tmp, manifestFile), tb.Manifest); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		rows []Row
	}{{FileTrainLabel, tb.Labeled}, {FilePool, tb.Pool}, {FileTest, tb.Test}} {
		objs := make([]any, len(f.rows))
		for i, r := range f.rows {
			objs[i] = r.Fields
		}
		if err := writeJSONL(filepath.Join(tmp, f.name), objs); err != nil {
			return err
		}
	}
	if err := writeJSON(filepath.Join(tmp, splitsFile), tb.Splits); err != nil {
		return err
	}
	for _, sl := range tb.Soft {
		if err := writeSoftLabels(filepath.Join(tmp, dirWeak, sl.Seed+".jsonl"), tb.Pool, sl); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		dir   string
		preds []SeedPredictions
	}{{dirBaseWeak, tb.WeakPred}, {dirBaseCeiling, tb.CeilPred}} {
		for _, sp := range p.preds {
			objs := make([]any, len(tb.Test))
			for i, r := range tb.Test {
				objs[i] = map[string]any{"id": r.ID, "label": sp.Labels[r.ID]}
			}
			if err := writeJSONL(filepath.Join(tmp, p.dir, sp.Seed+".jsonl"), objs); err != nil {
				return err
			}
		}
	}
	if err := copyTree(filepath.Join(src, dirFeatures), filepath.Join(tmp, dirFeatures)); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("import %s: %w", tb.Manifest.Name, err)
	}
	return nil
}

// writeSoftLabels writes one seed's soft labels on the given pool rows, in
// their order.
func writeSoftLabels(path string, pool []Row, sl SoftLabels) error {
	objs := make([]any, 0, len(pool))
	for _, r := range pool {
		objs = append(objs, map[string]any{"id": r.ID, "probs": sl.Probs[r.ID]})
	}
	return writeJSONL(path, objs)
}

func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return binary.LittleEndian.Uint64(b[:])
}

// readStrictJSON reads a JSON file, refusing unknown fields (a typo in a
// manifest should not be silently ignored).
func readStrictJSON(path string, v any) error {
	var raw json.RawMessage
	if err := readJSONFile(path, &raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonl.Errorf(path, 0, "", "fix the field name or type (see README: testbed.json)", "%v", err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFile(path, append(b, '\n'))
}

func writeJSONL(path string, objs []any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
	}
	return writeFile(path, buf.Bytes())
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// copyTree copies the regular files under src into dst. A missing src copies
// nothing; symbolic links are refused (they could point at labels).
func copyTree(src, dst string) error {
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular():
			in, err := os.Open(path)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		default:
			return jsonl.Errorf(path, 0, "", "replace it with a regular file", "is not a regular file")
		}
	})
}

// Remove deletes a testbed from the store.
func (s *Store) Remove(name string) error {
	if _, err := s.Manifest(name); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(s.root, name)); err != nil {
		return fmt.Errorf("remove testbed %s: %w", name, err)
	}
	return nil
}
