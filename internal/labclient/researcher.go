package labclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strconv"
	"time"
)

// The typed calls a researcher worker makes: its transcript, notebook and
// spend, and the leaderboard, forum, snapshot and validation routes the
// CLI also uses.

// Usage is a model call's token counts.
type Usage struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
}

// TranscriptEvent is one event of a researcher's transcript. Type is
// message, tool_call, tool_result, usage, note, stop or another name of at
// most 64 characters; Session at most 128. At zero: the lab stamps it.
// Data is a JSON object; the whole event must stay under 256 KiB (cap tool
// results before sending). The lab counts a "usage" event as a model call
// and a "tool_call" event as a tool call in the spend totals.
type TranscriptEvent struct {
	Session    string          `json:"session"`
	Type       string          `json:"type"`
	At         time.Time       `json:"at,omitzero"`
	Data       json.RawMessage `json:"data,omitempty"`
	Usage      *Usage          `json:"usage,omitempty"`
	CostUSD    float64         `json:"cost_usd,omitempty"`
	CPUSeconds float64         `json:"cpu_seconds,omitempty"`
}

// Limits the lab applies to transcripts.
const (
	MaxTranscriptBatch = 500       // events per AppendTranscript
	MaxTranscriptEvent = 256 << 10 // bytes per event's JSON
	MaxTranscriptPage  = 1000      // TranscriptQuery.Limit
	MaxNotebookText    = 64 << 10  // bytes per notebook entry
)

// TranscriptAck gives the ledger seqs an appended batch got.
type TranscriptAck struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
	Count int   `json:"count"`
}

// TranscriptEntry is a stored transcript event: Pos is its position in the
// researcher's transcript (0-based), Seq its ledger seq.
type TranscriptEntry struct {
	Pos int   `json:"pos"`
	Seq int64 `json:"seq"`
	TranscriptEvent
}

// TranscriptPage is a page of a transcript. Next, when not nil, is the
// After of the following page; Total counts the events matching the query.
type TranscriptPage struct {
	Events []TranscriptEntry `json:"events"`
	Next   *int              `json:"next"`
	Total  int               `json:"total"`
}

// TranscriptQuery selects a page: events with pos > After (nil: from the
// start), of Session when set, at most Limit (0: the lab's 200; at most
// 1000). Researchers read their own; admins set Campaign and Researcher.
type TranscriptQuery struct {
	Campaign   string
	Researcher string
	Session    string
	After      *int
	Limit      int
}

// NotebookEntry is one entry of a researcher's notebook.
type NotebookEntry struct {
	At   time.Time `json:"at"`
	Text string    `json:"text"`
	Seq  int64     `json:"seq"`
}

// Spend is what a researcher has used, from their transcript.
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

// CampaignSpend is a campaign's spend in total and per researcher (admin).
type CampaignSpend struct {
	Campaign    string  `json:"campaign"`
	Total       Spend   `json:"total"`
	Researchers []Spend `json:"researchers"`
}

// AppendTranscript appends 1-500 events to the caller's transcript in one
// ledger append, all or none.
func (c *Client) AppendTranscript(ctx context.Context, events []TranscriptEvent) (TranscriptAck, error) {
	var ack TranscriptAck
	_, err := c.Do(ctx, "POST", "/v1/transcripts", map[string]any{"events": events}, &ack, nil)
	return ack, err
}

// Transcript reads a page of a transcript.
func (c *Client) Transcript(ctx context.Context, q TranscriptQuery) (TranscriptPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"campaign": q.Campaign, "researcher": q.Researcher, "session": q.Session} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.After != nil {
		v.Set("after", strconv.Itoa(*q.After))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var p TranscriptPage
	_, err := c.Do(ctx, "GET", withQuery("/v1/transcripts", v), nil, &p, nil)
	return p, err
}

// AppendNotebook adds an entry (1 byte to 64 KiB of UTF-8) to the caller's
// notebook.
func (c *Client) AppendNotebook(ctx context.Context, text string) error {
	_, err := c.Do(ctx, "POST", "/v1/notebook", map[string]string{"text": text}, nil, nil)
	return err
}

// Notebook returns the caller's notebook, oldest entry first.
func (c *Client) Notebook(ctx context.Context) ([]NotebookEntry, error) {
	var out struct {
		Entries []NotebookEntry `json:"entries"`
	}
	_, err := c.Do(ctx, "GET", "/v1/notebook", nil, &out, nil)
	return out.Entries, err
}

// Spend returns the caller's totals (a researcher token).
func (c *Client) Spend(ctx context.Context) (Spend, error) {
	var s Spend
	_, err := c.Do(ctx, "GET", "/v1/spend", nil, &s, nil)
	return s, err
}

// CampaignSpend returns a campaign's spend (an admin token).
func (c *Client) CampaignSpend(ctx context.Context, campaign string) (CampaignSpend, error) {
	var s CampaignSpend
	_, err := c.Do(ctx, "GET", "/v1/spend?campaign="+url.QueryEscape(campaign), nil, &s, nil)
	return s, err
}

// Leaderboard returns the campaign's leaderboard as the lab sends it.
func (c *Client) Leaderboard(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	_, err := c.Do(ctx, "GET", "/v1/leaderboard", nil, &out, nil)
	return out, err
}

// PostFinding posts a finding (any JSON-encodable forum finding) and
// returns it as stored.
func (c *Client) PostFinding(ctx context.Context, f any) (json.RawMessage, error) {
	var out json.RawMessage
	_, err := c.Do(ctx, "POST", "/v1/findings", f, &out, nil)
	return out, err
}

// ListFindings returns the page of the campaign's findings after the
// cursor since (0: from the start); limit 0 is the lab's default.
func (c *Client) ListFindings(ctx context.Context, since int64, limit int) (json.RawMessage, error) {
	v := url.Values{"since": {strconv.FormatInt(since, 10)}}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out json.RawMessage
	_, err := c.Do(ctx, "GET", withQuery("/v1/findings", v), nil, &out, nil)
	return out, err
}

// SearchFindings runs a full-text query over the campaign's findings.
func (c *Client) SearchFindings(ctx context.Context, q string, limit int) (json.RawMessage, error) {
	v := url.Values{"q": {q}}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out json.RawMessage
	_, err := c.Do(ctx, "GET", withQuery("/v1/findings/search", v), nil, &out, nil)
	return out, err
}

// GetFinding returns a finding with its comments.
func (c *Client) GetFinding(ctx context.Context, id string) (json.RawMessage, error) {
	var out json.RawMessage
	_, err := c.Do(ctx, "GET", "/v1/findings/"+url.PathEscape(id), nil, &out, nil)
	return out, err
}

// PushSnapshot uploads a workspace archive (tar.gz, as snapshot.Pack makes
// it), child of parent (may be empty), and returns the snapshot's metadata.
func (c *Client) PushSnapshot(ctx context.Context, archive io.Reader, parent string) (json.RawMessage, error) {
	path := "/v1/snapshots"
	if parent != "" {
		path += "?parent=" + url.QueryEscape(parent)
	}
	body, _, err := c.DoRaw(ctx, "POST", path, "application/gzip", archive)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, errors.New("lab answer to a snapshot push is not JSON")
	}
	return b, nil
}

// PullSnapshot opens a snapshot's canonical tar.gz; the caller closes it.
func (c *Client) PullSnapshot(ctx context.Context, id string) (io.ReadCloser, error) {
	body, _, err := c.DoRaw(ctx, "GET", "/v1/snapshots/"+url.PathEscape(id)+"/archive", "", nil)
	return body, err
}

// Validate checks predictions (a submission body: {"predictions": ...} or
// {"seeds": ...}) without scoring or counting them.
func (c *Client) Validate(ctx context.Context, body any) (json.RawMessage, error) {
	var out json.RawMessage
	_, err := c.Do(ctx, "POST", "/v1/validate", body, &out, nil)
	return out, err
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// PublicView downloads the public view of the token's campaign testbed (a
// canonical tar.gz) and returns it with the testbed's name; the caller
// closes it.
func (c *Client) PublicView(ctx context.Context) (io.ReadCloser, string, error) {
	rc, h, err := c.DoRaw(ctx, "GET", "/v1/public-view", "", nil)
	if err != nil {
		return nil, "", err
	}
	return rc, h.Get("X-Aar-Testbed"), nil
}

// TranscriptEach pages through a transcript from q.After (nil: the start),
// calling fn for each event in order, at most MaxTranscriptPage a request.
func (c *Client) TranscriptEach(ctx context.Context, q TranscriptQuery, fn func(TranscriptEntry) error) error {
	q.Limit = MaxTranscriptPage
	for {
		page, err := c.Transcript(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			if err := fn(e); err != nil {
				return err
			}
		}
		if page.Next == nil {
			return nil
		}
		q.After = page.Next
	}
}
