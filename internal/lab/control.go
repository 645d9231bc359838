package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
)

// Operator control of a campaign: an admin (the supervisor, aar run, or a
// person) pauses, resumes or stops researchers or the whole campaign, adds
// researchers with their settings, and leaves notes; each is a
// campaign.control ledger event, and the state is rebuilt from them at
// start. Workers poll GET /v1/control; the supervisor polls the events.

// Control actions.
const (
	ControlPause  = "pause"
	ControlResume = "resume"
	ControlStop   = "stop"
	ControlAdd    = "add"
	ControlNote   = "note"
)

var controlActions = []string{ControlPause, ControlResume, ControlStop, ControlAdd, ControlNote}

// Researcher states under control.
const (
	StateRunning = "running"
	StatePaused  = "paused"
	StateStopped = "stopped"
)

// Limits of control input and pages.
const (
	// MaxControlText bounds a note (or another action's reason).
	MaxControlText = 16 << 10
	// MaxControlConfig bounds an "add" event's config.
	MaxControlConfig = 1 << 20
	// MaxControlPage bounds a page of control events or notes.
	MaxControlPage = 1000
)

// ControlRequest is the body of POST /v1/campaigns/{id}/control and the
// body of its ledger event.
type ControlRequest struct {
	Action     string          `json:"action"`
	Researcher string          `json:"researcher,omitempty"`
	Text       string          `json:"text,omitempty"`
	Config     json.RawMessage `json:"config,omitempty"`
}

// ControlAck is the answer to a control request: its ledger seq and time.
type ControlAck struct {
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
}

// ControlEvent is a recorded control request.
type ControlEvent struct {
	Seq        int64           `json:"seq"`
	At         time.Time       `json:"at"`
	Action     string          `json:"action"`
	Researcher string          `json:"researcher"`
	Text       string          `json:"text"`
	Config     json.RawMessage `json:"config,omitempty"`
}

// OperatorNote is a note to a researcher.
type OperatorNote struct {
	Seq  int64     `json:"seq"`
	At   time.Time `json:"at"`
	Text string    `json:"text"`
}

// ControlState is what a researcher's worker polls: its state, whether the
// whole campaign is stopped, the notes to it after a cursor, and the next
// cursor (the largest seq returned, else the one given).
type ControlState struct {
	State           string         `json:"state"`
	CampaignStopped bool           `json:"campaign_stopped"`
	Notes           []OperatorNote `json:"notes"`
	Next            int64          `json:"next"`
}

// campaignControl is a campaign's control state, rebuilt from its
// campaign.control events. The campaign's own stop is Campaign.Stopped.
type campaignControl struct {
	events []ControlEvent             // every event, in seq order
	states map[string]string          // researcher → paused or stopped (absent: running)
	added  map[string]json.RawMessage // researchers added by "add", with their config
	notes  map[string][]OperatorNote  // researcher → notes, in seq order
}

func (l *Lab) controlLocked(campaign string) *campaignControl {
	cc := l.control[campaign]
	if cc == nil {
		cc = &campaignControl{states: map[string]string{}, added: map[string]json.RawMessage{}, notes: map[string][]OperatorNote{}}
		l.control[campaign] = cc
	}
	return cc
}

// applyControlLocked folds a control event into the state (live or
// replayed). A stopped researcher stays stopped.
func (l *Lab) applyControlLocked(e store.Event) {
	var req ControlRequest
	if json.Unmarshal(e.Body, &req) != nil {
		return
	}
	cc := l.controlLocked(e.Campaign)
	cc.events = append(cc.events, ControlEvent{Seq: e.Seq, At: e.At, Action: req.Action, Researcher: req.Researcher, Text: req.Text, Config: req.Config})
	r := req.Researcher
	switch req.Action {
	case ControlPause:
		if cc.states[r] != StateStopped {
			cc.states[r] = StatePaused
		}
	case ControlResume:
		if cc.states[r] != StateStopped {
			delete(cc.states, r)
		}
	case ControlStop:
		if r != "" {
			cc.states[r] = StateStopped
		} else if c := l.campaigns[e.Campaign]; c != nil {
			c.Stopped = true
		}
	case ControlAdd:
		cc.added[r] = req.Config
	case ControlNote:
		cc.notes[r] = append(cc.notes[r], OperatorNote{Seq: e.Seq, At: e.At, Text: req.Text})
	}
}

// stateLocked is a researcher's state: stopped when the campaign is.
func (l *Lab) stateLocked(campaign, researcher string) string {
	if c := l.campaigns[campaign]; c != nil && c.Stopped {
		return StateStopped
	}
	if cc := l.control[campaign]; cc != nil && cc.states[researcher] != "" {
		return cc.states[researcher]
	}
	return StateRunning
}

// hasTokenLocked reports whether a researcher has (or had) a token in the
// campaign.
func (l *Lab) hasTokenLocked(campaign, researcher string) bool {
	for _, tok := range l.tokens {
		if tok.Role == RoleResearcher && tok.Campaign == campaign && tok.Researcher == researcher {
			return true
		}
	}
	return false
}

// Control records an operator action on a campaign (admin). A refused
// request stores nothing.
func (l *Lab) Control(ctx context.Context, campaign string, req ControlRequest) (*ControlAck, error) {
	bad := func(format string, args ...any) error {
		return publicErr(400, "invalid_control", fmt.Sprintf(format, args...))
	}
	known := false
	for _, a := range controlActions {
		known = known || a == req.Action
	}
	if !known {
		return nil, bad("action %q: use %s", clip(req.Action), strings.Join(controlActions, ", "))
	}
	if len(req.Text) > MaxControlText || !utf8.ValidString(req.Text) {
		return nil, bad("text: give UTF-8 of at most %d bytes (16 KiB); this one is %d bytes", MaxControlText, len(req.Text))
	}
	if req.Action == ControlNote && strings.TrimSpace(req.Text) == "" {
		return nil, bad("a note needs text")
	}
	if c := bytes.TrimSpace(req.Config); len(c) == 0 || bytes.Equal(c, []byte("null")) {
		req.Config = nil
	} else {
		var buf bytes.Buffer
		switch {
		case req.Action != ControlAdd:
			return nil, bad("config goes with the add action only")
		case c[0] != '{' || json.Compact(&buf, c) != nil:
			return nil, bad("config must be a JSON object")
		case buf.Len() > MaxControlConfig:
			return nil, bad("config is %d bytes: the limit is %d (1 MiB)", buf.Len(), MaxControlConfig)
		}
		req.Config = buf.Bytes()
	}
	if req.Action == ControlAdd {
		if err := testbed.ValidateName(req.Researcher); err != nil {
			return nil, publicErr(400, "invalid_researcher", "researcher name: use 1-64 lower-case letters, digits, '.', '_' or '-'")
		}
	}
	body, err := marshalRaw(req)
	if err != nil {
		return nil, err
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.campaigns[campaign]
	if c == nil {
		return nil, unknownCampaign(campaign)
	}
	cc := l.controlLocked(campaign)
	switch req.Action {
	case ControlAdd:
		if _, ok := cc.added[req.Researcher]; ok || l.hasTokenLocked(campaign, req.Researcher) {
			return nil, publicErr(409, "researcher_exists", fmt.Sprintf("researcher %q is already in campaign %q", req.Researcher, campaign))
		}
		if c.Stopped {
			return nil, publicErr(409, "campaign_stopped", fmt.Sprintf("campaign %q is stopped: no researcher can be added", campaign))
		}
	case ControlStop:
		if req.Researcher == "" {
			break // the whole campaign
		}
		fallthrough
	default:
		if req.Researcher == "" || !l.hasTokenLocked(campaign, req.Researcher) {
			return nil, publicErr(404, "unknown_researcher", fmt.Sprintf("%s needs a researcher with a token in campaign %q; %q has none", req.Action, campaign, req.Researcher))
		}
		if req.Action == ControlPause || req.Action == ControlResume {
			if c.Stopped {
				return nil, publicErr(409, "campaign_stopped", fmt.Sprintf("campaign %q is stopped: stop is final", campaign))
			}
			if cc.states[req.Researcher] == StateStopped {
				return nil, publicErr(409, "researcher_stopped", fmt.Sprintf("researcher %q is stopped: stop is final", req.Researcher))
			}
		}
	}
	evs, err := l.append(ctx, store.Input{Kind: evControl, Actor: "admin", Campaign: campaign, Body: body})
	if err != nil {
		return nil, err
	}
	l.applyLocked(evs[0])
	return &ControlAck{Seq: evs[0].Seq, At: evs[0].At}, nil
}

// ControlEvents returns a campaign's control events with seq > since, in
// order, at most MaxControlPage of them (admin).
func (l *Lab) ControlEvents(campaign string, since int64) ([]ControlEvent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.campaigns[campaign] == nil {
		return nil, unknownCampaign(campaign)
	}
	out := []ControlEvent{}
	if cc := l.control[campaign]; cc != nil {
		i := sort.Search(len(cc.events), func(i int) bool { return cc.events[i].Seq > since })
		out = append(out, cc.events[i:min(len(cc.events), i+MaxControlPage)]...)
	}
	return out, nil
}

// MyControl is a researcher's control state and the notes to them with
// seq > since (at most MaxControlPage).
func (l *Lab) MyControl(id *Identity, since int64) (*ControlState, error) {
	if id.Role != RoleResearcher {
		return nil, publicErr(403, "forbidden", "GET /v1/control is a researcher's; admins read GET /v1/campaigns/{id}/control")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.campaigns[id.Campaign]
	if c == nil {
		return nil, publicErr(404, "unknown_campaign", "the token's campaign does not exist")
	}
	st := &ControlState{State: l.stateLocked(id.Campaign, id.Researcher), CampaignStopped: c.Stopped, Notes: []OperatorNote{}, Next: since}
	if cc := l.control[id.Campaign]; cc != nil {
		notes := cc.notes[id.Researcher]
		i := sort.Search(len(notes), func(i int) bool { return notes[i].Seq > since })
		st.Notes = append(st.Notes, notes[i:min(len(notes), i+MaxControlPage)]...)
		if len(st.Notes) > 0 {
			st.Next = st.Notes[len(st.Notes)-1].Seq
		}
	}
	return st, nil
}

// HTTP handlers.

func (l *Lab) handleControl(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	var req ControlRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return l.Control(r.Context(), r.PathValue("id"), req)
}

func (l *Lab) handleControlEvents(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	since, err := queryInt(r, "since")
	if err != nil {
		return nil, err
	}
	evs, err := l.ControlEvents(r.PathValue("id"), since)
	if err != nil {
		return nil, err
	}
	return map[string]any{"events": evs}, nil
}

func (l *Lab) handleMyControl(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
	since, err := queryInt(r, "since")
	if err != nil {
		return nil, err
	}
	return l.MyControl(id, since)
}
