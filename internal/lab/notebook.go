package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aar-lab/aar/internal/store"
)

// evNotebook is an entry of a researcher's notebook: their memory across
// sessions.
const evNotebook = "notebook"

// MaxNotebookText bounds one notebook entry.
const MaxNotebookText = 64 << 10

// NotebookEntry is one entry of a researcher's notebook.
type NotebookEntry struct {
	At   time.Time `json:"at"`
	Text string    `json:"text"`
	Seq  int64     `json:"seq"`
}

// applyNotebookLocked indexes a notebook ledger event (live or replayed).
func (l *Lab) applyNotebookLocked(e store.Event) {
	var b struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(e.Body, &b) != nil {
		return
	}
	k := researcherKey(e.Campaign, e.Actor)
	l.notebooks[k] = append(l.notebooks[k], NotebookEntry{At: e.At, Text: b.Text, Seq: e.Seq})
}

// AppendNotebook adds an entry to the researcher's notebook.
func (l *Lab) AppendNotebook(ctx context.Context, id *Identity, text string) (*NotebookEntry, error) {
	if id.Role != RoleResearcher {
		return nil, publicErr(403, "forbidden", "notebooks are written with researcher tokens")
	}
	if strings.TrimSpace(text) == "" || len(text) > MaxNotebookText || !utf8.ValidString(text) {
		return nil, publicErr(400, "invalid_notebook", fmt.Sprintf("give UTF-8 text of 1-%d bytes (64 KiB); this entry is %d bytes", MaxNotebookText, len(text)))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	evs, err := l.append(ctx, store.Input{Kind: evNotebook, Actor: id.Researcher, Campaign: id.Campaign, Body: map[string]string{"text": text}})
	if err != nil {
		return nil, err
	}
	l.applyLocked(evs[0])
	nb := l.notebooks[researcherKey(id.Campaign, id.Researcher)]
	e := nb[len(nb)-1]
	return &e, nil
}

// Notebook returns a researcher's notebook, oldest entry first.
func (l *Lab) Notebook(id *Identity, campaign, researcher string) ([]NotebookEntry, error) {
	campaign, researcher, err := l.transcriptOwner(id, campaign, researcher)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]NotebookEntry{}, l.notebooks[researcherKey(campaign, researcher)]...), nil
}

func (l *Lab) handleAppendNotebook(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
	var req struct {
		Text string `json:"text"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return l.AppendNotebook(r.Context(), id, req.Text)
}

func (l *Lab) handleNotebook(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
	q := r.URL.Query()
	entries, err := l.Notebook(id, q.Get("campaign"), q.Get("researcher"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"entries": entries}, nil
}
