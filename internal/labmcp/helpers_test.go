package labmcp_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	forumsqlite "github.com/aar-lab/aar/internal/forum/sqlite"
	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labmcp"
	"github.com/aar-lab/aar/internal/store/sqlite"
	"github.com/aar-lab/aar/internal/testbed"
)

const fixture = "../testbed/testdata/study"

// wantTools is every tool the lab's MCP server offers, sorted.
var wantTools = []string{
	"budget", "comment_finding", "leaderboard", "list_findings", "my_control", "notebook_append", "notebook_read",
	"pull_snapshot", "push_snapshot", "read_finding", "search_findings", "share_finding", "snapshot_diff",
	"snapshot_log", "submit_predictions", "validate_predictions", "vote_finding",
}

// env is a real lab (SQLite ledger and forum, the study fixture's chat
// testbed) with its MCP server, served on loopback TCP and a Unix socket.
type env struct {
	t      *testing.T
	lab    *lab.Lab
	admin  string
	alice  string // researcher of c1
	bob    string // researcher of c2
	tcp    string // http://127.0.0.1:PORT
	sock   string // the Unix socket's path
	public []testbed.Row
	stop   func() // stops serving (serve starts again; the socket stays)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	tbs, err := testbed.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(7)
	tb, err := tbs.Import(filepath.Join(fixture, "labeled_data", "chat"), testbed.ImportOptions{Name: "chat", Cache: filepath.Join(fixture, "cache_results"), SplitSeed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fs, err := forumsqlite.Open(ctx, filepath.Join(dir, "lab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	l, admin, err := lab.New(ctx, lab.Config{DataDir: dir, Ledger: db, Forum: fs})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, lab: l, admin: admin, public: tb.PublicTest()}
	for _, c := range []string{"c1", "c2"} {
		if _, err := l.CreateCampaign(ctx, lab.Campaign{ID: c, Testbed: "chat", Policy: "default"}); err != nil {
			t.Fatal(err)
		}
	}
	if e.alice, err = l.CreateToken(ctx, "alice", "c1"); err != nil {
		t.Fatal(err)
	}
	if e.bob, err = l.CreateToken(ctx, "bob", "c2"); err != nil {
		t.Fatal(err)
	}
	l.SetMCP(labmcp.New(l, nil).Handler())
	// A short socket path: sun_path holds 108 bytes.
	sdir, err := os.MkdirTemp("", "aarmcp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sdir) })
	e.sock = filepath.Join(sdir, "lab.sock")
	e.serve()
	t.Cleanup(func() { e.stop() })
	return e
}

// serve serves the lab on a new loopback port and on the socket.
func (e *env) serve() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan net.Addr, 1), make(chan error, 1)
	go func() { done <- e.lab.Serve(ctx, "127.0.0.1:0", e.sock, func(a net.Addr) { addrc <- a }) }()
	select {
	case a := <-addrc:
		e.tcp = "http://" + a.String()
		e.stop = func() { cancel(); <-done; e.stop = func() {} }
	case err := <-done:
		cancel()
		e.t.Fatalf("the lab did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		e.t.Fatal("the lab did not start")
	}
}

// preds is a prediction array in public order: row i gets f(i).
func (e *env) preds(f func(i int) int) []int {
	out := make([]int, len(e.public))
	for i := range e.public {
		out[i] = f(i)
	}
	return out
}

// id is the identity behind a token, as the lab sees it.
func (e *env) id(tok string) *lab.Identity {
	e.t.Helper()
	id := e.lab.Authenticate(tok)
	if id == nil {
		e.t.Fatalf("token %q is not live", tok[:8])
	}
	return id
}

// bearer adds a token to every request.
type bearer struct {
	base  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.base.RoundTrip(r)
}

// httpClient reaches the lab over "tcp" or "unix" with a token; it returns
// the MCP endpoint too.
func (e *env) httpClient(network, token string) (*http.Client, string) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	endpoint := e.tcp + "/mcp"
	if network == "unix" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.sock)
		}
		endpoint = "http://lab/mcp"
	}
	return &http.Client{Transport: bearer{tr, token}, Timeout: time.Minute}, endpoint
}

// connect opens an MCP session with the official Go SDK client over
// streamable HTTP.
func (e *env) connect(network, token string) (*mcp.ClientSession, error) {
	hc, endpoint := e.httpClient(network, token)
	c := mcp.NewClient(&mcp.Implementation{Name: "aar-test", Version: "v0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1}, nil)
	if err == nil {
		e.t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

func (e *env) mustConnect(network, token string) *mcp.ClientSession {
	e.t.Helper()
	cs, err := e.connect(network, token)
	if err != nil {
		e.t.Fatalf("connect over %s: %v", network, err)
	}
	return cs
}

// toolNames lists a session's tools.
func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// call calls a tool that must succeed and returns its structured content
// (checking the text content holds the same JSON).
func call(t *testing.T, cs *mcp.ClientSession, name string, args any) map[string]any {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error: %s", name, text(res))
	}
	out, ok := res.StructuredContent.(map[string]any)
	if !ok {
		t.Fatalf("%s: structured content is %T, want an object", name, res.StructuredContent)
	}
	var fromText map[string]any
	if err := json.Unmarshal([]byte(text(res)), &fromText); err != nil || !reflect.DeepEqual(fromText, out) {
		t.Fatalf("%s: the text content is not the structured content as JSON: %v\n%s", name, err, text(res))
	}
	return out
}

// callErr calls a tool that must fail and returns its error object.
func callErr(t *testing.T, cs *mcp.ClientSession, name string, args any) (code, msg string, status int) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !res.IsError {
		t.Fatalf("%s succeeded, want a tool error: %s", name, text(res))
	}
	var out struct {
		Error struct {
			Code    string  `json:"code"`
			Message string  `json:"message"`
			Status  float64 `json:"status"`
		} `json:"error"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil || out.Error.Code == "" {
		// A schema violation is the SDK's tool error, text only.
		return "", text(res), 0
	}
	if want := out.Error.Code + ": " + out.Error.Message; !strings.HasPrefix(text(res), want) {
		t.Errorf("%s: text %q does not start with %q", name, text(res), want)
	}
	return out.Error.Code, out.Error.Message, int(out.Error.Status)
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// sameJSON fails unless got (decoded JSON) equals want once encoded as JSON.
func sameJSON(t *testing.T, what string, got any, want any) {
	t.Helper()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var w any
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	var g any
	_ = json.Unmarshal(gb, &g)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s: the tool says\n%s\nthe lab says\n%s", what, gb, b)
	}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
