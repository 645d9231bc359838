package testbed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
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

// assignSplits draws the splits. Rows that show the same item (a
// comparison pair in both orders; the candidate answers of one binary
// question) form one unit and always share a split, so a split never holds
// the mirror of another split's row, nor a question whose other candidates
// (and so their most common answer) another split holds. Test units are
// stratified by (subset, label) (a pair unit by subset alone): in each
// stratum a share sealed of the units is sealed, and of the rest a share
// holdout is holdout and the others are feedback. Pool units are stratified
// the same way and a share sealed is sealed. The draw depends only on the
// seed and the row contents and ids, never on file order.
func assignSplits(k Kind, test, pool []Row, seed uint64, sealed, holdout float64) map[string]string {
	out := make(map[string]string, len(test)+len(pool))
	rng := rand.New(rand.NewPCG(seed, 0x6161722d73706c74)) // "aar-splt"
	for _, group := range strata(k, test) {
		shuffle(rng, group)
		nSealed := share(len(group), sealed)
		nHold := share(len(group)-nSealed, holdout)
		for i, u := range group {
			split := SplitFeedback
			switch {
			case i < nSealed:
				split = SplitSealed
			case i < nSealed+nHold:
				split = SplitHoldout
			}
			for _, r := range u.rows {
				out[r.ID] = split
			}
		}
	}
	for _, group := range strata(k, pool) {
		shuffle(rng, group)
		nSealed := share(len(group), sealed)
		for i, u := range group {
			split := SplitPublic
			if i < nSealed {
				split = SplitSealed
			}
			for _, r := range u.rows {
				out[r.ID] = split
			}
		}
	}
	return out
}

// share rounds n·f to the nearest integer.
func share(n int, f float64) int {
	return int(math.Round(float64(n) * f))
}

// unit is a set of rows that must share a split.
type unit struct {
	key  string
	rows []Row
}

// unitKey is what makes rows one unit: for comparison rows the prompt and
// the unordered pair of answers; for binary rows the question; otherwise the
// row itself.
func unitKey(k Kind, r Row) string {
	field := func(name string) string {
		var s string
		_ = json.Unmarshal(r.Fields[name], &s)
		return s
	}
	switch k {
	case KindComparison:
		p, a, b := field("prompt"), field("first"), field("second")
		if b < a {
			a, b = b, a
		}
		h := sha256.Sum256([]byte(p + "\x00" + a + "\x00" + b))
		return "pair\x00" + string(h[:])
	case KindBinary:
		h := sha256.Sum256([]byte(field("question")))
		return "question\x00" + string(h[:])
	}
	return rowKey(r)
}

// rowKey is the key of a unit of one row.
func rowKey(r Row) string { return "id\x00" + r.ID }

// strata groups rows into units and units into strata by (subset, label)
// (a unit of several rows by subset alone), each stratum's units sorted by
// key, strata in a stable order.
func strata(k Kind, rows []Row) [][]unit {
	units := map[string]*unit{}
	var order []string
	for _, r := range rows {
		key := unitKey(k, r)
		u, ok := units[key]
		if !ok {
			u = &unit{key: key}
			units[key] = u
			order = append(order, key)
		}
		u.rows = append(u.rows, r)
	}
	byStratum := map[string][]unit{}
	var keys []string
	for _, key := range order {
		u := units[key]
		if k == KindBinary && len(u.rows) == 1 {
			// A question asked once is keyed by its row, so testbeds with
			// one candidate per question draw the splits they always did.
			u.key = rowKey(u.rows[0])
		}
		st := u.rows[0].Subset + "\x00"
		if len(u.rows) == 1 {
			st += strconv.Itoa(u.rows[0].Label)
		} else {
			st += "unit"
		}
		if _, ok := byStratum[st]; !ok {
			keys = append(keys, st)
		}
		byStratum[st] = append(byStratum[st], *u)
	}
	sort.Strings(keys)
	out := make([][]unit, 0, len(keys))
	for _, st := range keys {
		g := byStratum[st]
		sort.Slice(g, func(i, j int) bool { return g[i].key < g[j].key })
		out = append(out, g)
	}
	return out
}

func shuffle(rng *rand.Rand, units []unit) {
	rng.Shuffle(len(units), func(i, j int) { units[i], units[j] = units[j], units[i] })
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
