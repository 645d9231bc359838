package score

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/aar-lab/aar/internal/testbed"
)

// Probe flag kinds.
const (
	FlagNearDuplicate = "near_duplicate"
	FlagWalk          = "walks_rows"
	FlagConstant      = "constant"
	FlagTrivial       = "trivial_strategy"
	FlagGroupProbe    = "group_probe"
)

// GroupProbeRows is the largest difference (in rows) from an earlier
// submission of the same researcher that the group-testing check looks at:
// max(8, 2% of rows).
func GroupProbeRows(n int) int {
	return max(8, int(math.Floor(0.02*float64(n))))
}

// ownHistory is how many of a researcher's own submissions the group-testing
// check keeps, and groupSets how many difference sets per base.
const (
	ownHistory = 64
	groupSets  = 32
)

// Flag says why a submission looks like a probe of the scorer rather than a
// method. A flagged score is withheld from the leaderboard until an admin
// clears it.
type Flag struct {
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	// Of names the earlier submission a near-duplicate resembles.
	Of string `json:"of,omitempty"`
}

// Detector finds probing submissions in a campaign: near-duplicates of a
// recent submission (a bounded window, searched through a locality-sensitive
// index of band hashes, not a scan of history), researchers who keep making
// them (walking rows), constant predictions, and agreement with a
// teacher-free trivial strategy. Safe for concurrent use.
type Detector struct {
	// Window is how many recent submissions per campaign are kept (default
	// 512); Bands × BandRows shape the index (default 32 × 24 rows: a
	// near-duplicate shares a band with its original with probability
	// 1 − (1 − 0.995^24)^32 ≈ 1, two unrelated binary submissions almost
	// never do).
	Window, Bands, BandRows int

	mu        sync.Mutex
	campaigns map[string]*campaignIndex // guarded by mu
}

type campaignIndex struct {
	// own is each researcher's recent submissions, oldest first, and sets
	// the small difference sets (row positions) found against each.
	own     map[string][]*probeEntry
	sets    map[*probeEntry][][]int
	entries []*probeEntry            // ring of the window, oldest first
	bands   map[uint64][]*probeEntry // band hash → entries
	streak  map[string]int           // researcher → consecutive near-duplicates
	rows    [][]int                  // per band: the row positions it hashes
}

type probeEntry struct {
	id, researcher string
	preds          []int
	keys           []uint64
}

func (d *Detector) defaults() {
	if d.Window <= 0 {
		d.Window = 512
	}
	if d.Bands <= 0 {
		d.Bands = 32
	}
	if d.BandRows <= 0 {
		d.BandRows = 24
	}
}

// NearDuplicateRows is how many rows a submission may differ in from an
// earlier one and still count as its near-duplicate: max(3, 0.5% of rows).
func NearDuplicateRows(n int) int {
	return max(3, int(math.Floor(0.005*float64(n))))
}

// Check looks at one submission (its first seed's predictions on the public
// test rows), records it in the campaign's window and returns its flags.
func (d *Detector) Check(tb *testbed.Testbed, campaign, researcher, id string, p Predictions) []Flag {
	rows := tb.PublicTest()
	preds := make([]int, len(rows))
	for i, r := range rows {
		preds[i] = p.Labels[r.ID]
	}
	var flags []Flag
	flags = append(flags, constantFlags(preds, len(tb.Manifest.Classes))...)
	flags = append(flags, trivialFlags(tb, rows, preds)...)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.defaults()
	if d.campaigns == nil {
		d.campaigns = map[string]*campaignIndex{}
	}
	ci := d.campaigns[campaign]
	if ci == nil || (len(ci.rows) > 0 && len(ci.entries) > 0 && len(ci.entries[0].preds) != len(preds)) {
		ci = newCampaignIndex(campaign, len(preds), d.Bands, d.BandRows)
		d.campaigns[campaign] = ci
	}
	e := &probeEntry{id: id, researcher: researcher, preds: preds, keys: ci.bandKeys(preds)}
	limit := NearDuplicateRows(len(preds))
	best, bestDiff := (*probeEntry)(nil), limit+1
	seen := map[*probeEntry]bool{}
	for _, k := range e.keys {
		for _, c := range ci.bands[k] {
			if seen[c] {
				continue
			}
			seen[c] = true
			if diff := hamming(c.preds, preds, bestDiff); diff < bestDiff {
				best, bestDiff = c, diff
			}
		}
	}
	if best != nil && bestDiff <= limit {
		flags = append(flags, Flag{Kind: FlagNearDuplicate, Of: best.id,
			Reason: fmt.Sprintf("differs from submission %s in %d of %d rows (at most %d counts as a probe)", best.id, bestDiff, len(preds), limit)})
		ci.streak[researcher]++
		if n := ci.streak[researcher]; n >= 2 {
			flags = append(flags, Flag{Kind: FlagWalk, Reason: fmt.Sprintf("%d near-duplicate submissions in a row: the rows are being walked one small change at a time", n)})
		}
	} else {
		ci.streak[researcher] = 0
	}
	if f, ok := ci.groupProbe(researcher, e); ok {
		flags = append(flags, f)
	}
	ci.add(e, d.Window)
	return flags
}

// groupProbe looks for group testing: a researcher's submissions that each
// change a small set of rows of one earlier submission (the base), where the
// sets are disjoint and of one size (testing groups) or nested (bisecting a
// group). Honest re-runs and variants change overlapping, unevenly sized
// sets of the uncertain rows; three structured sets against one base are a
// probe. Near-duplicates (a few rows) are the other check's.
func (ci *campaignIndex) groupProbe(researcher string, e *probeEntry) (Flag, bool) {
	limit := GroupProbeRows(len(e.preds))
	var found Flag
	ok := false
	for _, base := range ci.own[researcher] {
		if hamming(base.preds, e.preds, limit+1) > limit {
			continue
		}
		var set []int
		for i := range e.preds {
			if e.preds[i] != base.preds[i] {
				set = append(set, i)
			}
		}
		if len(set) == 0 {
			continue
		}
		structured := 0
		for _, prev := range ci.sets[base] {
			if disjoint(prev, set) && len(prev) == len(set) || subset(prev, set) || subset(set, prev) {
				structured++
			}
		}
		if structured >= 2 && !ok {
			found, ok = Flag{Kind: FlagGroupProbe, Of: base.id,
				Reason: fmt.Sprintf("changes %d rows of submission %s, the %d-th such change whose rows are disjoint from or nested in the others': rows are being tested in groups", len(set), base.id, structured+1)}, true
		}
		if len(ci.sets[base]) < groupSets {
			ci.sets[base] = append(ci.sets[base], set)
		}
	}
	own := append(ci.own[researcher], e)
	if len(own) > ownHistory {
		delete(ci.sets, own[0])
		own = own[1:]
	}
	ci.own[researcher] = own
	return found, ok
}

// disjoint and subset work on sorted row positions.
func disjoint(a, b []int) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			return false
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return true
}

func subset(a, b []int) bool {
	if len(a) > len(b) {
		return false
	}
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
	}
	return true
}

func newCampaignIndex(campaign string, n, bands, bandRows int) *campaignIndex {
	ci := &campaignIndex{bands: map[uint64][]*probeEntry{}, streak: map[string]int{}, own: map[string][]*probeEntry{}, sets: map[*probeEntry][][]int{}}
	h := fnv.New64a()
	h.Write([]byte(campaign))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x70726f6265)) // "probe"
	for range bands {
		pos := make([]int, min(bandRows, n))
		for i := range pos {
			pos[i] = rng.IntN(max(n, 1))
		}
		ci.rows = append(ci.rows, pos)
	}
	return ci
}

func (ci *campaignIndex) bandKeys(preds []int) []uint64 {
	keys := make([]uint64, len(ci.rows))
	var buf [8]byte
	for b, pos := range ci.rows {
		h := fnv.New64a()
		binary.LittleEndian.PutUint64(buf[:], uint64(b))
		h.Write(buf[:])
		for _, i := range pos {
			binary.LittleEndian.PutUint64(buf[:], uint64(preds[i]))
			h.Write(buf[:])
		}
		keys[b] = h.Sum64()
	}
	return keys
}

func (ci *campaignIndex) add(e *probeEntry, window int) {
	ci.entries = append(ci.entries, e)
	for _, k := range e.keys {
		ci.bands[k] = append(ci.bands[k], e)
	}
	for len(ci.entries) > window {
		old := ci.entries[0]
		ci.entries = ci.entries[1:]
		for _, k := range old.keys {
			list := ci.bands[k]
			for i, x := range list {
				if x == old {
					list = append(list[:i], list[i+1:]...)
					break
				}
			}
			if len(list) == 0 {
				delete(ci.bands, k)
			} else {
				ci.bands[k] = list
			}
		}
	}
}

// hamming counts differing positions, stopping once it reaches stop.
func hamming(a, b []int, stop int) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
			if n >= stop {
				return n
			}
		}
	}
	return n
}

// constantFlags flags predictions that are (nearly) all one class.
func constantFlags(preds []int, k int) []Flag {
	if len(preds) == 0 {
		return nil
	}
	counts := make([]int, k)
	for _, c := range preds {
		if c >= 0 && c < k {
			counts[c]++
		}
	}
	top := 0
	for _, n := range counts {
		top = max(top, n)
	}
	share := float64(top) / float64(len(preds))
	switch {
	case share == 1:
		return []Flag{{Kind: FlagConstant, Reason: "every prediction is the same class"}}
	case share >= 0.99:
		return []Flag{{Kind: FlagConstant, Reason: fmt.Sprintf("%.1f%% of the predictions are one class", 100*share)}}
	}
	return nil
}

// TrivialAgreement is the agreement with a teacher-free strategy at which a
// submission is flagged.
const TrivialAgreement = 0.98

// trivialFlags compares the predictions with strategies that need no weak
// teacher: always the majority class; and, for binary rows, "true for the
// most common answer among a question's candidate answers" (the study's
// math shortcut).
func trivialFlags(tb *testbed.Testbed, rows []testbed.Row, preds []int) []Flag {
	var flags []Flag
	if len(rows) == 0 {
		return nil
	}
	counts := map[int]int{}
	for _, r := range rows {
		counts[r.Label]++
	}
	majority, best := 0, -1
	for c, n := range counts {
		if n > best || (n == best && c < majority) {
			majority, best = c, n
		}
	}
	agree := 0
	for _, c := range preds {
		if c == majority {
			agree++
		}
	}
	if a := float64(agree) / float64(len(preds)); a >= TrivialAgreement {
		flags = append(flags, Flag{Kind: FlagTrivial, Reason: fmt.Sprintf("agrees with always predicting the majority class on %.1f%% of rows", 100*a)})
	}
	if tb.Manifest.Kind == testbed.KindBinary {
		if a := commonAnswerAgreement(rows, preds); a >= TrivialAgreement {
			flags = append(flags, Flag{Kind: FlagTrivial, Reason: fmt.Sprintf("agrees with picking the most common answer among each question's candidates on %.1f%% of rows", 100*a)})
		}
	}
	return flags
}

func commonAnswerAgreement(rows []testbed.Row, preds []int) float64 {
	field := func(r testbed.Row, f string) string {
		var s string
		_ = json.Unmarshal(r.Fields[f], &s)
		return strings.TrimSpace(s)
	}
	byQ := map[string]map[string]int{}
	for _, r := range rows {
		q := field(r, "question")
		if byQ[q] == nil {
			byQ[q] = map[string]int{}
		}
		byQ[q][field(r, "choice")]++
	}
	agree := 0
	for i, r := range rows {
		cands := byQ[field(r, "question")]
		top := 0
		for _, n := range cands {
			top = max(top, n)
		}
		want := 0
		if cands[field(r, "choice")] == top {
			want = 1
		}
		if preds[i] == want {
			agree++
		}
	}
	return float64(agree) / float64(len(rows))
}
