package web

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/snapshot"
)

// snapshotPage shows a snapshot: its lineage, its file tree, one file
// (?file=PATH) and the diff against its parent or any other snapshot
// (?against=ID).
func (s *Server) snapshotPage(w http.ResponseWriter, r *http.Request, v viewer) {
	id, sid := r.PathValue("id"), r.PathValue("sid")
	if !campaignAllowed(w, v, id) {
		return
	}
	log, err := s.lab.SnapshotLog(v.Identity, sid)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	rc, err := s.lab.SnapshotArchive(v.Identity, sid)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	tree, err := snapshot.ReadArchive(rc, lab.PublicViewLimits)
	rc.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	q := r.URL.Query()
	data := map[string]any{"V": v, "Campaign": id, "ID": sid, "Log": log, "Files": tree.Files, "Bytes": tree.Bytes}
	if p := q.Get("file"); p != "" {
		for _, f := range tree.Files {
			if f.Path == p {
				body := string(f.Data)
				switch {
				case !utf8.ValidString(body) || strings.ContainsRune(body, 0):
					body = "(binary file)"
				case len(body) > 256<<10:
					body = body[:256<<10] + "\n[… cut at 256 KiB]"
				}
				data["File"], data["FileBody"] = p, body
			}
		}
	}
	against := q.Get("against")
	if against == "" && len(log) > 1 {
		against = log[1].ID
	}
	if against != "" {
		d, err := s.lab.SnapshotDiff(v.Identity, against, sid)
		if err != nil {
			data["DiffError"] = err.Error()
		} else {
			if len(d) > 512<<10 {
				d = d[:512<<10] + "\n[… cut at 512 KiB]"
			}
			data["Against"], data["Diff"] = against, d
		}
	}
	s.render(w, "snapshot.html", data)
}
