package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxEvent bounds one server-sent event from an upstream.
const maxEvent = 16 << 20

var errEventTooLarge = errors.New("an event of the upstream's stream is over 16 MiB")

// sseReader splits a text/event-stream into events, keeping each event's
// bytes as received so they can be passed on unchanged.
type sseReader struct {
	r   *bufio.Reader
	max int
}

// sseEvent is one event: its raw bytes (through the blank line that ends
// it) and its data lines joined by "\n".
type sseEvent struct {
	raw     []byte
	data    []byte
	hasData bool
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next reads the next event. At the end of the stream it returns what was
// left (perhaps an event without its blank line) with io.EOF.
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadBytes('\n')
		ev.raw = append(ev.raw, line...)
		if len(ev.raw) > s.max {
			return ev, errEventTooLarge
		}
		t := bytes.TrimRight(line, "\r\n")
		if err != nil {
			if len(t) > 0 {
				ev.field(t)
			}
			return ev, err
		}
		if len(t) == 0 {
			return ev, nil
		}
		ev.field(t)
	}
}

// field reads one line of an event; only data lines matter here.
func (ev *sseEvent) field(line []byte) {
	v, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return
	}
	v = bytes.TrimPrefix(v, []byte(" "))
	if ev.hasData {
		ev.data = append(ev.data, '\n')
	}
	ev.data = append(ev.data, v...)
	ev.hasData = true
}
