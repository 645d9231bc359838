package lab

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/store"
	"github.com/aar-lab/aar/internal/testbed"
)

// SubmissionPredictions reads an accepted submission's predictions back
// from its ledger event (the lab keeps them nowhere else), one per seed,
// with its testbed. It is for the lab's own admin reports, which compare a
// submission with a baseline on the holdout split; no route returns it.
func (l *Lab) SubmissionPredictions(ctx context.Context, subID string) ([]score.Predictions, *testbed.Testbed, error) {
	l.mu.Lock()
	s := l.submissions[subID]
	l.mu.Unlock()
	if s == nil {
		return nil, nil, publicErr(404, "not_found", "no such submission")
	}
	tb, err := l.testbedFor(s.Testbed)
	if err != nil {
		return nil, nil, err
	}
	var body []byte
	errFound := errors.New("found")
	err = l.ledger.ScanRange(ctx, s.Seq, s.Seq, func(e store.Event) error {
		body = e.Body
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return nil, nil, err
	}
	var ev struct {
		Predictions json.RawMessage `json:"predictions"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, nil, fmt.Errorf("submission %s: ledger event: %w", subID, err)
	}
	var canon map[string]string
	if err := json.Unmarshal(ev.Predictions, &canon); err != nil {
		return nil, nil, fmt.Errorf("submission %s: predictions: %w", subID, err)
	}
	public := tb.PublicTest()
	seeds := make([]string, 0, len(canon))
	for seed := range canon {
		seeds = append(seeds, seed)
	}
	sort.Strings(seeds)
	out := make([]score.Predictions, 0, len(seeds))
	for _, seed := range seeds {
		row, err := base64.StdEncoding.DecodeString(canon[seed])
		if err != nil || len(row) != len(public) {
			return nil, nil, fmt.Errorf("submission %s seed %s: %d predictions for %d public test rows", subID, seed, len(row), len(public))
		}
		p := score.Predictions{Seed: seed, Labels: make(map[string]int, len(public))}
		for i, r := range public {
			p.Labels[r.ID] = int(row[i])
		}
		out = append(out, p)
	}
	return out, tb, nil
}
