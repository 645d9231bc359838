package labmcp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/aar-lab/aar/internal/lab"
	"github.com/aar-lab/aar/internal/snapshot"
)

// ServerName is the implementation name the server announces.
const ServerName = "aar-lab"

// Options configures a Server. The zero value is usable.
type Options struct {
	// Logger receives internal errors behind a tool's "internal" answer
	// (default: discard).
	Logger *slog.Logger
	// Version is announced in the MCP handshake (default "dev").
	Version string
	// MaxRequestBytes bounds one HTTP request body (default: a snapshot
	// archive at the lab's 100 MiB limit, base64-encoded, plus 1 MiB).
	MaxRequestBytes int64
}

// MaxPredictionBytes bounds the predictions of one submit_predictions or
// validate_predictions call, as the REST API bounds a JSON body.
const MaxPredictionBytes = 20 << 20

// Server is the lab's MCP server.
type Server struct {
	lab   *lab.Lab
	log   *slog.Logger
	opts  Options
	mcp   *mcp.Server
	tools []ToolInfo
}

// ToolInfo describes one of the server's tools: its name and who may call
// it. Researcher-only tools answer an admin token with a forbidden tool
// error, as their REST routes answer 403; the others read the caller's own
// campaign, or for an admin the campaign (and researcher) it names.
type ToolInfo struct {
	Name           string
	ResearcherOnly bool
	ReadOnly       bool
}

// New builds the MCP server over a lab.
func New(l *lab.Lab, opts *Options) *Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = snapshot.DefaultLimits().MaxArchiveBytes/3*4 + 1<<20
	}
	s := &Server{lab: l, log: o.Logger, opts: o}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: ServerName, Title: "aar lab", Version: o.Version}, &mcp.ServerOptions{
		Instructions: "The aar lab: submit predictions for scoring, share and read findings, push and pull workspace snapshots, " +
			"keep a notebook, and read the leaderboard, your spend and operator notes. Every call acts as the token's researcher.",
		Logger: o.Logger,
	})
	s.addTools()
	return s
}

// Tools lists the server's tools, sorted by name.
func (s *Server) Tools() []ToolInfo { return append([]ToolInfo(nil), s.tools...) }

// MCP returns the underlying MCP server (for in-process transports).
func (s *Server) MCP() *mcp.Server { return s.mcp }

// identityKey carries the caller's identity in a request's context and in
// the MCP token info.
type identityKey struct{}

const tokenInfoIdentity = "aar.identity"

// Handler serves MCP over streamable HTTP. Every request must carry
// Authorization: Bearer <token> of a live lab token; anything else gets 401
// before the MCP layer reads it. The transport is stateless: each request
// stands alone and is authenticated anew, so a revoked token stops working
// at once and a lab restart breaks no client.
func (s *Server) Handler() http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{
		Stateless:           true,
		JSONResponse:        true,
		Logger:              s.log,
		MaxRequestBodyBytes: s.opts.MaxRequestBytes,
	})
	// The SDK's bearer middleware puts the token info where tool handlers
	// find it (CallToolRequest.Extra.TokenInfo); the identity was found
	// below, once per request.
	verify := func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		id, _ := r.Context().Value(identityKey{}).(*lab.Identity)
		if id == nil {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: userID(id), Scopes: []string{id.Role}, Extra: map[string]any{tokenInfoIdentity: id}}, nil
	}
	protected := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var id *lab.Identity
		if ok {
			id = s.lab.Authenticate(strings.TrimSpace(tok))
		}
		if id == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aar"`)
			writeHTTPError(w, http.StatusUnauthorized, "unauthorized", "missing, unknown or revoked token: send Authorization: Bearer <token>")
			return
		}
		protected.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

func userID(id *lab.Identity) string {
	if id.Role == lab.RoleAdmin {
		return "admin"
	}
	return "researcher:" + id.Campaign + "/" + id.Researcher
}

// writeHTTPError answers like the REST API: {"error": {"code", "message"}}.
func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// toolSpec is one row of the tool table.
type toolSpec struct {
	name, title, desc string
	researcherOnly    bool
	readOnly          bool
	// schema adjusts the input schema inferred from the input type.
	schema func(*jsonschema.Schema)
}

// addTool registers a typed tool: the input schema is inferred from In
// (json.RawMessage fields accept any JSON, refined by spec.schema), the
// caller's identity is checked against the tool's scope, and an error
// becomes a tool error carrying only its public message.
func addTool[In any](s *Server, spec toolSpec, run func(ctx context.Context, id *lab.Identity, in In) (any, error)) {
	sch, err := jsonschema.For[In](&jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
		reflect.TypeFor[json.RawMessage](): {},
	}})
	if err != nil {
		panic(fmt.Sprintf("labmcp: input schema of %s: %v", spec.name, err))
	}
	if spec.schema != nil {
		spec.schema(sch)
	}
	open := false
	t := &mcp.Tool{Name: spec.name, Title: spec.title, Description: spec.desc, InputSchema: sch,
		Annotations: &mcp.ToolAnnotations{Title: spec.title, ReadOnlyHint: spec.readOnly, OpenWorldHint: &open}}
	if !spec.readOnly {
		destructive := false
		t.Annotations.DestructiveHint = &destructive
	}
	mcp.AddTool(s.mcp, t, func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
		id := identityOf(req)
		if id == nil {
			return toolError(&lab.PublicError{Status: 401, Code: "unauthorized", Message: "no identity: send Authorization: Bearer <token>"}), nil, nil
		}
		if spec.researcherOnly && id.Role != lab.RoleResearcher {
			return toolError(&lab.PublicError{Status: 403, Code: "forbidden",
				Message: spec.name + " needs a researcher token; this is an " + id.Role + " token"}), nil, nil
		}
		out, err := run(ctx, id, in)
		if err != nil {
			pe := publicError(err)
			if pe.Status >= 500 {
				s.log.Error("mcp tool failed", "tool", spec.name, "role", id.Role, "campaign", id.Campaign, "researcher", id.Researcher, "err", err)
			}
			return toolError(pe), nil, nil
		}
		return nil, out, nil
	})
	s.tools = append(s.tools, ToolInfo{Name: spec.name, ResearcherOnly: spec.researcherOnly, ReadOnly: spec.readOnly})
}

func identityOf(req *mcp.CallToolRequest) *lab.Identity {
	if req == nil || req.Extra == nil || req.Extra.TokenInfo == nil {
		return nil
	}
	id, _ := req.Extra.TokenInfo.Extra[tokenInfoIdentity].(*lab.Identity)
	return id
}

// toolError is a tool result marked as an error: the text is "code:
// message" and the structured content {"error": {code, message, status,
// retry_after}}, the REST API's error with its HTTP status.
func toolError(pe *lab.PublicError) *mcp.CallToolResult {
	text := pe.Code + ": " + pe.Message
	e := map[string]any{"code": pe.Code, "message": pe.Message, "status": pe.Status}
	if pe.RetryAfter > 0 {
		text += " (retry after " + strconv.Itoa(pe.RetryAfter) + " s)"
		e["retry_after"] = pe.RetryAfter
	}
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: text}},
		StructuredContent: map[string]any{"error": e}}
}

// publicError maps an error to what the caller may see, as the REST API
// does: the lab's public errors and input errors (which name a position
// and a fix, never row content) pass; anything else is an opaque internal
// error, logged in full by the caller.
// publicError is the error as the REST API would show it.
func publicError(err error) *lab.PublicError { return lab.AsPublic(err) }

func badRequest(code, format string, args ...any) error {
	return &lab.PublicError{Status: 400, Code: code, Message: fmt.Sprintf(format, args...)}
}
