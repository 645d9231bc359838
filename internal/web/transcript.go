package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/aar-lab/aar/internal/lab"
)

// pageSize is how many transcript events one page shows: the first paint
// of any transcript, however long, costs one page.
const pageSize = 200

// eventRow is one transcript event as the page shows it.
type eventRow struct {
	lab.TranscriptEntry
	Title   string
	Body    string
	IsError bool
	Target  bool
}

func (s *Server) transcript(w http.ResponseWriter, r *http.Request, v viewer) {
	id, name := r.PathValue("id"), r.PathValue("name")
	if !v.Admin() && (id != v.Campaign || name != v.Researcher) {
		http.Error(w, "researchers read only their own transcript", http.StatusForbidden)
		return
	}
	q := lab.TranscriptQuery{Campaign: id, Researcher: name, Session: r.URL.Query().Get("session"), After: -1, Limit: pageSize}
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil {
			http.Error(w, "after: give a position", http.StatusBadRequest)
			return
		}
		q.After = n
	}
	var target int64
	if sq := r.URL.Query().Get("seq"); sq != "" {
		seq, err := strconv.ParseInt(sq, 10, 64)
		if err != nil {
			http.Error(w, "seq: give a ledger seq", http.StatusBadRequest)
			return
		}
		pos, err := s.posOfSeq(r, v, id, name, seq)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		target, q.After = seq, max(-1, pos-20)
	}
	page, err := s.lab.Transcript(r.Context(), v.Identity, q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rows := make([]eventRow, 0, len(page.Events))
	for _, e := range page.Events {
		row := describe(e)
		row.Target = e.Seq == target
		rows = append(rows, row)
	}
	prev := -2
	if q.After >= 0 {
		prev = max(-1, q.After-pageSize)
	}
	s.render(w, "transcript.html", map[string]any{"V": v, "Campaign": id, "Researcher": name, "Rows": rows, "Total": page.Total,
		"Next": page.Next, "Prev": prev, "Session": q.Session})
}

// posOfSeq finds the transcript position of a ledger seq by binary search
// over one-event pages (a few dozen reads for any length).
func (s *Server) posOfSeq(r *http.Request, v viewer, id, name string, seq int64) (int, error) {
	first, err := s.lab.Transcript(r.Context(), v.Identity, lab.TranscriptQuery{Campaign: id, Researcher: name, After: -1, Limit: 1})
	if err != nil {
		return 0, err
	}
	lo, hi := 0, first.Total-1
	for lo <= hi {
		mid := (lo + hi) / 2
		p, err := s.lab.Transcript(r.Context(), v.Identity, lab.TranscriptQuery{Campaign: id, Researcher: name, After: mid - 1, Limit: 1})
		if err != nil || len(p.Events) == 0 {
			return 0, fmt.Errorf("transcript position %d: %v", mid, err)
		}
		switch got := p.Events[0].Seq; {
		case got == seq:
			return mid, nil
		case got < seq:
			lo = mid + 1
		default:
			hi = mid - 1
		}
	}
	return 0, fmt.Errorf("ledger seq %d is not in %s's transcript", seq, name)
}

// describe turns an event into a title and a body to show.
func describe(e lab.TranscriptEntry) eventRow {
	row := eventRow{TranscriptEntry: e, Title: e.Type}
	var d map[string]any
	_ = json.Unmarshal(e.Data, &d)
	str := func(k string) string {
		if v, ok := d[k]; ok && v != nil {
			if s, ok := v.(string); ok {
				return s
			}
			return indentJSON(v)
		}
		return ""
	}
	switch e.Type {
	case "message":
		row.Title = "message · " + str("role")
		var texts []string
		if parts, ok := d["parts"].([]any); ok {
			for _, p := range parts {
				if m, ok := p.(map[string]any); ok {
					if t, _ := m["text"].(string); t != "" {
						texts = append(texts, t)
					}
				}
			}
		}
		row.Body = strings.Join(texts, "\n\n")
	case "tool_call":
		row.Title = "tool call · " + str("name")
		in := str("input")
		var pretty any
		if json.Unmarshal([]byte(in), &pretty) == nil {
			in = indentJSON(pretty)
		}
		row.Body = in
	case "tool_result":
		row.Title = "result · " + str("name")
		row.IsError = d["is_error"] == true
		row.Body = str("text")
		for _, k := range []string{"submission", "finding", "snapshot"} {
			if id := str(k); id != "" {
				row.Title += " · " + k + " " + id
			}
		}
	case "usage":
		if e.Usage != nil {
			row.Title = fmt.Sprintf("usage · %s", str("model"))
			row.Body = fmt.Sprintf("input %d, output %d, cache read %d, cache write %d tokens · $%.4f", e.Usage.InputTokens, e.Usage.OutputTokens,
				e.Usage.CacheReadTokens, e.Usage.CacheWriteTokens, e.CostUSD)
		}
	case "session":
		row.Title = "session " + e.Session
		row.Body = strings.TrimSpace(str("reason") + "\n\n" + str("system"))
	default:
		row.Body = indentJSON(d)
	}
	if len(row.Body) > 16<<10 {
		row.Body = row.Body[:16<<10] + fmt.Sprintf("\n[… %d more bytes]", len(row.Body)-16<<10)
	}
	return row
}

// indentJSON shows a value as indented JSON without escaping <, > and &
// (the page escapes it as HTML).
func indentJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimRight(b.String(), "\n")
}
