package testbed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
)

// Default split fractions.
const (
	DefaultSealedFraction  = 0.2
	DefaultHoldoutFraction = 0.5
)

// assignSplits draws the splits. Test rows are stratified by (subset, label):
// in each stratum a share sealed of the rows is sealed, and of the rest a
// share holdout is holdout and the others are feedback. Pool rows are
// stratified the same way (label is unknown for unlabelled rows, which then
// share one stratum per subset) and a share sealed is sealed. The draw
// depends only on the seed and the row ids, never on file order.
func assignSplits(test, pool []Row, seed uint64, sealed, holdout float64) map[string]string {
	out := make(map[string]string, len(test)+len(pool))
	rng := rand.New(rand.NewPCG(seed, 0x6161722d73706c74)) // "aar-splt"
	for _, group := range strata(test) {
		shuffle(rng, group)
		nSealed := share(len(group), sealed)
		nHold := share(len(group)-nSealed, holdout)
		for i, r := range group {
			switch {
			case i < nSealed:
				out[r.ID] = SplitSealed
			case i < nSealed+nHold:
				out[r.ID] = SplitHoldout
			default:
				out[r.ID] = SplitFeedback
			}
		}
	}
	for _, group := range strata(pool) {
		shuffle(rng, group)
		nSealed := share(len(group), sealed)
		for i, r := range group {
			if i < nSealed {
				out[r.ID] = SplitSealed
			} else {
				out[r.ID] = SplitPublic
			}
		}
	}
	return out
}

// share rounds n·f to the nearest integer.
func share(n int, f float64) int {
	return int(math.Round(float64(n) * f))
}

// strata groups rows by (subset, label), each group sorted by id, groups in
// a stable order.
func strata(rows []Row) [][]Row {
	byKey := map[string][]Row{}
	var keys []string
	for _, r := range rows {
		k := r.Subset + "\x00" + strconv.Itoa(r.Label)
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], r)
	}
	sort.Strings(keys)
	out := make([][]Row, 0, len(keys))
	for _, k := range keys {
		g := byKey[k]
		sort.Slice(g, func(i, j int) bool { return g[i].ID < g[j].ID })
		out = append(out, g)
	}
	return out
}

func shuffle(rng *rand.Rand, rows []Row) {
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
}

// orderKey is the position key of a row in a public file: a keyed hash of
// its id under the private split seed. Sorting by it hides the source file's
// order, which often groups rows by subset or label.
func orderKey(seed uint64, id string) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seed)
	mac := hmac.New(sha256.New, k[:])
	mac.Write([]byte(id))
	return mac.Sum(nil)
}
