package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aar-lab/aar/internal/store"
)

// evTranscript is one event of a researcher worker's transcript (a model
// message, a tool call or result, a usage record, a note, a stop).
const evTranscript = "transcript"

// Limits of transcript input and pages.
const (
	// MaxTranscriptBatch is how many events one POST /v1/transcripts carries.
	MaxTranscriptBatch = 500
	// MaxTranscriptEvent bounds one event's JSON as stored; the worker caps
	// tool results before sending.
	MaxTranscriptEvent = 256 << 10
	maxEventType       = 64
	maxSession         = 128
	// DefaultTranscriptPage and MaxTranscriptPage bound a GET's limit.
	DefaultTranscriptPage = 200
	MaxTranscriptPage     = 1000
)

// Transcript event types the spend totals count.
const (
	TranscriptUsage    = "usage"     // one model call
	TranscriptToolCall = "tool_call" // one tool call
	// TranscriptModelResponse is one model call made through the metering
	// proxy (its usage and cost are on the event).
	TranscriptModelResponse = "model_response"
)

// Usage is a model call's token counts.
type Usage struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
}

// TranscriptEvent is one event a researcher worker records. Data is any
// JSON object; the lab stores it as given and never interprets it.
type TranscriptEvent struct {
	Session    string          `json:"session"`
	Type       string          `json:"type"`
	At         time.Time       `json:"at,omitzero"`
	Data       json.RawMessage `json:"data,omitempty"`
	Usage      *Usage          `json:"usage,omitempty"`
	CostUSD    float64         `json:"cost_usd,omitempty"`
	CPUSeconds float64         `json:"cpu_seconds,omitempty"`
}

// TranscriptAck gives the ledger seqs of an appended batch, so the worker
// can link a submission or finding to its transcript position.
type TranscriptAck struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
	Count int   `json:"count"`
}

// TranscriptEntry is a stored transcript event with its position in the
// researcher's transcript (0-based) and its ledger seq.
type TranscriptEntry struct {
	Pos int   `json:"pos"`
	Seq int64 `json:"seq"`
	TranscriptEvent
}

// TranscriptPage is a page of a researcher's transcript. Next, when set, is
// the after= of the following page; Total counts the events that match the
// query (all of the researcher's, or the session's).
type TranscriptPage struct {
	Events []TranscriptEntry `json:"events"`
	Next   *int              `json:"next"`
	Total  int               `json:"total"`
}

// TranscriptQuery selects a page: the events with pos > After (-1: from
// the start), of Session when set, at most Limit of them.
type TranscriptQuery struct {
	Campaign   string
	Researcher string
	Session    string
	After      int
	Limit      int
}

// Spend is what a researcher (or a campaign, summed) has used, from the
// transcript events' usage, cost and CPU fields.
type Spend struct {
	Researcher       string  `json:"researcher,omitempty"`
	Campaign         string  `json:"campaign"`
	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"`
	CacheReadTokens  int64   `json:"cache_read_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	ModelCalls       int64   `json:"model_calls"`
	ToolCalls        int64   `json:"tool_calls"`
	TranscriptEvents int64   `json:"transcript_events"`
	Sessions         int     `json:"sessions"`
}

// CampaignSpend is a campaign's spend, in total and per researcher (sorted
// by name).
type CampaignSpend struct {
	Campaign    string  `json:"campaign"`
	Total       Spend   `json:"total"`
	Researchers []Spend `json:"researchers"`
}

// transcriptLog is the in-memory index of one researcher's transcript:
// where each position lies in the ledger, each session's positions, and
// the running spend. Events themselves stay in the ledger.
type transcriptLog struct {
	seqs     []int64          // position → ledger seq, ascending
	sessions map[string][]int // session → its positions, ascending
	spend    Spend            // Sessions is len(sessions), filled on read
}

func researcherKey(campaign, researcher string) string { return campaign + "\x00" + researcher }

// transcriptLocked returns (making it) the index of a researcher's
// transcript.
func (l *Lab) transcriptLocked(campaign, researcher string) *transcriptLog {
	k := researcherKey(campaign, researcher)
	t := l.transcripts[k]
	if t == nil {
		t = &transcriptLog{sessions: map[string][]int{}, spend: Spend{Researcher: researcher, Campaign: campaign}}
		l.transcripts[k] = t
	}
	return t
}

// applyTranscriptLocked indexes one transcript ledger event (live or
// replayed). Only the fields the index needs are decoded.
// TranscriptLink is where in a transcript a submission, finding or
// snapshot was made: the tool result that reported it.
type TranscriptLink struct {
	Campaign   string `json:"campaign"`
	Researcher string `json:"researcher"`
	Seq        int64  `json:"seq"`
}

// TranscriptLinkOf finds the transcript position that produced id (a
// submission, finding or snapshot), for admins or the researcher whose
// transcript it is.
func (l *Lab) TranscriptLinkOf(id *Identity, thing string) (TranscriptLink, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	link, ok := l.transcriptLinks[thing]
	if !ok || id.Role != RoleAdmin && (id.Campaign != link.Campaign || id.Researcher != link.Researcher) {
		return TranscriptLink{}, false
	}
	return link, true
}

func (l *Lab) applyTranscriptLocked(e store.Event) {
	var b struct {
		Session    string  `json:"session"`
		Type       string  `json:"type"`
		Usage      *Usage  `json:"usage"`
		CostUSD    float64 `json:"cost_usd"`
		CPUSeconds float64 `json:"cpu_seconds"`
		Data       struct {
			Submission string `json:"submission"`
			Finding    string `json:"finding"`
			Snapshot   string `json:"snapshot"`
		} `json:"data"`
	}
	if json.Unmarshal(e.Body, &b) != nil {
		return
	}
	// What a tool result produced links back to its transcript position.
	if b.Type == "tool_result" {
		for _, id := range []string{b.Data.Submission, b.Data.Finding, b.Data.Snapshot} {
			if id != "" && len(id) <= 128 {
				if l.transcriptLinks == nil {
					l.transcriptLinks = map[string]TranscriptLink{}
				}
				if _, seen := l.transcriptLinks[id]; !seen {
					l.transcriptLinks[id] = TranscriptLink{Campaign: e.Campaign, Researcher: e.Actor, Seq: e.Seq}
				}
			}
		}
	}
	t := l.transcriptLocked(e.Campaign, e.Actor)
	pos := len(t.seqs)
	t.seqs = append(t.seqs, e.Seq)
	t.sessions[b.Session] = append(t.sessions[b.Session], pos)
	s := &t.spend
	s.TranscriptEvents++
	if b.Usage != nil {
		s.InputTokens += b.Usage.InputTokens
		s.OutputTokens += b.Usage.OutputTokens
		s.CacheReadTokens += b.Usage.CacheReadTokens
		s.CacheWriteTokens += b.Usage.CacheWriteTokens
	}
	s.CostUSD += b.CostUSD
	s.CPUSeconds += b.CPUSeconds
	switch b.Type {
	case TranscriptUsage, TranscriptModelResponse:
		s.ModelCalls++
	case TranscriptToolCall:
		s.ToolCalls++
	}
}

// AppendTranscript validates a batch of the researcher's transcript events
// and appends them to the ledger in one append, all or none.
func (l *Lab) AppendTranscript(ctx context.Context, id *Identity, events []TranscriptEvent) (*TranscriptAck, error) {
	if id.Role != RoleResearcher {
		return nil, publicErr(403, "forbidden", "transcripts are recorded with researcher tokens")
	}
	if len(events) == 0 {
		return nil, publicErr(400, "invalid_transcript", "send 1 to 500 events: {\"events\": [{\"session\", \"type\", \"data\", ...}]}")
	}
	if len(events) > MaxTranscriptBatch {
		return nil, publicErr(400, "too_many_events", fmt.Sprintf("%d events in one call: the limit is %d, split the batch", len(events), MaxTranscriptBatch))
	}
	now := l.cfg.Now().UTC()
	in := make([]store.Input, len(events))
	for i := range events {
		ev := events[i]
		if err := checkTranscriptEvent(i, &ev); err != nil {
			return nil, err
		}
		if ev.At.IsZero() {
			ev.At = now
		}
		body, err := json.Marshal(ev)
		if err != nil {
			return nil, publicErr(400, "invalid_transcript", fmt.Sprintf("event %d cannot be encoded as JSON", i))
		}
		if len(body) > MaxTranscriptEvent {
			return nil, publicErr(400, "event_too_large", fmt.Sprintf("event %d is %d bytes: the limit is %d bytes (256 KiB) per event; cap tool results before sending", i, len(body), MaxTranscriptEvent))
		}
		in[i] = store.Input{Kind: evTranscript, Actor: id.Researcher, Campaign: id.Campaign, Body: json.RawMessage(body)}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	evs, err := l.append(ctx, in...)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		l.applyLocked(e)
	}
	return &TranscriptAck{First: evs[0].Seq, Last: evs[len(evs)-1].Seq, Count: len(evs)}, nil
}

// checkTranscriptEvent refuses an event the lab would store wrongly or
// count wrongly; the message names the event's index.
func checkTranscriptEvent(i int, ev *TranscriptEvent) error {
	bad := func(format string, args ...any) error {
		return publicErr(400, "invalid_transcript", fmt.Sprintf("event %d: ", i)+fmt.Sprintf(format, args...))
	}
	if !validLabel(ev.Type, maxEventType) {
		return bad("type %q: give 1-%d printable characters (message, tool_call, tool_result, usage, note, stop, ...)", clip(ev.Type), maxEventType)
	}
	if !validLabel(ev.Session, maxSession) {
		return bad("session %q: give 1-%d printable characters", clip(ev.Session), maxSession)
	}
	if d := bytes.TrimSpace(ev.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if d[0] != '{' || !json.Valid(d) {
			return bad("data must be a JSON object")
		}
	} else {
		ev.Data = nil
	}
	if u := ev.Usage; u != nil && (u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWriteTokens < 0) {
		return bad("token counts cannot be negative")
	}
	for name, v := range map[string]float64{"cost_usd": ev.CostUSD, "cpu_seconds": ev.CPUSeconds} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return bad("%s must be a finite number ≥ 0", name)
		}
	}
	return nil
}

// validLabel reports whether s is 1-n bytes of UTF-8 without control
// characters.
func validLabel(s string, n int) bool {
	if s == "" || len(s) > n || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// clip shortens a refused value for an error message.
func clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:40] + "…"
}

// transcriptOwner resolves whose transcript (or notebook, or spend) a
// caller reads: a researcher their own, refusing another's; an admin the
// campaign and researcher named.
func (l *Lab) transcriptOwner(id *Identity, campaign, researcher string) (string, string, error) {
	if id.Role != RoleAdmin {
		if researcher != "" && researcher != id.Researcher {
			return "", "", publicErr(403, "forbidden", "a researcher reads only their own transcript, notebook and spend")
		}
		if campaign != "" && campaign != id.Campaign {
			return "", "", publicErr(403, "wrong_campaign", "a researcher reads only the campaign of their token")
		}
		return id.Campaign, id.Researcher, nil
	}
	if campaign == "" || researcher == "" {
		return "", "", publicErr(400, "invalid_request", "admins name whose: ?campaign=ID&researcher=NAME")
	}
	l.mu.Lock()
	known := l.campaigns[campaign] != nil
	l.mu.Unlock()
	if !known {
		return "", "", publicErr(404, "unknown_campaign", fmt.Sprintf("campaign %q does not exist", campaign))
	}
	return campaign, researcher, nil
}

// errPageFull stops a ledger scan once a page is read.
var errPageFull = errors.New("page full")

// Transcript reads a page of a researcher's transcript: the positions come
// from the in-memory index, the events from the ledger, scanned from the
// page's first seq and no further than its last.
func (l *Lab) Transcript(ctx context.Context, id *Identity, q TranscriptQuery) (*TranscriptPage, error) {
	campaign, researcher, err := l.transcriptOwner(id, q.Campaign, q.Researcher)
	if err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = DefaultTranscriptPage
	}
	q.Limit = min(q.Limit, MaxTranscriptPage)
	q.After = max(q.After, -1)

	// The page's positions and seqs, copied under the lock.
	page := &TranscriptPage{Events: []TranscriptEntry{}}
	var pos []int
	var seqs []int64
	l.mu.Lock()
	if t := l.transcripts[researcherKey(campaign, researcher)]; t != nil {
		if q.Session == "" {
			page.Total = len(t.seqs)
			for p := q.After + 1; p < len(t.seqs) && len(pos) < q.Limit; p++ {
				pos = append(pos, p)
			}
		} else {
			all := t.sessions[q.Session]
			page.Total = len(all)
			i := sort.SearchInts(all, q.After+1)
			pos = append(pos, all[i:min(len(all), i+q.Limit)]...)
		}
		seqs = make([]int64, len(pos))
		for i, p := range pos {
			seqs[i] = t.seqs[p]
		}
		if len(pos) > 0 {
			last := pos[len(pos)-1]
			end := len(t.seqs) - 1 // the last position the query matches
			if q.Session != "" {
				all := t.sessions[q.Session]
				end = all[len(all)-1]
			}
			if last < end {
				page.Next = &last
			}
		}
	}
	l.mu.Unlock()
	if len(seqs) == 0 {
		return page, nil
	}

	page.Events = make([]TranscriptEntry, 0, len(seqs))
	err = l.ledger.ScanRange(ctx, seqs[0], seqs[len(seqs)-1], func(e store.Event) error {
		i := len(page.Events)
		switch {
		case e.Seq < seqs[i]:
			return nil
		case e.Seq > seqs[i] || e.Kind != evTranscript:
			return fmt.Errorf("transcript of %s/%s: ledger seq %d is not the indexed transcript event", campaign, researcher, seqs[i])
		}
		entry := TranscriptEntry{Pos: pos[i], Seq: e.Seq}
		if err := json.Unmarshal(e.Body, &entry.TranscriptEvent); err != nil {
			return fmt.Errorf("transcript event at ledger seq %d: %w", e.Seq, err)
		}
		page.Events = append(page.Events, entry)
		if len(page.Events) == len(seqs) {
			return errPageFull
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return nil, err
	}
	if len(page.Events) != len(seqs) {
		return nil, fmt.Errorf("transcript of %s/%s: the ledger ends before seq %d", campaign, researcher, seqs[len(page.Events)])
	}
	return page, nil
}

// SpendOf returns a researcher's totals.
func (l *Lab) SpendOf(id *Identity, campaign, researcher string) (*Spend, error) {
	campaign, researcher, err := l.transcriptOwner(id, campaign, researcher)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.spendLocked(campaign, researcher)
	return &s, nil
}

func (l *Lab) spendLocked(campaign, researcher string) Spend {
	t := l.transcripts[researcherKey(campaign, researcher)]
	if t == nil {
		return Spend{Researcher: researcher, Campaign: campaign}
	}
	s := t.spend
	s.Sessions = len(t.sessions)
	return s
}

// CampaignSpendOf returns a campaign's spend per researcher (every
// researcher with a token or a transcript) and in total (admin).
func (l *Lab) CampaignSpendOf(id *Identity, campaign string) (*CampaignSpend, error) {
	if id.Role != RoleAdmin {
		return nil, publicErr(403, "forbidden", "a campaign's spend is for admins; researchers read their own")
	}
	if campaign == "" {
		return nil, publicErr(400, "invalid_request", "admins name the campaign: ?campaign=ID (and &researcher=NAME for one researcher)")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.campaigns[campaign] == nil {
		return nil, publicErr(404, "unknown_campaign", fmt.Sprintf("campaign %q does not exist", campaign))
	}
	names := map[string]bool{}
	for _, tok := range l.tokens {
		if tok.Role == RoleResearcher && tok.Campaign == campaign {
			names[tok.Researcher] = true
		}
	}
	for _, t := range l.transcripts {
		if t.spend.Campaign == campaign {
			names[t.spend.Researcher] = true
		}
	}
	out := &CampaignSpend{Campaign: campaign, Total: Spend{Campaign: campaign}, Researchers: []Spend{}}
	for name := range names {
		out.Researchers = append(out.Researchers, l.spendLocked(campaign, name))
	}
	sort.Slice(out.Researchers, func(i, j int) bool { return out.Researchers[i].Researcher < out.Researchers[j].Researcher })
	tot := &out.Total
	for _, s := range out.Researchers {
		tot.InputTokens += s.InputTokens
		tot.OutputTokens += s.OutputTokens
		tot.CacheReadTokens += s.CacheReadTokens
		tot.CacheWriteTokens += s.CacheWriteTokens
		tot.CostUSD += s.CostUSD
		tot.CPUSeconds += s.CPUSeconds
		tot.ModelCalls += s.ModelCalls
		tot.ToolCalls += s.ToolCalls
		tot.TranscriptEvents += s.TranscriptEvents
		tot.Sessions += s.Sessions
	}
	return out, nil
}

// HTTP handlers.

func (l *Lab) handleAppendTranscript(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.Events) > MaxTranscriptBatch {
		return nil, publicErr(400, "too_many_events", fmt.Sprintf("%d events in one call: the limit is %d, split the batch", len(req.Events), MaxTranscriptBatch))
	}
	events := make([]TranscriptEvent, len(req.Events))
	for i, raw := range req.Events {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&events[i]); err != nil {
			return nil, publicErr(400, "invalid_transcript", fmt.Sprintf("event %d is not a transcript event object: %v", i, err))
		}
	}
	return l.AppendTranscript(r.Context(), id, events)
}

func (l *Lab) handleTranscript(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
	v := r.URL.Query()
	q := TranscriptQuery{Campaign: v.Get("campaign"), Researcher: v.Get("researcher"), Session: v.Get("session"), After: -1}
	for name, dst := range map[string]*int{"after": &q.After, "limit": &q.Limit} {
		if s := v.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, publicErr(400, "invalid_request", fmt.Sprintf("%s=%q: give an integer", name, clip(s)))
			}
			*dst = n
		}
	}
	return l.Transcript(r.Context(), id, q)
}

func (l *Lab) handleSpend(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
	q := r.URL.Query()
	if id.Role == RoleAdmin && q.Get("researcher") == "" {
		return l.CampaignSpendOf(id, q.Get("campaign"))
	}
	return l.SpendOf(id, q.Get("campaign"), q.Get("researcher"))
}
