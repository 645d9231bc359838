package lab

import (
	"errors"
	"fmt"

	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/testbed"
)

// PublicError is an error whose message is safe to show the caller: it
// names the problem and the fix, never a label. Status is the HTTP status
// and Code a stable, documented code.
type PublicError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds, for 429
}

func (e *PublicError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

func publicErr(status int, code, msg string) *PublicError {
	return &PublicError{Status: status, Code: code, Message: msg}
}

// asPublic maps an error to what the caller may see. Input errors (which
// name a file position and a fix, never row content) pass through; anything
// else becomes an opaque internal error, logged in full by the caller.
// AsPublic is the error as the API shows it: a PublicError as is, bad
// predictions as 400, an unknown testbed as 404, anything else as an
// opaque 500 (its detail stays in the lab's log). Other front ends of the
// lab (MCP) use it so their callers read the same messages as REST's.
func AsPublic(err error) *PublicError { return asPublic(err) }

func asPublic(err error) *PublicError {
	var pe *PublicError
	var ie *jsonl.InputError
	var ce *score.CoverageError
	var nf *testbed.NotFoundError
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &ie):
		return publicErr(400, "invalid_predictions", ie.Error())
	case errors.As(err, &ce):
		return publicErr(400, "incomplete_predictions", ce.Error())
	case errors.As(err, &nf):
		return publicErr(404, "unknown_testbed", nf.Error())
	}
	return publicErr(500, "internal", "the lab failed to handle the request; the operator has the details in the lab's log")
}
