package labmcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/snapshot"
)

// DefaultLab is where a sandbox reaches the lab: its Unix socket.
const DefaultLab = "unix:///run/aar/lab.sock"

// DefaultWorkspace is a sandbox's workspace.
const DefaultWorkspace = "/workspace"

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	// Lab is the lab's address: http(s)://host:port or unix:///path
	// (default DefaultLab).
	Lab string
	// Token is the researcher's lab token (required).
	Token string
	// Workspace is the directory relative paths are resolved against and
	// push_workspace and submit_files pack by default (default
	// DefaultWorkspace).
	Workspace string
	// Version is announced in the MCP handshake (default "dev").
	Version string
	// Logger receives the SDK's diagnostics (default: discard).
	Logger *slog.Logger
	// ConnectTimeout bounds reaching the lab at start (default 30 s).
	ConnectTimeout time.Duration
}

// Proxy is the sandbox side of the lab's MCP server: an MCP server (served
// over stdio by `aar mcp`) that forwards every tool of the lab's MCP
// endpoint verbatim and adds the tools that need the sandbox's files.
type Proxy struct {
	cfg      ProxyConfig
	endpoint string
	rec      *recorder
	hc       *http.Client
	client   *mcp.Client
	server   *mcp.Server
	names    []string

	connMu sync.Mutex
	remote *mcp.ClientSession // guarded by connMu
	broken bool               // a call failed: reconnect before the next (guarded by connMu)

	mu       sync.Mutex
	lastID   string // the snapshot this proxy last pushed or pulled (guarded by mu)
	lastTree string // its tree hash (guarded by mu)
}

// Dial connects to the lab's MCP endpoint with the token, lists its tools
// and builds the local server. Its errors say what to fix: a missing
// token, a lab that cannot be reached, a token the lab refuses, a lab
// without an MCP endpoint.
func Dial(ctx context.Context, cfg ProxyConfig) (*Proxy, error) {
	if cfg.Token == "" {
		return nil, errors.New("no lab token: set AAR_TOKEN to your researcher token")
	}
	if cfg.Lab == "" {
		cfg.Lab = DefaultLab
	}
	if cfg.Workspace == "" {
		cfg.Workspace = DefaultWorkspace
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	endpoint, hc, rec, err := labHTTP(cfg.Lab, cfg.Token)
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, endpoint: endpoint, rec: rec, hc: hc,
		client: mcp.NewClient(&mcp.Implementation{Name: "aar-mcp", Version: cfg.Version}, &mcp.ClientOptions{Logger: cfg.Logger})}
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if p.remote, err = p.connect(cctx); err != nil {
		return nil, err
	}
	var tools []*mcp.Tool
	for t, err := range p.remote.Tools(cctx, nil) {
		if err != nil {
			p.remote.Close()
			return nil, rec.explain(cfg.Lab, fmt.Errorf("list the lab's tools: %w", err))
		}
		tools = append(tools, t)
	}
	instructions := "The aar lab's tools, acting as your researcher token, and submit_files, push_workspace and pull_workspace, which read and write " + cfg.Workspace + "."
	if ir := p.remote.InitializeResult(); ir != nil && ir.Instructions != "" {
		instructions = ir.Instructions + " " + instructions
	}
	p.server = mcp.NewServer(&mcp.Implementation{Name: "aar-mcp", Title: "aar lab (sandbox)", Version: cfg.Version},
		&mcp.ServerOptions{Instructions: instructions, Logger: cfg.Logger})
	for _, t := range tools {
		if slices.Contains(localTools, t.Name) {
			continue // the local tool of that name serves it
		}
		p.server.AddTool(t, p.forward)
		p.names = append(p.names, t.Name)
	}
	p.addLocalTools()
	sort.Strings(p.names)
	return p, nil
}

// Server is the local MCP server.
func (p *Proxy) Server() *mcp.Server { return p.server }

// Tools names every tool the proxy serves, sorted.
func (p *Proxy) Tools() []string { return append([]string(nil), p.names...) }

// Run serves the local server on t (stdio for `aar mcp`) until the client
// goes away (nil) or ctx ends (nil: a signal is how a client stops it).
func (p *Proxy) Run(ctx context.Context, t mcp.Transport) error {
	err := p.server.Run(ctx, t)
	if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, mcp.ErrConnectionClosed) {
		return nil
	}
	return err
}

// Close ends the session with the lab.
func (p *Proxy) Close() error {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.remote == nil {
		return nil
	}
	err := p.remote.Close()
	p.remote = nil
	return err
}

// connect opens a session with the lab's MCP endpoint.
func (p *Proxy) connect(ctx context.Context) (*mcp.ClientSession, error) {
	cs, err := p.client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: p.endpoint, HTTPClient: p.hc, MaxRetries: 2}, nil)
	if err != nil {
		return nil, p.rec.explain(p.cfg.Lab, err)
	}
	return cs, nil
}

// callRemote calls one of the lab's tools. A call that fails breaks the
// session (the SDK's connection stops after a failed write), so the next
// call connects again first: the lab's endpoint is stateless, and a lab
// that restarted answers the new session. A failed call is not retried: it
// may have reached the lab.
func (p *Proxy) callRemote(ctx context.Context, params *mcp.CallToolParams) (*mcp.CallToolResult, error) {
	p.connMu.Lock()
	if p.remote == nil || p.broken {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
		cs, err := p.connect(cctx)
		cancel()
		if err != nil {
			p.connMu.Unlock()
			return nil, err
		}
		if p.remote != nil {
			p.remote.Close()
		}
		p.remote, p.broken = cs, false
	}
	cs := p.remote
	p.connMu.Unlock()
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		p.connMu.Lock()
		if p.remote == cs {
			p.broken = true
		}
		p.connMu.Unlock()
	}
	return res, err
}

// forward passes a tool call to the lab verbatim and its result back.
func (p *Proxy) forward(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := req.Params.Arguments
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	res, err := p.callRemote(ctx, &mcp.CallToolParams{Name: req.Params.Name, Arguments: args})
	if err != nil {
		return p.unreachable(err), nil
	}
	if !res.IsError {
		switch req.Params.Name {
		case "push_snapshot":
			var m lab.SnapshotMeta
			if decodeStructured(res, &m) == nil {
				p.remember(m)
			}
		case "pull_snapshot":
			var out struct {
				Snapshot lab.SnapshotMeta `json:"snapshot"`
			}
			if decodeStructured(res, &out) == nil {
				p.remember(out.Snapshot)
			}
		}
	}
	return res, nil
}

// unreachable is the tool error for a call the lab did not answer: a
// token it refuses (revoked meanwhile), or no lab.
func (p *Proxy) unreachable(err error) *mcp.CallToolResult {
	status, code := 502, "lab_unreachable"
	if p.rec.refused() {
		status, code = 401, "unauthorized"
	}
	var le *labError
	if !errors.As(err, &le) {
		err = p.rec.explain(p.cfg.Lab, err)
	}
	return toolError(&lab.PublicError{Status: status, Code: code, Message: err.Error()})
}

func (p *Proxy) remember(m lab.SnapshotMeta) {
	if m.ID == "" {
		return
	}
	p.mu.Lock()
	p.lastID, p.lastTree = m.ID, m.Tree
	p.mu.Unlock()
}

func (p *Proxy) last() (id, tree string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastID, p.lastTree
}

// call runs one of the lab's tools; a tool error comes back as the result
// to return, a success decoded into out.
func (p *Proxy) call(ctx context.Context, name string, args, out any) (*mcp.CallToolResult, error) {
	res, err := p.callRemote(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return p.unreachable(err), nil
	}
	if res.IsError {
		return res, nil
	}
	if err := decodeStructured(res, out); err != nil {
		return nil, fmt.Errorf("the lab's %s answer: %w", name, err)
	}
	return nil, nil
}

func decodeStructured(res *mcp.CallToolResult, out any) error {
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return err
	}
	if res.StructuredContent == nil {
		return errors.New("no structured content")
	}
	return json.Unmarshal(b, out)
}

// Local tools.

// localTools are the proxy's own tools, which need the sandbox's files.
var localTools = []string{"pull_workspace", "push_workspace", "submit_files"}

type submitFilesIn struct {
	Files       []string `json:"files" jsonschema:"predictions files, one per seed, named after the seed (preds/42.jsonl is seed 42): JSONL {\"id\", \"label\"} lines as aar w2s train writes, or a JSON array in the public test order; relative paths are under snapshot_dir"`
	SnapshotDir string   `json:"snapshot_dir,omitempty" jsonschema:"the workspace to snapshot with the submission (default: the workspace, /workspace in a sandbox)"`
	Note        string   `json:"note,omitempty" jsonschema:"what this submission is"`
	Parent      string   `json:"parent,omitempty" jsonschema:"the snapshot the workspace builds on (default: the last one pushed or pulled here)"`
}

type pushWorkspaceIn struct {
	Dir    string `json:"dir,omitempty" jsonschema:"the directory to snapshot (default: the workspace, /workspace in a sandbox)"`
	Parent string `json:"parent,omitempty" jsonschema:"the snapshot it builds on (default: the last one pushed or pulled here)"`
}

type pullWorkspaceIn struct {
	ID  string `json:"id" jsonschema:"the snapshot (snap_…), e.g. from a result finding"`
	Dir string `json:"dir" jsonschema:"a new or empty directory to unpack it into; relative paths are under the workspace"`
}

func (p *Proxy) addLocalTools() {
	addLocal(p, "pull_workspace", "Pull a snapshot into a directory",
		"Download a snapshot of your campaign (yours or another researcher's, e.g. the one behind a result) and unpack it into a new or empty directory, modes kept.",
		func(s *jsonschema.Schema) {}, p.pullWorkspace)
	addLocal(p, "push_workspace", "Snapshot a directory",
		"Pack a directory (default: the workspace) into a canonical snapshot and push it to the lab, child of the last snapshot pushed or pulled here; an unchanged tree answers that snapshot. Submissions and results should cite one.",
		func(s *jsonschema.Schema) {}, p.pushWorkspace)
	addLocal(p, "submit_files", "Submit prediction files",
		"Submit predictions files to the lab's scorer, one file per seed (the base name is the seed), with a snapshot of the workspace pushed first. The answer is what the campaign's feedback policy releases (feedback-split accuracy and PGR, mean ± SE over seeds), with the snapshot. Submissions are limited per hour; a result finding needs a submission with at least 5 seeds.",
		func(s *jsonschema.Schema) {
			s.Properties["files"].MinItems = jsonschema.Ptr(1)
			s.Properties["files"].MaxItems = jsonschema.Ptr(lab.MaxSeeds)
		}, p.submitFiles)
}

func addLocal[In any](p *Proxy, name, title, desc string, patch func(*jsonschema.Schema), run func(context.Context, In) (*mcp.CallToolResult, any, error)) {
	sch, err := jsonschema.For[In](nil)
	if err != nil {
		panic(fmt.Sprintf("labmcp: input schema of %s: %v", name, err))
	}
	patch(sch)
	open := false
	mcp.AddTool(p.server, &mcp.Tool{Name: name, Title: title, Description: desc, InputSchema: sch,
		Annotations: &mcp.ToolAnnotations{Title: title, OpenWorldHint: &open}},
		func(ctx context.Context, _ *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
			res, out, err := run(ctx, in)
			var le *localError
			if errors.As(err, &le) {
				return toolError(&lab.PublicError{Status: 400, Code: le.code, Message: le.msg}), nil, nil
			}
			return res, out, err
		})
	p.names = append(p.names, name)
}

// localError is a mistake the caller can fix (a bad path, a malformed
// file): a tool error, not a broken proxy.
type localError struct{ code, msg string }

func (e *localError) Error() string { return e.code + ": " + e.msg }

func mistake(code, format string, args ...any) error {
	return &localError{code: code, msg: fmt.Sprintf(format, args...)}
}

// resolve makes a path absolute under base.
func (p *Proxy) resolve(base, path string) string {
	if base == "" {
		base = p.cfg.Workspace
	} else if !filepath.IsAbs(base) {
		base = filepath.Join(p.cfg.Workspace, base)
	}
	if path == "" {
		return filepath.Clean(base)
	}
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(base, path)
}

// pushDir packs dir and pushes it (parent: the one given, else the last
// snapshot here); a tree unchanged since the last snapshot here, with no
// parent given, answers that snapshot without a push.
func (p *Proxy) pushDir(ctx context.Context, dir, parent string) (*mcp.CallToolResult, map[string]any, error) {
	t, archive, err := snapshot.Pack(dir, snapshot.Limits{})
	if err != nil {
		if snapshot.IsInputError(err) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return nil, nil, mistake("invalid_workspace", "%v", err)
		}
		return nil, nil, err
	}
	lastID, lastTree := p.last()
	if parent == "" && lastID != "" && lastTree == t.Hash {
		return nil, map[string]any{"id": lastID, "tree": t.Hash, "files": len(t.Files), "bytes": t.Bytes, "unchanged": true}, nil
	}
	if parent == "" {
		parent = lastID
	}
	var meta map[string]any
	res, err := p.call(ctx, "push_snapshot", map[string]any{"archive_base64": base64.StdEncoding.EncodeToString(archive), "parent": parent}, &meta)
	if res != nil || err != nil {
		return res, nil, err
	}
	id, _ := meta["id"].(string)
	tree, _ := meta["tree"].(string)
	p.remember(lab.SnapshotMeta{ID: id, Tree: tree})
	return nil, meta, nil
}

func (p *Proxy) pushWorkspace(ctx context.Context, in pushWorkspaceIn) (*mcp.CallToolResult, any, error) {
	res, meta, err := p.pushDir(ctx, p.resolve(in.Dir, ""), in.Parent)
	if res != nil || err != nil {
		return res, nil, err
	}
	return nil, meta, nil
}

func (p *Proxy) pullWorkspace(ctx context.Context, in pullWorkspaceIn) (*mcp.CallToolResult, any, error) {
	if in.ID == "" || in.Dir == "" {
		return nil, nil, mistake("invalid_request", "give the snapshot id and a new or empty directory to unpack it into")
	}
	var out struct {
		Snapshot      lab.SnapshotMeta `json:"snapshot"`
		ArchiveBase64 string           `json:"archive_base64"`
	}
	if res, err := p.call(ctx, "pull_snapshot", map[string]any{"id": in.ID}, &out); res != nil || err != nil {
		return res, nil, err
	}
	b, err := base64.StdEncoding.DecodeString(out.ArchiveBase64)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: the lab's archive is not base64: %w", in.ID, err)
	}
	t, err := snapshot.ReadArchive(bytes.NewReader(b), snapshot.Limits{})
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", in.ID, err)
	}
	dir := p.resolve("", in.Dir)
	if err := snapshot.Unpack(t, dir); err != nil {
		return nil, nil, mistake("invalid_directory", "%v", err)
	}
	p.remember(out.Snapshot)
	return nil, map[string]any{"snapshot": out.Snapshot, "dir": dir, "files": len(t.Files), "bytes": t.Bytes}, nil
}

func (p *Proxy) submitFiles(ctx context.Context, in submitFilesIn) (*mcp.CallToolResult, any, error) {
	if len(in.Files) == 0 {
		return nil, nil, mistake("invalid_request", "files is empty: give one predictions file per seed")
	}
	dir := p.resolve(in.SnapshotDir, "")
	seeds := map[string]json.RawMessage{}
	type file struct{ seed, path string }
	var files []file
	for _, f := range in.Files {
		path := p.resolve(dir, f)
		seed := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		if _, dup := seeds[seed]; dup {
			return nil, nil, mistake("invalid_request", "two files are seed %q: name each file after its seed (preds/42.jsonl)", seed)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, mistake("invalid_file", "cannot read %s: %v", f, errors.Unwrap(err))
		}
		raw, err := labclient.PredictionsJSON(b)
		if err != nil {
			return nil, nil, mistake("invalid_predictions", "%s: %v", f, err)
		}
		seeds[seed] = raw
		files = append(files, file{seed, path})
	}
	res, meta, err := p.pushDir(ctx, dir, in.Parent)
	if res != nil || err != nil {
		return res, nil, err
	}
	snap, _ := meta["id"].(string)
	// The key makes a retry (same files, same workspace) safe.
	sort.Slice(files, func(i, j int) bool { return files[i].seed < files[j].seed })
	h := sha256.New()
	h.Write([]byte(snap + "\x00"))
	for _, f := range files {
		h.Write([]byte(f.seed + "\x00"))
		h.Write(seeds[f.seed])
		h.Write([]byte{0})
	}
	args := map[string]any{"seeds": seeds, "snapshot": snap, "note": in.Note, "idempotency_key": "mcp-" + hex.EncodeToString(h.Sum(nil))[:32]}
	var sub map[string]any
	if res, err := p.call(ctx, "submit_predictions", args, &sub); res != nil || err != nil {
		return res, nil, err
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.seed
	}
	return nil, map[string]any{"submission": sub, "snapshot": meta, "seeds": names}, nil
}

// labHTTP builds the MCP endpoint URL and an HTTP client for a lab
// address; every request carries the token, and the recorder keeps what
// went wrong for the error Dial returns.
func labHTTP(addr, token string) (string, *http.Client, *recorder, error) {
	rec := &recorder{}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var endpoint string
	switch {
	case strings.HasPrefix(addr, "unix://"):
		path := strings.TrimPrefix(addr, "unix://")
		if path == "" {
			return "", nil, nil, fmt.Errorf("lab address %q: give the socket's path, unix:///run/aar/lab.sock", addr)
		}
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		endpoint = "http://lab/mcp"
	case strings.HasPrefix(addr, "http://"), strings.HasPrefix(addr, "https://"):
		endpoint = strings.TrimRight(addr, "/") + "/mcp"
	default:
		return "", nil, nil, fmt.Errorf("lab address %q: use http://host:port or unix:///path/to/lab.sock", addr)
	}
	rec.base, rec.token = tr, token
	return endpoint, &http.Client{Transport: rec}, rec, nil
}

// recorder adds the bearer token to every request and remembers the last
// transport error and refused response since the last success.
type recorder struct {
	base  http.RoundTripper
	token string

	mu      sync.Mutex
	dialErr error  // guarded by mu
	status  int    // guarded by mu
	body    string // guarded by mu
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.base.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.dialErr = err
		return nil, err
	}
	if resp.StatusCode < 300 {
		r.dialErr, r.status, r.body = nil, 0, ""
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusNotFound {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		r.status, r.body = resp.StatusCode, string(b)
	}
	return resp, nil
}

// refused says whether the lab's last answer was 401.
func (r *recorder) refused() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status == http.StatusUnauthorized
}

// labError says why the lab's MCP endpoint could not be used, and what to
// fix.
type labError struct {
	msg string
	err error
}

func (e *labError) Error() string { return e.msg }
func (e *labError) Unwrap() error { return e.err }

// explain turns a failure to reach the lab's MCP endpoint into what to fix.
func (r *recorder) explain(addr string, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var le struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(r.body), &le)
	msg := le.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(r.body)
	}
	switch {
	case r.status == http.StatusUnauthorized:
		msg = fmt.Sprintf("the lab at %s refused AAR_TOKEN (401 %s): use a live researcher token", addr, msg)
	case r.status == http.StatusServiceUnavailable && le.Error.Code == "not_configured":
		msg = fmt.Sprintf("the lab at %s has no MCP endpoint (%s): run a newer aar lab", addr, msg)
	case r.status == http.StatusNotFound:
		msg = fmt.Sprintf("the lab at %s has no MCP endpoint at /mcp (404): is AAR_LAB the lab's address?", addr)
	case r.dialErr != nil:
		msg = fmt.Sprintf("cannot reach the lab at %s: %v (is the lab running, and AAR_LAB its address or socket?)", addr, r.dialErr)
	default:
		msg = fmt.Sprintf("the lab's MCP endpoint at %s: %v", addr, err)
	}
	return &labError{msg: msg, err: err}
}
