// Package web is the lab's dashboard: server-rendered pages over the lab's
// own state (no CDN, no network; templates and assets embedded), for
// watching and steering campaigns and reading transcripts. It is mounted by
// the lab at / (lab.SetWeb); it reads labels only where the lab's admin
// figures do (holdout PGR), and only for admin sessions.
package web

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/lab"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Server serves the dashboard.
type Server struct {
	lab  *lab.Lab
	opt  Options
	tmpl *template.Template
	now  func() time.Time
	// SessionTTL bounds a login (default 12 h).
	SessionTTL time.Duration

	mu       sync.Mutex
	sessions map[string]*session

	verifyMu sync.Mutex
	running  map[string]bool // submissions being verified from the review page
}

// session is a logged-in browser: the token it logged in with (checked
// again on every request, so a revoked token ends the session) and the
// CSRF token every form must carry.
type session struct {
	token   string
	csrf    string
	expires time.Time
}

const cookieName = "aar_session"

// New returns the dashboard of l.
func New(l *lab.Lab, opt Options) (*Server, error) {
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard templates: %w", err)
	}
	return &Server{lab: l, opt: opt, tmpl: t, now: time.Now, SessionTTL: 12 * time.Hour, sessions: map[string]*session{}}, nil
}

// Handler routes the dashboard's pages.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.auth(s.logout))
	mux.HandleFunc("GET /{$}", s.auth(s.campaigns))
	mux.HandleFunc("GET /campaigns/new", s.auth(s.newCampaignPage))
	mux.HandleFunc("POST /campaigns", s.auth(s.start))
	mux.HandleFunc("GET /campaigns/{id}", s.auth(s.campaign))
	mux.HandleFunc("GET /campaigns/{id}/live", s.auth(s.live))
	mux.HandleFunc("GET /campaigns/{id}/stream", s.auth(s.stream))
	mux.HandleFunc("POST /campaigns/{id}/control", s.auth(s.control))
	mux.HandleFunc("GET /campaigns/{id}/researchers/{name}/transcript", s.auth(s.transcript))
	mux.HandleFunc("GET /campaigns/{id}/forum", s.auth(s.forumPage))
	mux.HandleFunc("GET /campaigns/{id}/forum/{fid}", s.auth(s.findingPage))
	mux.HandleFunc("POST /campaigns/{id}/forum/{fid}/comment", s.auth(s.comment))
	mux.HandleFunc("GET /campaigns/{id}/snapshots/{sid}", s.auth(s.snapshotPage))
	mux.HandleFunc("GET /campaigns/{id}/analysis", s.auth(s.analysisPage))
	mux.HandleFunc("GET /campaigns/{id}/review", s.auth(s.review))
	mux.HandleFunc("GET /campaigns/{id}/review/{sub}", s.auth(s.reviewItemPage))
	mux.HandleFunc("POST /campaigns/{id}/review/{sub}", s.auth(s.verdict))
	mux.HandleFunc("POST /campaigns/{id}/review/{sub}/verify", s.auth(s.verifyNow))
	return securityHeaders(mux)
}

// securityHeaders: no framing, no sniffing, and a content policy that
// allows only the dashboard's own scripts and styles.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// viewer is who a request speaks for.
type viewer struct {
	*lab.Identity
	CSRF string
}

func (v viewer) Admin() bool { return v.Role == lab.RoleAdmin }

// auth checks the session cookie (and, for POSTs, the CSRF token) and
// passes the viewer on; a missing or stale session goes to the login page.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request, viewer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		var sess *session
		if err == nil {
			s.mu.Lock()
			sess = s.sessions[c.Value]
			if sess != nil && s.now().After(sess.expires) {
				delete(s.sessions, c.Value)
				sess = nil
			}
			s.mu.Unlock()
		}
		var id *lab.Identity
		if sess != nil {
			id = s.lab.Authenticate(sess.token)
		}
		if id == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+urlEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(sess.csrf)) != 1 {
				http.Error(w, "the form's CSRF token is missing or wrong: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h(w, r, viewer{Identity: id, CSRF: sess.csrf})
	}
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, "login.html", map[string]any{"Next": safeNext(r.URL.Query().Get("next")), "Error": ""})
}

// login exchanges a token (admin or researcher) for a session cookie:
// HttpOnly, SameSite=Strict, Secure over TLS.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	next := safeNext(r.PostForm.Get("next"))
	if s.lab.Authenticate(tok) == nil {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, "login.html", map[string]any{"Next": next, "Error": "That token is not valid here (or was revoked)."})
		return
	}
	id := randomToken()
	s.mu.Lock()
	s.sessions[id] = &session{token: tok, csrf: randomToken(), expires: s.now().Add(s.SessionTTL)}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(s.SessionTTL.Seconds())})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ viewer) {
	if c, err := r.Cookie(cookieName); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect on this site.
func safeNext(n string) string {
	if n == "" || !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.Contains(n, "\\") {
		return "/"
	}
	return n
}

func urlEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "?", "%3F", "#", "%23", " ", "%20", "+", "%2B")
	return r.Replace(s)
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
	}
}
