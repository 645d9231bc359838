package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aar-lab/aar/internal/forum"
)

// Route is one entry of the lab's single route table: method, path,
// required role, handler and a line for the OpenAPI document.
type Route struct {
	Method  string
	Path    string
	Role    string
	Summary string
	Handle  func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error)
	// Body is the POST body's media type: "" for application/json, or
	// "application/gzip" (snapshot archives).
	Body string
}

// raw is a non-JSON response body.
type raw struct {
	contentType string
	body        io.Reader
	closer      io.Closer
}

// stream is a response body written as it is produced (an NDJSON export);
// an error after the first byte can only be logged.
type stream struct {
	contentType string
	write       func(w io.Writer) error
}

// existing answers a POST that created nothing: a retry (same
// Idempotency-Key) or a repeat (the same snapshot) gets 200 with the
// earlier result instead of 201.
type existing struct{ v any }

// Routes is the lab's API, sorted by path then method.
func (l *Lab) Routes() []Route {
	rs := []Route{
		{"GET", "/healthz", RolePublic, "liveness", func(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
			return map[string]string{"status": "ok"}, nil
		}, ""},
		{"GET", "/v1/openapi.json", RolePublic, "this API's OpenAPI document", func(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
			return l.OpenAPI(), nil
		}, ""},
		{"POST", "/v1/submissions", RoleResearcher, "submit predictions (one or several seeds); Idempotency-Key makes retries safe", l.handleSubmit, ""},
		{"POST", "/v1/validate", RoleResearcher, "check predictions (format, ids, classes) without scoring or counting them", l.handleValidate, ""},
		{"GET", "/v1/submissions/{id}", RoleResearcher, "one submission (researchers: their own, as released)", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			return l.GetSubmission(id, r.PathValue("id"))
		}, ""},
		{"GET", "/v1/leaderboard", RoleResearcher, "best released PGR per researcher (admins: ?campaign=ID, with holdout, sealed and flags)", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			return l.Leaderboard(r.Context(), id, r.URL.Query().Get("campaign"))
		}, ""},
		{"POST", "/v1/campaigns", RoleAdmin, "create a campaign {id, testbed, policy, quota, spec}", l.handleCampaign, ""},
		{"GET", "/v1/campaigns", RoleAdmin, "every campaign with its researchers' state, submissions, best released PGR and spend, oldest first", l.handleCampaigns, ""},
		{"GET", "/v1/campaigns/{id}", RoleAdmin, "one campaign with its spec, stop state and researchers", l.handleCampaignInfo, ""},
		{"POST", "/v1/campaigns/{id}/control", RoleAdmin, "pause, resume or stop a researcher (stop without one: the campaign), add a researcher {config}, or leave a note {action, researcher, text, config}", l.handleControl, ""},
		{"GET", "/v1/campaigns/{id}/control", RoleAdmin, "the campaign's control events after a cursor (?since=SEQ; 1000 a page)", l.handleControlEvents, ""},
		{"GET", "/v1/campaigns/{id}/submissions", RoleAdmin, "every accepted submission with its full report's cells (no predictions), in ledger order", l.handleCampaignSubmissions, ""},
		{"GET", "/v1/campaigns/{id}/events", RoleAdmin, "the campaign's ledger events as NDJSON (?since=SEQ&limit=N)", l.handleExportEvents, ""},
		{"GET", "/v1/control", RoleResearcher, "your control state and operator notes after a cursor (?since=SEQ)", l.handleMyControl, ""},
		{"POST", "/v1/tokens", RoleAdmin, "create a researcher token {researcher, campaign}", l.handleToken, ""},
		{"DELETE", "/v1/tokens/{hash}", RoleAdmin, "revoke a token (by its SHA-256 or itself)", func(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
			return map[string]bool{"revoked": true}, l.RevokeToken(r.Context(), r.PathValue("hash"))
		}, ""},
		{"POST", "/v1/reviews", RoleAdmin, "clear or disqualify a flagged submission {submission, decision, note}", l.handleReview, ""},
		{"POST", "/v1/verify", RoleAdmin, "re-run a submission's (or snapshot's) method in fresh sandboxes and check it {subject}; answers the verification", l.handleVerify, ""},
		{"GET", "/v1/campaigns/{id}/top-results", RoleAdmin, "the submissions of the campaign's k best result findings by feedback PGR (?k=3), the ones verified when it ends", func(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
			k, _ := strconv.Atoi(r.URL.Query().Get("k"))
			if k <= 0 {
				k = 3
			}
			subs, err := l.TopResults(r.Context(), r.PathValue("id"), min(k, 100))
			if subs == nil {
				subs = []string{}
			}
			return map[string]any{"submissions": subs}, err
		}, ""},
		{"GET", "/v1/verifications", RoleAdmin, "the latest verification of each submission and snapshot (?campaign=ID), newest first", func(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
			return l.Verifications(r.URL.Query().Get("campaign")), nil
		}, ""},
		{"GET", "/v1/verifications/{id}", RoleAdmin, "a submission's or snapshot's latest verification", func(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
			if v := l.VerificationOf(r.PathValue("id")); v != nil {
				return v, nil
			}
			return nil, publicErr(404, "not_found", "no verification of "+r.PathValue("id")+": run aar verify "+r.PathValue("id"))
		}, ""},
		{"GET", "/v1/ledger/head", RoleAdmin, "the ledger head", func(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
			return map[string]string{"head": l.Head(r.Context())}, nil
		}, ""},
		{"POST", "/v1/findings", RoleResearcher, "post a finding (result, hypothesis, insight, error); Idempotency-Key makes retries safe", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			var f forum.Finding
			if err := decode(r, &f); err != nil {
				return nil, err
			}
			stored, replayed, err := l.PostFindingIdem(r.Context(), id, f, r.Header.Get("Idempotency-Key"))
			if replayed {
				return existing{stored}, err
			}
			return stored, err
		}, ""},
		{"GET", "/v1/findings", RoleResearcher, "the campaign's findings after a cursor (?since=SEQ&limit=N; admins: &campaign=ID)", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			q := r.URL.Query()
			since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
			limit, _ := strconv.Atoi(q.Get("limit"))
			if limit <= 0 {
				limit = 100
			}
			return l.ListFindings(r.Context(), id, q.Get("campaign"), since, limit)
		}, ""},
		{"GET", "/v1/findings/search", RoleResearcher, "full-text search of the campaign's findings (?q=...&limit=N)", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			q := r.URL.Query()
			limit, _ := strconv.Atoi(q.Get("limit"))
			if limit <= 0 {
				limit = 20
			}
			return l.SearchFindings(r.Context(), id, q.Get("campaign"), q.Get("q"), limit)
		}, ""},
		{"GET", "/v1/findings/{id}", RoleResearcher, "a finding with its comments", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			return l.GetFinding(r.Context(), id, r.URL.Query().Get("campaign"), r.PathValue("id"))
		}, ""},
		{"POST", "/v1/findings/{id}/comments", RoleResearcher, "comment on a finding {body}", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			var req struct {
				Body string `json:"body"`
			}
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			return l.CommentFinding(r.Context(), id, r.PathValue("id"), req.Body)
		}, ""},
		{"POST", "/v1/findings/{id}/votes", RoleResearcher, "vote on a finding {value: 1|-1}, once", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			var req struct {
				Value int `json:"value"`
			}
			if err := decode(r, &req); err != nil {
				return nil, err
			}
			if err := l.VoteFinding(r.Context(), id, r.PathValue("id"), req.Value); err != nil {
				return nil, err
			}
			return map[string]any{"finding": r.PathValue("id"), "vote": req.Value}, nil
		}, ""},
		{"POST", "/v1/snapshots", RoleResearcher, "push a workspace snapshot (body: tar.gz; ?parent=ID); the same tree and parent again answers the existing snapshot with 200", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			m, dup, err := l.pushSnapshot(r.Context(), id, r.Body, r.URL.Query().Get("parent"))
			if dup {
				return existing{m}, err
			}
			return m, err
		}, "application/gzip"},
		{"GET", "/v1/snapshots/{id}", RoleResearcher, "a snapshot's metadata (your campaign's)", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			return l.snapshotFor(id, r.PathValue("id"))
		}, ""},
		{"GET", "/v1/public-view", RoleResearcher, "the campaign testbed's public view as a tar.gz (what a sandbox holds at /data; admins: ?campaign=ID)", l.handlePublicView, ""},
		{"GET", "/v1/snapshots/{id}/archive", RoleResearcher, "a snapshot's canonical tar.gz", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			rc, err := l.SnapshotArchive(id, r.PathValue("id"))
			if err != nil {
				return nil, err
			}
			return raw{contentType: "application/gzip", body: rc, closer: rc}, nil
		}, ""},
		{"GET", "/v1/snapshots/{id}/log", RoleResearcher, "a snapshot and its ancestors, newest first", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			return l.SnapshotLog(id, r.PathValue("id"))
		}, ""},
		{"POST", "/v1/transcripts", RoleResearcher, "append 1-500 events to your transcript {events: [{session, type, at?, data?, usage?, cost_usd?, cpu_seconds?}]}; answers their ledger seqs", l.handleAppendTranscript, ""},
		{"GET", "/v1/transcripts", RoleResearcher, "page through a transcript (?session=S&after=POS&limit=N; admins: &campaign=ID&researcher=NAME)", l.handleTranscript, ""},
		{"POST", "/v1/notebook", RoleResearcher, "append an entry to your notebook {text}", l.handleAppendNotebook, ""},
		{"GET", "/v1/notebook", RoleResearcher, "a notebook, oldest entry first (admins: ?campaign=ID&researcher=NAME)", l.handleNotebook, ""},
		{"GET", "/v1/spend", RoleResearcher, "tokens, cost, CPU, model and tool calls from the transcript (admins: ?campaign=ID[&researcher=NAME])", l.handleSpend, ""},
		{"GET", "/v1/snapshots/diff", RoleResearcher, "unified diff of two snapshots' text files (?a=ID&b=ID)", func(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
			d, err := l.SnapshotDiff(id, r.URL.Query().Get("a"), r.URL.Query().Get("b"))
			if err != nil {
				return nil, err
			}
			return raw{contentType: "text/x-diff; charset=utf-8", body: strings.NewReader(d)}, nil
		}, ""},
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Path != rs[j].Path {
			return rs[i].Path < rs[j].Path
		}
		return rs[i].Method < rs[j].Method
	})
	return rs
}

// Handler returns the lab's HTTP handler.
func (l *Lab) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range l.Routes() {
		mux.HandleFunc(rt.Method+" "+rt.Path, l.wrap(rt))
	}
	mux.HandleFunc("/mcp", l.mounted(&l.mcp, "the lab's MCP server"))
	mux.HandleFunc("/mcp/", l.mounted(&l.mcp, "the lab's MCP server"))
	mux.HandleFunc("/v1/proxy/", l.mounted(&l.proxy, "the metering model proxy"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if web := l.web.Load(); web != nil && !strings.HasPrefix(r.URL.Path, "/v1/") {
			(*web).ServeHTTP(w, r)
			return
		}
		l.writeError(w, r, publicErr(404, "not_found", fmt.Sprintf("no route %s %s (see /v1/openapi.json)", r.Method, r.URL.Path)))
	})
	return mux
}

// SetWeb mounts the dashboard: every path outside /v1 and /healthz goes to h.
func (l *Lab) SetWeb(h http.Handler) { l.web.Store(&h) }

// SetMCP mounts the MCP server at /mcp (streamable HTTP; on TCP and on the
// lab's Unix socket alike). The handler authenticates its own requests.
func (l *Lab) SetMCP(h http.Handler) { l.mcp.Store(&h) }

// SetProxy mounts the metering model proxy under /v1/proxy/. The handler
// authenticates its own requests (virtual keys).
func (l *Lab) SetProxy(h http.Handler) { l.proxy.Store(&h) }

// mounted serves a handler set later (SetMCP, SetProxy), or 503.
func (l *Lab) mounted(p *atomic.Pointer[http.Handler], what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h := p.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		l.writeError(w, r, publicErr(503, "not_configured", what+" is not set up in this lab"))
	}
}

func (l *Lab) wrap(rt Route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var id *Identity
		if rt.Role != RolePublic {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			id = l.Authenticate(strings.TrimSpace(tok))
			if !ok || id == nil {
				l.writeError(w, r, publicErr(401, "unauthorized", "missing, unknown or revoked token: send Authorization: Bearer <token>"))
				return
			}
			if rt.Role == RoleAdmin && id.Role != RoleAdmin {
				l.writeError(w, r, publicErr(403, "forbidden", "this route needs an admin token"))
				return
			}
		}
		if r.Method == http.MethodPost {
			want, limit := "application/json", l.cfg.MaxBody
			if rt.Body != "" {
				want, limit = rt.Body, l.cfg.MaxArchive
			}
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != want {
				l.writeError(w, r, publicErr(415, "unsupported_media_type", "send Content-Type: "+want))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		v, err := rt.Handle(w, r, id)
		if err != nil {
			l.writeError(w, r, err)
			return
		}
		if st, ok := v.(stream); ok {
			w.Header().Set("Content-Type", st.contentType)
			if h := l.Head(r.Context()); h != "" {
				w.Header().Set("X-Aar-Ledger-Head", h)
			}
			w.WriteHeader(http.StatusOK)
			if err := st.write(w); err != nil {
				l.log.Error("streamed response cut short", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			return
		}
		if rw, ok := v.(raw); ok {
			if rw.closer != nil {
				defer rw.closer.Close()
			}
			w.Header().Set("Content-Type", rw.contentType)
			if h := l.Head(r.Context()); h != "" {
				w.Header().Set("X-Aar-Ledger-Head", h)
			}
			io.Copy(w, rw.body)
			return
		}
		status := http.StatusOK
		if rt.Method == http.MethodPost && (rt.Path == "/v1/submissions" || rt.Path == "/v1/campaigns" || rt.Path == "/v1/tokens" || rt.Path == "/v1/snapshots" || rt.Path == "/v1/findings" ||
			rt.Path == "/v1/transcripts" || rt.Path == "/v1/notebook" || strings.HasSuffix(rt.Path, "/comments") || strings.HasSuffix(rt.Path, "/control")) {
			status = http.StatusCreated
			if sr, ok := v.(*SubmitResponse); ok && sr.Replayed {
				status = http.StatusOK
			}
		}
		if ex, ok := v.(existing); ok {
			v, status = ex.v, http.StatusOK
		}
		l.writeJSON(w, r, status, v)
		l.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status, "took", time.Since(start))
	}
}

func (l *Lab) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if h := l.Head(r.Context()); h != "" {
		w.Header().Set("X-Aar-Ledger-Head", h)
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (l *Lab) writeError(w http.ResponseWriter, r *http.Request, err error) {
	pe := asPublic(err)
	if pe.Status >= 500 {
		l.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if pe.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(pe.RetryAfter))
	}
	l.writeJSON(w, r, pe.Status, map[string]any{"error": map[string]string{"code": pe.Code, "message": pe.Message}})
}

// decode reads a JSON body into v, mapping size and syntax problems to
// public errors.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return publicErr(413, "body_too_large", fmt.Sprintf("the body is over the %d-byte limit", mbe.Limit))
		case errors.Is(err, io.EOF):
			return publicErr(400, "invalid_json", "empty body: send a JSON object")
		default:
			return publicErr(400, "invalid_json", "the body is not the expected JSON object: "+err.Error())
		}
	}
	return nil
}

func (l *Lab) handleSubmit(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
	var req SubmitRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return l.Submit(r.Context(), id, &req, r.Header.Get("Idempotency-Key"))
}

func (l *Lab) handleValidate(w http.ResponseWriter, r *http.Request, id *Identity) (any, error) {
	var req SubmitRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return l.Validate(r.Context(), id, &req)
}

func (l *Lab) handleCampaign(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	var c Campaign
	if err := decode(r, &c); err != nil {
		return nil, err
	}
	return l.CreateCampaign(r.Context(), c)
}

func (l *Lab) handleToken(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	var req struct {
		Researcher string `json:"researcher"`
		Campaign   string `json:"campaign"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	tok, err := l.CreateToken(r.Context(), req.Researcher, req.Campaign)
	if err != nil {
		return nil, err
	}
	return map[string]string{"token": tok, "researcher": req.Researcher, "campaign": req.Campaign}, nil
}

func (l *Lab) handleReview(w http.ResponseWriter, r *http.Request, _ *Identity) (any, error) {
	var req struct {
		Submission string `json:"submission"`
		Decision   string `json:"decision"`
		Note       string `json:"note"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := l.Review(r.Context(), req.Submission, req.Decision, req.Note); err != nil {
		return nil, err
	}
	return map[string]string{"submission": req.Submission, "review": req.Decision}, nil
}

// OpenAPI describes the routes (OpenAPI 3.1).
func (l *Lab) OpenAPI() map[string]any {
	paths := map[string]map[string]any{}
	for _, rt := range l.Routes() {
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		op := map[string]any{"summary": rt.Summary, "x-aar-role": rt.Role,
			"responses": map[string]any{"default": map[string]any{"description": "JSON; errors are {error: {code, message}}"}}}
		if rt.Role != RolePublic {
			op["security"] = []map[string][]string{{"bearer": {}}}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]string{"title": "aar lab API", "version": "v1"},
		"paths":   paths,
		"components": map[string]any{"securitySchemes": map[string]any{
			"bearer": map[string]string{"type": "http", "scheme": "bearer"}}},
	}
}

// Serve serves the API on a TCP address and, when socket is set, on a Unix
// socket (for sandboxes without a network) until ctx ends, then shuts down
// gracefully and signs a final checkpoint.
func (l *Lab) Serve(ctx context.Context, addr, socket string, ready func(tcp net.Addr)) error {
	srv := &http.Server{Handler: l.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(l.log.Handler(), slog.LevelWarn)}
	var lns []net.Listener
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	lns = append(lns, ln)
	if socket != "" {
		os.Remove(socket)
		uln, err := net.Listen("unix", socket)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s: %w", socket, err)
		}
		os.Chmod(socket, 0o666)
		lns = append(lns, uln)
	}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if cerr := l.Checkpoint(context.Background()); cerr != nil {
		l.log.Error("final checkpoint", "err", cerr)
	}
	return err
}
