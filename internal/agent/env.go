package agent

import (
	"context"
	"sync"

	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/sandbox"
)

// Env is what tools act on: the researcher's sandbox, its lab client and
// meter, and what the session remembers between calls (the last
// submission and snapshot, so a finding can cite them by default).
type Env struct {
	Sandbox    sandbox.Sandbox
	Lab        *labclient.Client
	Researcher string
	Testbed    string
	Meter      *Meter
	// Consult asks a stronger model setting one question (nil: no consult).
	Consult func(ctx context.Context, question string) (string, error)
	// Position returns the transcript position (ledger seq) of the tool
	// call being run, to link submissions and findings to it.
	Position func() int64

	mu             sync.Mutex
	lastSubmission string
	lastSubSeeds   int
	lastSnapshot   string
}

func (e *Env) setSubmission(id string, seeds int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastSubmission, e.lastSubSeeds = id, seeds
}

func (e *Env) setSnapshot(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastSnapshot = id
}

func (e *Env) last() (sub string, seeds int, snap string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastSubmission, e.lastSubSeeds, e.lastSnapshot
}

func (e *Env) position() int64 {
	if e.Position == nil {
		return 0
	}
	return e.Position()
}
