// Package lab owns the lab server: identities (admin and researcher tokens),
// campaigns, the scoring API with its feedback policies, quotas and probe
// detection, and the ledger every event goes to. It is the only process that
// loads testbed labels; no response, log line or error it writes may carry a
// label or a figure the caller's role may not see (researchers: feedback
// split only).
//
// State is event-sourced: every change is a ledger event, and the in-memory
// indexes (tokens, campaigns, submissions, idempotency keys of submissions
// and findings, snapshot trees, ladders, quotas, transcript positions and
// spend, notebooks, operator control) are rebuilt from the ledger at start,
// so an acknowledged submission survives a crash exactly once.
package lab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/snapshot"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
)

// Roles.
const (
	RolePublic     = "public"
	RoleResearcher = "researcher"
	RoleAdmin      = "admin"
)

// Config configures a Lab.
type Config struct {
	DataDir string
	Ledger  store.Ledger
	// Forum stores findings (nil: the forum routes answer 503).
	Forum  forum.Store
	Logger *slog.Logger
	// CheckpointEvery signs the chain head every N entries (default 100).
	CheckpointEvery int
	// MaxBody bounds a JSON request body (default 20 MB); MaxArchive a
	// snapshot upload (default snapshot.DefaultLimits().MaxArchiveBytes).
	MaxBody    int64
	MaxArchive int64
	Now        func() time.Time
}

// Lab is the server's state and operations; the HTTP layer calls its
// methods.
type Lab struct {
	cfg      Config
	log      *slog.Logger
	ledger   store.Ledger
	testbeds *testbed.Store
	signer   *store.Signer
	detector score.Detector

	headMu     sync.Mutex // guards lastHead and sinceCheck
	lastHead   string     // the head after this lab's last append (for headers)
	sinceCheck int        // appends since the last checkpoint (rejections append without mu)

	views publicViews // public view archives by testbed
	// transcriptLinks: submission, finding or snapshot id → the transcript
	// position that reported it (guarded by mu).
	transcriptLinks map[string]TranscriptLink
	web             atomic.Pointer[http.Handler]
	mcp, proxy      atomic.Pointer[http.Handler]

	snapOnce sync.Once
	snaps    *snapshot.Store
	snapErr  error

	mu          sync.Mutex                  // guards everything below
	tokens      map[string]*Identity        // token hash → identity
	snapshots   map[string]*SnapshotMeta    // id → snapshot
	campaigns   map[string]*Campaign        // id → campaign
	submissions map[string]*Submission      // id → submission
	idem        map[string]string           // researcher\x00key → submission id
	ladders     map[string]*score.Ladder    // campaign\x00researcher → ladder
	quotas      map[string]*score.Quota     // campaign → quota
	loaded      map[string]*testbed.Testbed // testbed cache
	submitLocks map[string]*sync.Mutex      // researcher → lock (idempotency)
	transcripts map[string]*transcriptLog   // campaign\x00researcher → transcript index
	notebooks   map[string][]NotebookEntry  // campaign\x00researcher → notebook
	control     map[string]*campaignControl // campaign → operator control (states, added researchers, notes)
	findingIdem map[string]findingIdem      // campaign\x00author\x00key → the finding it made
	snapTrees   map[string]string           // campaign\x00author\x00parent\x00tree → first snapshot id
	replaying   bool                        // replay counts quotas; live submissions count them before scoring
	// verifications: submission or snapshot id → its latest verification.
	verifications map[string]*Verification
	verifier      Verifier
}

// Identity is who a token speaks for.
type Identity struct {
	Role       string `json:"role"`
	Researcher string `json:"researcher,omitempty"`
	Campaign   string `json:"campaign,omitempty"`
	Revoked    bool   `json:"-"`
}

// Campaign is a set of researchers working on one testbed under one
// feedback policy.
type Campaign struct {
	ID      string    `json:"id"`
	Testbed string    `json:"testbed"`
	Policy  string    `json:"policy"`
	Quota   QuotaSpec `json:"quota"`
	Created time.Time `json:"created"`
	// Spec is the campaign file as given (a JSON object of at most
	// MaxSpec bytes, stored compacted); SpecSHA256 is the lab's SHA-256
	// (hex) of those compacted bytes.
	Spec       json.RawMessage `json:"spec,omitempty"`
	SpecSHA256 string          `json:"spec_sha256,omitempty"`
	// Stopped is derived from a campaign "stop" control event; it is never
	// part of the campaign's own ledger event.
	Stopped bool `json:"stopped,omitempty"`
}

// QuotaSpec is a campaign's submission quota (0 = unlimited).
type QuotaSpec struct {
	PerResearcherPerHour int `json:"per_researcher_per_hour"`
	PerCampaignPerHour   int `json:"per_campaign_per_hour"`
}

// Submission is an accepted submission.
type Submission struct {
	ID         string   `json:"id"`
	Campaign   string   `json:"campaign"`
	Researcher string   `json:"researcher"`
	Testbed    string   `json:"testbed"`
	Seeds      []string `json:"seeds"`
	Snapshot   string   `json:"snapshot,omitempty"`
	Note       string   `json:"note,omitempty"`
	IdemKey    string   `json:"idempotency_key,omitempty"`
	PredSHA256 string   `json:"predictions_sha256"`
	// Predictions (in the ledger event only; dropped from memory) are each
	// seed's class indexes in public test order, one byte each, base64.
	Predictions json.RawMessage `json:"predictions,omitempty"`
	Report      *score.Report   `json:"report"`
	Feedback    *score.Feedback `json:"feedback"`
	Flags       []score.Flag    `json:"flags,omitempty"`
	Review      string          `json:"review,omitempty"` // "", "cleared", "disqualified"
	At          time.Time       `json:"at"`
	Seq         int64           `json:"ledger_seq"`
}

// Event kinds.
const (
	evInit     = "lab.init"
	evToken    = "token.created"
	evRevoke   = "token.revoked"
	evCampaign = "campaign.created"
	evAccepted = "submission.accepted"
	evRejected = "submission.rejected"
	evReview   = "review"
	evControl  = "campaign.control"
)

// New opens a lab over a ledger: it replays the ledger into memory and, on
// the very first start, makes the admin token, which it returns (empty
// otherwise) — it is shown once and stored only as a hash.
func New(ctx context.Context, cfg Config) (*Lab, string, error) {
	if cfg.DataDir == "" || cfg.Ledger == nil {
		return nil, "", errors.New("lab: DataDir and Ledger are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 100
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 20 << 20
	}
	if cfg.MaxArchive <= 0 {
		cfg.MaxArchive = snapshot.DefaultLimits().MaxArchiveBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tbs, err := testbed.OpenStore(cfg.DataDir)
	if err != nil {
		return nil, "", err
	}
	signer, err := store.LoadOrCreateKey(filepath.Join(cfg.DataDir, "ledger.key"))
	if err != nil {
		return nil, "", err
	}
	l := &Lab{
		cfg: cfg, log: cfg.Logger, ledger: cfg.Ledger, testbeds: tbs, signer: signer,
		tokens: map[string]*Identity{}, snapshots: map[string]*SnapshotMeta{}, campaigns: map[string]*Campaign{}, submissions: map[string]*Submission{},
		idem: map[string]string{}, ladders: map[string]*score.Ladder{}, quotas: map[string]*score.Quota{},
		loaded: map[string]*testbed.Testbed{}, submitLocks: map[string]*sync.Mutex{},
		transcripts: map[string]*transcriptLog{}, notebooks: map[string][]NotebookEntry{},
		control: map[string]*campaignControl{}, findingIdem: map[string]findingIdem{}, snapTrees: map[string]string{},
		verifications: map[string]*Verification{},
	}
	if err := l.replay(ctx); err != nil {
		return nil, "", err
	}
	var admin string
	if len(l.tokens) == 0 {
		admin = newToken()
		if _, err := l.append(ctx, store.Input{Kind: evInit, Actor: "lab", Body: map[string]any{"admin_token_sha256": hashToken(admin)}}); err != nil {
			return nil, "", err
		}
		l.tokens[hashToken(admin)] = &Identity{Role: RoleAdmin}
	}
	return l, admin, nil
}

func newToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "aar_" + base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// append writes events to the ledger and signs a checkpoint every
// CheckpointEvery entries.
func (l *Lab) append(ctx context.Context, in ...store.Input) ([]store.Event, error) {
	evs, err := l.ledger.Append(ctx, in...)
	if err != nil {
		return nil, err
	}
	l.headMu.Lock()
	l.lastHead = store.HeadString(evs[len(evs)-1])
	l.sinceCheck += len(evs)
	due := l.sinceCheck >= l.cfg.CheckpointEvery
	if due {
		l.sinceCheck = 0
	}
	l.headMu.Unlock()
	if due {
		if err := l.ledger.AddCheckpoint(ctx, l.signer.Checkpoint(evs[len(evs)-1], l.cfg.Now())); err != nil {
			l.log.Error("ledger checkpoint", "err", err)
		}
	}
	return evs, nil
}

// Checkpoint signs the current head (at shutdown and campaign end).
func (l *Lab) Checkpoint(ctx context.Context) error {
	head, err := l.ledger.Head(ctx)
	if errors.Is(err, store.ErrEmpty) {
		return nil
	}
	if err != nil {
		return err
	}
	return l.ledger.AddCheckpoint(ctx, l.signer.Checkpoint(head, l.cfg.Now()))
}

// Head is the ledger head as "SEQ:HASH" (this lab's last append, else read
// from the ledger).
func (l *Lab) Head(ctx context.Context) string {
	l.headMu.Lock()
	last := l.lastHead
	l.headMu.Unlock()
	if last != "" {
		return last
	}
	h, err := l.ledger.Head(ctx)
	if err != nil {
		return ""
	}
	return store.HeadString(h)
}

// replay rebuilds the in-memory state from the ledger.
func (l *Lab) replay(ctx context.Context) error {
	l.replaying = true
	defer func() { l.replaying = false }()
	var recent []store.Event             // the last forum events, to repair a crash window
	probes := map[string][]store.Event{} // campaign → its last accepted submissions
	err := l.ledger.Scan(ctx, 1, func(e store.Event) error {
		l.applyLocked(e)
		switch e.Kind {
		case evFinding, evComment:
			if recent = append(recent, e); len(recent) > recentForum {
				recent = recent[1:]
			}
		case evAccepted:
			q := append(probes[e.Campaign], e)
			if len(q) > probeWindow {
				q = q[1:]
			}
			probes[e.Campaign] = q
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := l.repairForum(ctx, recent); err != nil {
		return err
	}
	l.refillDetector(probes)
	return nil
}

// recentForum is how many of the last forum events a restart re-checks:
// a finding or comment is appended to the ledger before the forum store,
// so a crash can leave only the last few in the ledger alone.
const recentForum = 64

// probeWindow is the detector window rebuilt at a restart (per campaign).
const probeWindow = 512

// repairForum stores any of the last forum events that the forum store
// lacks (a crash between the ledger append and the store write).
func (l *Lab) repairForum(ctx context.Context, events []store.Event) error {
	if l.cfg.Forum == nil {
		return nil
	}
	for _, e := range events {
		switch e.Kind {
		case evFinding:
			var f forum.Finding
			if json.Unmarshal(e.Body, &f) != nil {
				continue
			}
			if _, _, err := l.cfg.Forum.Get(ctx, f.Campaign, f.ID); errors.Is(err, forum.ErrNotFound) {
				if _, err := l.cfg.Forum.Add(ctx, f); err != nil && !errors.Is(err, forum.ErrDuplicate) {
					return fmt.Errorf("repair forum finding %s: %w", f.ID, err)
				}
				l.log.Warn("stored a finding the ledger had but the forum lacked", "finding", f.ID)
			}
		case evComment:
			var c forum.Comment
			if json.Unmarshal(e.Body, &c) != nil {
				continue
			}
			_, comments, err := l.cfg.Forum.Get(ctx, e.Campaign, c.Finding)
			if err != nil {
				continue
			}
			found := false
			for _, x := range comments {
				found = found || x.ID == c.ID
			}
			if !found {
				if _, err := l.cfg.Forum.Comment(ctx, e.Campaign, c); err != nil && !errors.Is(err, forum.ErrDuplicate) {
					return fmt.Errorf("repair forum comment %s: %w", c.ID, err)
				}
				l.log.Warn("stored a comment the ledger had but the forum lacked", "comment", c.ID)
			}
		}
	}
	return nil
}

// refillDetector replays each campaign's last accepted submissions into the
// probe detector, so near-duplicates of work from before a restart are
// still caught.
func (l *Lab) refillDetector(probes map[string][]store.Event) {
	for campaign, events := range probes {
		c := l.campaigns[campaign]
		if c == nil {
			continue
		}
		tb, err := l.testbedFor(c.Testbed)
		if err != nil {
			continue
		}
		public := tb.PublicTest()
		for _, e := range events {
			var s struct {
				ID          string            `json:"id"`
				Researcher  string            `json:"researcher"`
				Predictions map[string]string `json:"predictions"`
			}
			if json.Unmarshal(e.Body, &s) != nil || len(s.Predictions) == 0 {
				continue
			}
			seeds := make([]string, 0, len(s.Predictions))
			for k := range s.Predictions {
				seeds = append(seeds, k)
			}
			sort.Strings(seeds)
			raw, err := base64.StdEncoding.DecodeString(s.Predictions[seeds[0]])
			if err != nil || len(raw) != len(public) {
				continue
			}
			p := score.Predictions{Seed: seeds[0], Labels: make(map[string]int, len(raw))}
			for i, r := range public {
				p.Labels[r.ID] = int(raw[i])
			}
			l.detector.Check(tb, campaign, s.Researcher, s.ID, p)
		}
	}
}

// applyLocked folds one event into the state (the caller holds mu or is
// replaying before the lab is shared).
func (l *Lab) applyLocked(e store.Event) {
	switch e.Kind {
	case evInit:
		var b struct {
			Hash string `json:"admin_token_sha256"`
		}
		if json.Unmarshal(e.Body, &b) == nil {
			l.tokens[b.Hash] = &Identity{Role: RoleAdmin}
		}
	case evToken:
		var b struct {
			Hash string `json:"token_sha256"`
			Identity
		}
		if json.Unmarshal(e.Body, &b) == nil {
			id := b.Identity
			l.tokens[b.Hash] = &id
		}
	case evRevoke:
		var b struct {
			Hash string `json:"token_sha256"`
		}
		if json.Unmarshal(e.Body, &b) == nil && l.tokens[b.Hash] != nil {
			l.tokens[b.Hash].Revoked = true
		}
	case evCampaign:
		var c Campaign
		if json.Unmarshal(e.Body, &c) == nil {
			c.Stopped = false
			l.campaigns[c.ID] = &c
		}
	case evAccepted:
		var s Submission
		if json.Unmarshal(e.Body, &s) == nil {
			s.Seq = e.Seq
			s.Predictions = nil
			l.acceptLocked(&s)
		}
	case evSnapshot:
		var m SnapshotMeta
		if json.Unmarshal(e.Body, &m) == nil {
			l.snapshots[m.ID] = &m
			if k := snapTreeKey(&m); l.snapTrees[k] == "" {
				l.snapTrees[k] = m.ID
			}
		}
	case evReview:
		var b struct {
			Submission string `json:"submission"`
			Decision   string `json:"decision"`
		}
		if json.Unmarshal(e.Body, &b) == nil && l.submissions[b.Submission] != nil {
			l.submissions[b.Submission].Review = b.Decision
		}
	case evTranscript:
		l.applyTranscriptLocked(e)
	case evNotebook:
		l.applyNotebookLocked(e)
	case evControl:
		l.applyControlLocked(e)
	case evFinding:
		l.applyFindingLocked(e)
	case evVerifyDone:
		l.applyVerificationLocked(e)
	}
}

// acceptLocked indexes an accepted submission (live or replayed).
func (l *Lab) acceptLocked(s *Submission) {
	l.submissions[s.ID] = s
	if s.IdemKey != "" {
		l.idem[s.Researcher+"\x00"+s.IdemKey] = s.ID
	}
	if s.Feedback != nil && s.Feedback.Policy == score.PolicyLadder && s.Feedback.Released && len(s.Feedback.Cells) > 0 {
		l.ladder(s.Campaign, s.Researcher).Best = s.Feedback.Cells[0].Accuracy.Mean
		l.ladder(s.Campaign, s.Researcher).Set = true
	}
	if c := l.campaigns[s.Campaign]; c != nil && l.replaying && l.cfg.Now().Sub(s.At) < time.Hour {
		l.quota(c).Allow(s.Campaign, s.Researcher, s.At)
	}
}

func (l *Lab) ladder(campaign, researcher string) *score.Ladder {
	k := campaign + "\x00" + researcher
	if l.ladders[k] == nil {
		l.ladders[k] = &score.Ladder{}
	}
	return l.ladders[k]
}

func (l *Lab) quota(c *Campaign) *score.Quota {
	if l.quotas[c.ID] == nil {
		l.quotas[c.ID] = &score.Quota{PerResearcher: c.Quota.PerResearcherPerHour, PerCampaign: c.Quota.PerCampaignPerHour, Window: time.Hour}
	}
	return l.quotas[c.ID]
}

// Authenticate returns the identity of a bearer token, or nil.
func (l *Lab) Authenticate(tok string) *Identity {
	if tok == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.tokens[hashToken(tok)]
	if id == nil || id.Revoked {
		return nil
	}
	c := *id
	return &c
}

// CreateCampaign makes a campaign (admin).
func (l *Lab) CreateCampaign(ctx context.Context, c Campaign) (*Campaign, error) {
	if c.ID == "" {
		return nil, publicErr(400, "invalid_campaign", "give the campaign an id")
	}
	if err := testbed.ValidateName(c.ID); err != nil {
		return nil, publicErr(400, "invalid_campaign", "campaign id: use 1-64 lower-case letters, digits, '.', '_' or '-'")
	}
	if c.Policy == "" {
		c.Policy = score.PolicyDefault
	}
	known := false
	for _, p := range score.Policies {
		known = known || p == c.Policy
	}
	if !known {
		return nil, publicErr(400, "invalid_policy", fmt.Sprintf("policy %q: use default, ladder or anchor", c.Policy))
	}
	if c.Quota == (QuotaSpec{}) && c.Policy != score.PolicyAnchor {
		c.Quota = QuotaSpec{PerResearcherPerHour: 30, PerCampaignPerHour: 500}
	}
	if _, err := l.testbeds.Manifest(c.Testbed); err != nil {
		return nil, publicErr(400, "unknown_testbed", fmt.Sprintf("testbed %q is not installed in this lab", c.Testbed))
	}
	spec, sum, err := checkSpec(c.Spec)
	if err != nil {
		return nil, err
	}
	c.Spec, c.SpecSHA256, c.Stopped = spec, sum, false
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.campaigns[c.ID] != nil {
		return nil, publicErr(409, "campaign_exists", fmt.Sprintf("campaign %q exists", c.ID))
	}
	c.Created = l.cfg.Now().UTC()
	body, err := marshalRaw(c)
	if err != nil {
		return nil, err
	}
	evs, err := l.append(ctx, store.Input{Kind: evCampaign, Actor: "admin", Campaign: c.ID, Body: body})
	if err != nil {
		return nil, err
	}
	l.applyLocked(evs[0])
	out := *l.campaigns[c.ID]
	return &out, nil
}

// CreateToken makes a researcher token for a campaign (admin). The token is
// returned once; the lab keeps its hash.
func (l *Lab) CreateToken(ctx context.Context, researcher, campaign string) (string, error) {
	if err := testbed.ValidateName(researcher); err != nil {
		return "", publicErr(400, "invalid_researcher", "researcher name: use 1-64 lower-case letters, digits, '.', '_' or '-'")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.campaigns[campaign] == nil {
		return "", publicErr(404, "unknown_campaign", fmt.Sprintf("campaign %q does not exist", campaign))
	}
	tok := newToken()
	body := map[string]any{"token_sha256": hashToken(tok), "role": RoleResearcher, "researcher": researcher, "campaign": campaign}
	evs, err := l.append(ctx, store.Input{Kind: evToken, Actor: "admin", Campaign: campaign, Body: body})
	if err != nil {
		return "", err
	}
	l.applyLocked(evs[0])
	return tok, nil
}

// RevokeToken revokes a token given itself or its SHA-256 (admin).
func (l *Lab) RevokeToken(ctx context.Context, tokOrHash string) error {
	h := tokOrHash
	if len(h) != 64 {
		h = hashToken(tokOrHash)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens[h] == nil {
		return publicErr(404, "unknown_token", "no such token")
	}
	evs, err := l.append(ctx, store.Input{Kind: evRevoke, Actor: "admin", Campaign: l.tokens[h].Campaign, Body: map[string]string{"token_sha256": h}})
	if err != nil {
		return err
	}
	l.applyLocked(evs[0])
	return nil
}

// testbedFor loads (and caches) a campaign's testbed.
func (l *Lab) testbedFor(name string) (*testbed.Testbed, error) {
	l.mu.Lock()
	tb := l.loaded[name]
	l.mu.Unlock()
	if tb != nil {
		return tb, nil
	}
	tb, err := l.testbeds.Load(name)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.loaded[name] = tb
	l.mu.Unlock()
	return tb, nil
}

// ditherer is the campaign's feedback dither, keyed by the lab's secret key.
func (l *Lab) ditherer(campaign string) score.Ditherer {
	h := sha256.New()
	h.Write(l.signer.Secret())
	h.Write([]byte("dither\x00" + campaign))
	return score.Ditherer{Secret: h.Sum(nil)}
}
