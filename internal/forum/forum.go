// Package forum owns the researchers' shared findings: typed posts (result,
// hypothesis, insight, error) with their method family, metrics, config and,
// for results, a method card; comments; one vote per researcher per finding;
// full-text search; and paging by cursor. The rules a finding must meet
// (a result cites a 5-seed submission and a snapshot) are checked by the lab,
// which alone can see submissions; this package stores and finds.
//
// Backends live in forum/sqlite (FTS5) and forum/postgres (full-text search)
// and pass one contract suite (forum/forumtest). Findings never hold labels.
package forum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Finding types.
const (
	TypeResult     = "result"
	TypeHypothesis = "hypothesis"
	TypeInsight    = "insight"
	TypeError      = "error"
)

// Types lists the finding types.
var Types = []string{TypeResult, TypeHypothesis, TypeInsight, TypeError}

// Families are the study's eleven method families.
var Families = []string{
	"self-training", "ensemble", "distillation", "data filtering", "confidence weighting",
	"loss function", "unsupervised elicitation", "curriculum", "model internals", "evolutionary", "other",
}

// MethodCard explains a result's method so people can follow it.
type MethodCard struct {
	Summary    string      `json:"summary"`
	Pseudocode string      `json:"pseudocode"`
	Components []Component `json:"components"`
	// Inputs names what the method uses: any of "weak labels", "strong
	// representation", "test inputs".
	Inputs []string `json:"inputs"`
}

// Component is one part of a method and the ablation showing it matters.
type Component struct {
	Name     string `json:"name"`
	Ablation string `json:"ablation"`
}

// Finding is one forum post.
type Finding struct {
	ID         string          `json:"id"`
	Seq        int64           `json:"seq"` // cursor: strictly increasing per store
	Campaign   string          `json:"campaign"`
	Author     string          `json:"author"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Body       string          `json:"body"` // markdown
	Family     string          `json:"family"`
	Metrics    json.RawMessage `json:"metrics,omitempty"`
	Config     json.RawMessage `json:"config,omitempty"`
	Worked     *bool           `json:"worked,omitempty"`
	Submission string          `json:"submission,omitempty"`
	Snapshot   string          `json:"snapshot,omitempty"`
	Card       *MethodCard     `json:"card,omitempty"`
	At         time.Time       `json:"at"`
	Score      int             `json:"score"` // up votes − down votes
	Comments   int             `json:"comments"`
}

// Comment is a reply to a finding.
type Comment struct {
	ID      string    `json:"id"`
	Finding string    `json:"finding"`
	Author  string    `json:"author"`
	Body    string    `json:"body"`
	At      time.Time `json:"at"`
}

// Page is a slice of findings and the cursor to ask for the next.
type Page struct {
	Findings []Finding `json:"findings"`
	Next     int64     `json:"next"` // pass as since; equal to since when nothing is new
}

// Errors a store returns.
var (
	ErrNotFound  = errors.New("forum: not found")
	ErrDuplicate = errors.New("forum: already exists")
)

// Store keeps findings, comments and votes of every campaign.
type Store interface {
	// Add stores a new finding (ID set by the caller, unique) and returns it
	// with Seq assigned.
	Add(ctx context.Context, f Finding) (Finding, error)
	// Get returns a finding of a campaign with its Score and Comments.
	Get(ctx context.Context, campaign, id string) (Finding, []Comment, error)
	// List returns up to limit findings of a campaign with Seq > since, in
	// Seq order.
	List(ctx context.Context, campaign string, since int64, limit int) (Page, error)
	// Search returns up to limit findings of a campaign matching a
	// full-text query over title and body, best first.
	Search(ctx context.Context, campaign, query string, limit int) ([]Finding, error)
	// Comment adds a comment to a finding of the campaign.
	Comment(ctx context.Context, campaign string, c Comment) (Comment, error)
	// Vote records a researcher's vote (+1 or −1) on a finding; a second
	// vote by the same researcher on the same finding is ErrDuplicate.
	Vote(ctx context.Context, campaign, finding, voter string, value int) error
	Close() error
}

// PrepareAdd readies a finding for a backend's insert: it checks the id,
// campaign and JSON fields, stamps the time (now when unset; UTC to the
// microsecond, which both backends keep), zeroes the derived counts, and
// returns the method card as JSON (nil without one).
func PrepareAdd(f *Finding, now time.Time) (card []byte, err error) {
	if f.ID == "" || f.Campaign == "" {
		return nil, fmt.Errorf("add finding %q: id and campaign are required", f.ID)
	}
	if len(f.Metrics) > 0 && !json.Valid(f.Metrics) {
		return nil, fmt.Errorf("add finding %s: metrics are not JSON", f.ID)
	}
	if len(f.Config) > 0 && !json.Valid(f.Config) {
		return nil, fmt.Errorf("add finding %s: config is not JSON", f.ID)
	}
	if f.Card != nil {
		if card, err = json.Marshal(f.Card); err != nil {
			return nil, fmt.Errorf("add finding %s: method card: %w", f.ID, err)
		}
	}
	if f.At.IsZero() {
		f.At = now
	}
	f.At = f.At.UTC().Truncate(time.Microsecond)
	f.Score, f.Comments = 0, 0
	return card, nil
}

// NullText is NULL (nil) for an empty value, else its text, for optional
// JSON columns.
func NullText(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// ReleasedPGR reads a result's overall PGR from its metrics: the figure the
// lab wrote into metrics.released.pgr_overall when it accepted the result,
// else the researcher's own metrics.pgr (0 when neither is there).
func ReleasedPGR(metrics json.RawMessage) float64 {
	var m struct {
		PGR      float64 `json:"pgr"`
		Released struct {
			Overall *struct {
				Mean float64 `json:"mean"`
			} `json:"pgr_overall"`
		} `json:"released"`
	}
	_ = json.Unmarshal(metrics, &m)
	if m.Released.Overall != nil {
		return m.Released.Overall.Mean
	}
	return m.PGR
}
