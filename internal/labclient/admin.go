package labclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The calls a campaign supervisor (aar run) makes: campaigns with their
// spec, researcher tokens, operator control, the admin's listings of
// campaigns and submissions, and the campaign's ledger export (admin
// token), and the poll of a researcher's control state (researcher token).

// QuotaSpec is a campaign's submission quota (0 = unlimited; both 0: the
// lab's default for the policy).
type QuotaSpec struct {
	PerResearcherPerHour int `json:"per_researcher_per_hour"`
	PerCampaignPerHour   int `json:"per_campaign_per_hour"`
}

// CampaignRequest creates a campaign. Spec, when set, is the campaign file
// (a JSON object of at most 1 MiB compacted); the lab stores it compacted
// with its SHA-256.
type CampaignRequest struct {
	ID      string          `json:"id"`
	Testbed string          `json:"testbed"`
	Policy  string          `json:"policy,omitempty"`
	Quota   *QuotaSpec      `json:"quota,omitempty"`
	Spec    json.RawMessage `json:"spec,omitempty"`
}

// CampaignInfo is a campaign as an admin lists it. SpecSHA256 is the
// SHA-256 (hex) of Spec's bytes (the spec compacted). Researchers are those
// with a token in the campaign and those added by an "add" control event,
// sorted by name (empty from CreateCampaign).
type CampaignInfo struct {
	ID          string           `json:"id"`
	Testbed     string           `json:"testbed"`
	Policy      string           `json:"policy"`
	Quota       QuotaSpec        `json:"quota"`
	Created     time.Time        `json:"created"`
	Spec        json.RawMessage  `json:"spec"`
	SpecSHA256  string           `json:"spec_sha256"`
	Stopped     bool             `json:"stopped"`
	Researchers []ResearcherInfo `json:"researchers"`
}

// ResearcherInfo is one researcher of a campaign: State is running, paused
// or stopped; Submissions counts accepted submissions; BestFeedbackPGR is
// the best released overall feedback PGR mean among them (nil: none).
type ResearcherInfo struct {
	Name            string   `json:"name"`
	State           string   `json:"state"`
	Submissions     int      `json:"submissions"`
	BestFeedbackPGR *float64 `json:"best_feedback_pgr"`
	Spend           Spend    `json:"spend"`
}

// Control actions and researcher states.
const (
	ControlPause  = "pause"
	ControlResume = "resume"
	ControlStop   = "stop"
	ControlAdd    = "add"
	ControlNote   = "note"

	StateRunning = "running"
	StatePaused  = "paused"
	StateStopped = "stopped"
)

// ControlRequest is an operator action: pause, resume or stop a
// researcher (stop with no researcher stops the campaign; stop is final),
// add a researcher with the supervisor's Config for it (a JSON object), or
// leave a researcher a note (Text, at most 16 KiB).
type ControlRequest struct {
	Action     string          `json:"action"`
	Researcher string          `json:"researcher,omitempty"`
	Text       string          `json:"text,omitempty"`
	Config     json.RawMessage `json:"config,omitempty"`
}

// ControlEvent is a recorded operator action.
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

// ControlState is a researcher's control state: State (stopped when the
// campaign is), the notes after the cursor given, and Next, the cursor
// for the next poll.
type ControlState struct {
	State           string         `json:"state"`
	CampaignStopped bool           `json:"campaign_stopped"`
	Notes           []OperatorNote `json:"notes"`
	Next            int64          `json:"next"`
}

// Summary is a mean with its standard error over N seeds.
type Summary struct {
	Mean float64 `json:"mean"`
	SE   float64 `json:"se"`
	N    int     `json:"n"`
}

// CellInfo is one cell of a submission's full report.
type CellInfo struct {
	Split    string   `json:"split"`
	Group    string   `json:"group"`
	Rows     int      `json:"rows"`
	Accuracy *Summary `json:"accuracy"`
	PGR      *Summary `json:"pgr"`
}

// SubmissionInfo is a submission as an admin lists it: Seeds is the count
// of seeds, Flags the probe flags as stored, Feedback what the researcher
// was shown, Cells the full report (feedback, holdout, sealed).
type SubmissionInfo struct {
	ID         string          `json:"id"`
	Researcher string          `json:"researcher"`
	Snapshot   string          `json:"snapshot"`
	Note       string          `json:"note"`
	Review     string          `json:"review"`
	At         time.Time       `json:"at"`
	Seeds      int             `json:"seeds"`
	Flags      json.RawMessage `json:"flags"`
	Feedback   json.RawMessage `json:"feedback"`
	Cells      []CellInfo      `json:"cells"`
	// Verification is the board mark: verified, flagged, unverifiable or
	// unverified; Verify the latest verification's summary.
	Verification string       `json:"verification"`
	Verify       *VerifyBrief `json:"verify,omitempty"`
}

// VerifyFlag is a cheat flag a verification check raised.
type VerifyFlag struct {
	Kind   string `json:"kind"`
	Check  string `json:"check"`
	Reason string `json:"reason"`
}

// VerifyBrief is a verification as a submission list shows it.
type VerifyBrief struct {
	ID       string       `json:"id"`
	Verdict  string       `json:"verdict"`
	Flags    []VerifyFlag `json:"flags,omitempty"`
	Labels   []string     `json:"labels,omitempty"`
	Sealed   *Summary     `json:"sealed_pgr,omitempty"`
	SealedLo *float64     `json:"sealed_pgr_lo,omitempty"`
	SealedHi *float64     `json:"sealed_pgr_hi,omitempty"`
	Claimed  *float64     `json:"claimed_pgr,omitempty"`
	Summary  []string     `json:"summary,omitempty"`
}

// VerifyCheck is one check of a verification.
type VerifyCheck struct {
	Check   string         `json:"check"`
	Status  string         `json:"status"`
	Summary string         `json:"summary"`
	Figures map[string]any `json:"figures,omitempty"`
	Flags   []VerifyFlag   `json:"flags,omitempty"`
	Labels  []string       `json:"labels,omitempty"`
	Seconds float64        `json:"seconds"`
}

// Verification is a finished verification (POST /v1/verify).
type Verification struct {
	ID         string        `json:"id"`
	Subject    string        `json:"subject"`
	Submission string        `json:"submission,omitempty"`
	Snapshot   string        `json:"snapshot,omitempty"`
	Campaign   string        `json:"campaign"`
	Researcher string        `json:"researcher,omitempty"`
	Testbed    string        `json:"testbed"`
	Method     string        `json:"method,omitempty"`
	Verdict    string        `json:"verdict"`
	Flags      []VerifyFlag  `json:"flags,omitempty"`
	Labels     []string      `json:"labels,omitempty"`
	Sealed     *Summary      `json:"sealed_pgr,omitempty"`
	SealedLo   *float64      `json:"sealed_pgr_lo,omitempty"`
	SealedHi   *float64      `json:"sealed_pgr_hi,omitempty"`
	Claimed    *float64      `json:"claimed_pgr,omitempty"`
	Checks     []VerifyCheck `json:"checks"`
	Seconds    float64       `json:"seconds"`
}

// Verify asks the lab to re-run and check a submission's (or snapshot's)
// method (admin); it waits as long as ctx allows, not the client's usual
// two minutes.
func (c *Client) Verify(ctx context.Context, subject string) (*Verification, error) {
	long := *c
	hc := *c.http
	hc.Timeout = 0
	long.http = &hc
	var v Verification
	if _, err := long.Do(ctx, "POST", "/v1/verify", map[string]string{"subject": subject}, &v, nil); err != nil {
		return nil, err
	}
	return &v, nil
}

// TopResults are a campaign's k best result findings' submissions by
// feedback PGR (admin), the ones verified when it ends.
func (c *Client) TopResults(ctx context.Context, campaign string, k int) ([]string, error) {
	var out struct {
		Submissions []string `json:"submissions"`
	}
	_, err := c.Do(ctx, "GET", "/v1/campaigns/"+url.PathEscape(campaign)+"/top-results?k="+strconv.Itoa(k), nil, &out, nil)
	return out.Submissions, err
}

// Verifications lists a campaign's latest verifications (admin).
func (c *Client) Verifications(ctx context.Context, campaign string) ([]Verification, error) {
	var out []Verification
	_, err := c.Do(ctx, "GET", "/v1/verifications?campaign="+url.QueryEscape(campaign), nil, &out, nil)
	return out, err
}

// CreateCampaign creates a campaign (admin). The spec is sent as given
// (compacted, never re-escaped), so its SHA-256 is that of json.Compact
// over the caller's bytes.
func (c *Client) CreateCampaign(ctx context.Context, r CampaignRequest) (CampaignInfo, error) {
	var out CampaignInfo
	err := c.postRaw(ctx, "/v1/campaigns", r, &out)
	return out, err
}

// postRaw posts a JSON body encoded without HTML escaping, so raw JSON it
// carries (a spec, a config) reaches the lab byte for byte, and decodes
// the answer into out.
func (c *Client) postRaw(ctx context.Context, path string, body, out any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return err
	}
	rc, _, err := c.DoRaw(ctx, "POST", path, "application/json", &buf)
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("lab answer: %w", err)
	}
	return nil
}

// CreateToken makes a researcher token for a campaign (admin); the lab
// shows it once.
func (c *Client) CreateToken(ctx context.Context, researcher, campaign string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	if _, err := c.Do(ctx, "POST", "/v1/tokens", map[string]string{"researcher": researcher, "campaign": campaign}, &out, nil); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", errors.New("lab answer to a token request holds no token")
	}
	return out.Token, nil
}

// Control records an operator action on a campaign (admin) and returns its
// ledger seq.
func (c *Client) Control(ctx context.Context, campaign string, r ControlRequest) (int64, error) {
	var out struct {
		Seq int64 `json:"seq"`
	}
	err := c.postRaw(ctx, "/v1/campaigns/"+url.PathEscape(campaign)+"/control", r, &out)
	return out.Seq, err
}

// ControlEvents returns every control event of a campaign with seq > since,
// in order, reading the lab's pages of 1000 (admin).
func (c *Client) ControlEvents(ctx context.Context, campaign string, since int64) ([]ControlEvent, error) {
	out := []ControlEvent{}
	for {
		var page struct {
			Events []ControlEvent `json:"events"`
		}
		path := "/v1/campaigns/" + url.PathEscape(campaign) + "/control?since=" + strconv.FormatInt(since, 10)
		if _, err := c.Do(ctx, "GET", path, nil, &page, nil); err != nil {
			return nil, err
		}
		out = append(out, page.Events...)
		if len(page.Events) < maxControlPage {
			return out, nil
		}
		since = page.Events[len(page.Events)-1].Seq
	}
}

// maxControlPage is the lab's page of control events.
const maxControlPage = 1000

// MyControl returns the caller's control state and the notes to them with
// seq > since (a researcher token).
func (c *Client) MyControl(ctx context.Context, since int64) (ControlState, error) {
	var out ControlState
	_, err := c.Do(ctx, "GET", "/v1/control?since="+strconv.FormatInt(since, 10), nil, &out, nil)
	return out, err
}

// Campaigns lists every campaign, oldest first (admin).
func (c *Client) Campaigns(ctx context.Context) ([]CampaignInfo, error) {
	var out struct {
		Campaigns []CampaignInfo `json:"campaigns"`
	}
	_, err := c.Do(ctx, "GET", "/v1/campaigns", nil, &out, nil)
	return out.Campaigns, err
}

// Campaign returns one campaign (admin).
func (c *Client) Campaign(ctx context.Context, id string) (CampaignInfo, error) {
	var out CampaignInfo
	_, err := c.Do(ctx, "GET", "/v1/campaigns/"+url.PathEscape(id), nil, &out, nil)
	return out, err
}

// CampaignSubmissions lists a campaign's accepted submissions in ledger
// order with their full reports (admin).
func (c *Client) CampaignSubmissions(ctx context.Context, id string) ([]SubmissionInfo, error) {
	var out struct {
		Submissions []SubmissionInfo `json:"submissions"`
	}
	_, err := c.Do(ctx, "GET", "/v1/campaigns/"+url.PathEscape(id)+"/submissions", nil, &out, nil)
	return out.Submissions, err
}

// ExportEvents copies a campaign's ledger events with seq > since to w as
// NDJSON, one event a line: {seq, at, kind, actor, campaign, body, hash}
// (hash in hex) (admin). Only ctx bounds it, not the client's timeout.
func (c *Client) ExportEvents(ctx context.Context, id string, since int64, w io.Writer) error {
	path := "/v1/campaigns/" + url.PathEscape(id) + "/events?since=" + strconv.FormatInt(since, 10)
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, RetryAfter: resp.Header.Get("Retry-After")}
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export campaign %s events: %w", id, err)
	}
	return nil
}

// PostFindingIdem is PostFinding with an Idempotency-Key (at most 128
// characters): a retry with the same key and finding returns the stored
// finding; the same key with another finding is refused (409
// idempotency_conflict).
func (c *Client) PostFindingIdem(ctx context.Context, f any, key string) (json.RawMessage, error) {
	var out json.RawMessage
	h := map[string]string{}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	_, err := c.Do(ctx, "POST", "/v1/findings", f, &out, h)
	return out, err
}
