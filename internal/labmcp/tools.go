package labmcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/aar-lab/aar/internal/forum"
	"github.com/aar-lab/aar/internal/lab"
)

// The tool table: each tool is one REST route's operation, called as the
// token's identity. Sorted by name.

type submitIn struct {
	Seeds          map[string]json.RawMessage `json:"seeds" jsonschema:"predictions per seed: the seed's name (e.g. \"42\") → an array of class indexes in the public test.jsonl's order, or an array of {\"id\", \"label\"} objects; 1-16 seeds"`
	Snapshot       string                     `json:"snapshot,omitempty" jsonschema:"the snapshot (snap_…) of the code that made these predictions; a result finding needs one"`
	Note           string                     `json:"note,omitempty" jsonschema:"what this submission is"`
	IdempotencyKey string                     `json:"idempotency_key,omitempty" jsonschema:"makes a retry safe: the same key returns the first answer and is not counted again"`
}

type validateIn struct {
	Seeds map[string]json.RawMessage `json:"seeds" jsonschema:"predictions per seed, as submit_predictions takes them"`
}

type findingIn struct {
	Type           string            `json:"type" jsonschema:"result, hypothesis, insight or error"`
	Title          string            `json:"title" jsonschema:"1-200 characters"`
	Body           string            `json:"body" jsonschema:"markdown, at most 100 KiB"`
	Family         string            `json:"family" jsonschema:"the method family"`
	Worked         *bool             `json:"worked,omitempty" jsonschema:"whether it worked"`
	Submission     string            `json:"submission,omitempty" jsonschema:"a result cites a submission (sub_…) of this campaign with at least 5 seeds"`
	Snapshot       string            `json:"snapshot,omitempty" jsonschema:"the snapshot (snap_…) holding the code; a result needs one"`
	Metrics        json.RawMessage   `json:"metrics,omitempty" jsonschema:"a JSON object; a claimed \"pgr\" must agree with the submission's released PGR within 0.01"`
	Config         json.RawMessage   `json:"config,omitempty" jsonschema:"a JSON object: the configuration, so others can reproduce it"`
	Card           *forum.MethodCard `json:"card,omitempty" jsonschema:"a result's method card: summary, pseudocode, components (each with the ablation showing it matters) and inputs (weak labels, strong representation, test inputs)"`
	IdempotencyKey string            `json:"idempotency_key,omitempty" jsonschema:"makes a retry safe: the same key and finding return the stored finding"`
}

type searchIn struct {
	Query    string `json:"query" jsonschema:"words to search titles and bodies for"`
	Limit    int    `json:"limit,omitempty" jsonschema:"at most this many (default 20)"`
	Campaign string `json:"campaign,omitempty" jsonschema:"admins: the campaign to search"`
}

type listIn struct {
	Since    int64  `json:"since,omitempty" jsonschema:"the cursor: findings after it (0: from the start); pass back the answer's next"`
	Limit    int    `json:"limit,omitempty" jsonschema:"at most this many (default 100)"`
	Campaign string `json:"campaign,omitempty" jsonschema:"admins: the campaign to list"`
}

type findingRef struct {
	ID       string `json:"id" jsonschema:"the finding (fnd_…)"`
	Campaign string `json:"campaign,omitempty" jsonschema:"admins: the finding's campaign"`
}

type commentIn struct {
	ID   string `json:"id" jsonschema:"the finding (fnd_…)"`
	Body string `json:"body" jsonschema:"the comment, markdown"`
}

type voteIn struct {
	ID    string `json:"id" jsonschema:"the finding (fnd_…)"`
	Value int    `json:"value" jsonschema:"1 (up) or -1 (down); once per finding"`
}

type campaignIn struct {
	Campaign string `json:"campaign,omitempty" jsonschema:"admins: the campaign"`
}

type pushIn struct {
	ArchiveBase64 string `json:"archive_base64" jsonschema:"the workspace as a tar.gz (regular files only; aar snapshot push packs a canonical one), base64"`
	Parent        string `json:"parent,omitempty" jsonschema:"the snapshot this one builds on"`
}

type snapshotRef struct {
	ID string `json:"id" jsonschema:"the snapshot (snap_…)"`
}

type diffIn struct {
	A string `json:"a" jsonschema:"the old snapshot"`
	B string `json:"b" jsonschema:"the new snapshot"`
}

type notebookIn struct {
	Text string `json:"text" jsonschema:"the entry: 1 byte to 64 KiB of UTF-8"`
}

type ownerIn struct {
	Campaign   string `json:"campaign,omitempty" jsonschema:"admins: the campaign"`
	Researcher string `json:"researcher,omitempty" jsonschema:"admins: the researcher"`
}

type controlIn struct {
	Since int64 `json:"since,omitempty" jsonschema:"the cursor: notes after it; pass back the answer's next"`
}

// seedsSchema describes the values of a seeds object.
func seedsSchema(s *jsonschema.Schema) {
	s.Properties["seeds"].AdditionalProperties = &jsonschema.Schema{Type: "array",
		Description: "class indexes in public test order, or {\"id\", \"label\"} objects"}
	s.Properties["seeds"].MinProperties = jsonschema.Ptr(1)
	s.Properties["seeds"].MaxProperties = jsonschema.Ptr(lab.MaxSeeds)
}

func (s *Server) addTools() {
	l := s.lab
	addTool(s, toolSpec{name: "budget", title: "Your spend", readOnly: true,
		desc: "What you have used so far, from your transcript: input, output and cache tokens, cost_usd, cpu_seconds, model_calls, tool_calls, transcript_events, sessions. Admins name a campaign (and a researcher for one)."},
		func(ctx context.Context, id *lab.Identity, in ownerIn) (any, error) {
			if id.Role == lab.RoleAdmin && in.Researcher == "" {
				return l.CampaignSpendOf(id, in.Campaign)
			}
			return l.SpendOf(id, in.Campaign, in.Researcher)
		})
	addTool(s, toolSpec{name: "comment_finding", title: "Comment on a finding", researcherOnly: true,
		desc: "Comment on a finding of your campaign."},
		func(ctx context.Context, id *lab.Identity, in commentIn) (any, error) {
			return l.CommentFinding(ctx, id, in.ID, in.Body)
		})
	addTool(s, toolSpec{name: "leaderboard", title: "Leaderboard", readOnly: true,
		desc: "The campaign's leaderboard: the fixed weak and ceiling baselines, result findings ranked by their submission's released feedback PGR (each researcher's best and each method family's best), and each researcher's best single submission. Admins name the campaign and also see holdout and sealed PGR and flags."},
		func(ctx context.Context, id *lab.Identity, in campaignIn) (any, error) {
			return l.Leaderboard(ctx, id, in.Campaign)
		})
	addTool(s, toolSpec{name: "list_findings", title: "List findings", readOnly: true,
		desc: "Page through your campaign's findings, oldest first, after a cursor: {findings, next}; pass next back as since for the following page."},
		func(ctx context.Context, id *lab.Identity, in listIn) (any, error) {
			if in.Limit <= 0 {
				in.Limit = 100
			}
			return l.ListFindings(ctx, id, in.Campaign, in.Since, in.Limit)
		})
	addTool(s, toolSpec{name: "my_control", title: "Operator notes and state", researcherOnly: true, readOnly: true,
		desc: "Your control state (running, paused or stopped), whether the campaign is stopped, and the operator's notes to you after a cursor; pass next back as since."},
		func(ctx context.Context, id *lab.Identity, in controlIn) (any, error) {
			return l.MyControl(id, in.Since)
		})
	addTool(s, toolSpec{name: "notebook_append", title: "Append to your notebook", researcherOnly: true,
		desc: "Add an entry to your notebook, your memory across sessions (kept by the lab)."},
		func(ctx context.Context, id *lab.Identity, in notebookIn) (any, error) {
			return l.AppendNotebook(ctx, id, in.Text)
		})
	addTool(s, toolSpec{name: "notebook_read", title: "Read your notebook", readOnly: true,
		desc: "Your notebook, oldest entry first: {entries: [{at, text, seq}]}. Admins name the campaign and researcher."},
		func(ctx context.Context, id *lab.Identity, in ownerIn) (any, error) {
			entries, err := l.Notebook(id, in.Campaign, in.Researcher)
			if err != nil {
				return nil, err
			}
			return map[string]any{"entries": entries}, nil
		})
	addTool(s, toolSpec{name: "pull_snapshot", title: "Pull a snapshot", readOnly: true,
		desc: "A snapshot of your campaign (yours or another researcher's, e.g. the one behind a result) as its canonical tar.gz, base64, with its metadata. Inside a sandbox, aar mcp's pull_workspace unpacks one into a directory."},
		func(ctx context.Context, id *lab.Identity, in snapshotRef) (any, error) {
			log, err := l.SnapshotLog(id, in.ID)
			if err != nil {
				return nil, err
			}
			rc, err := l.SnapshotArchive(id, in.ID)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				return nil, fmt.Errorf("read snapshot %s: %w", in.ID, err)
			}
			return map[string]any{"snapshot": log[0], "bytes": len(b), "archive_base64": base64.StdEncoding.EncodeToString(b)}, nil
		})
	addTool(s, toolSpec{name: "push_snapshot", title: "Push a snapshot", researcherOnly: true,
		desc: "Store a workspace archive (tar.gz, base64) as a snapshot of your campaign, child of parent; the same tree and parent as one of your snapshots returns that snapshot. Inside a sandbox, aar mcp's push_workspace packs and pushes a directory."},
		func(ctx context.Context, id *lab.Identity, in pushIn) (any, error) {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(in.ArchiveBase64))
			if err != nil {
				return nil, badRequest("invalid_archive", "archive_base64 is not standard base64: %v", err)
			}
			return l.PushSnapshot(ctx, id, bytes.NewReader(b), in.Parent)
		})
	addTool(s, toolSpec{name: "read_finding", title: "Read a finding", readOnly: true,
		desc: "A finding of your campaign with its comments: {finding, comments}."},
		func(ctx context.Context, id *lab.Identity, in findingRef) (any, error) {
			return l.GetFinding(ctx, id, in.Campaign, in.ID)
		})
	addTool(s, toolSpec{name: "search_findings", title: "Search findings", readOnly: true,
		desc: "Full-text search of your campaign's findings (titles and bodies), best match first: {findings}."},
		func(ctx context.Context, id *lab.Identity, in searchIn) (any, error) {
			if in.Limit <= 0 {
				in.Limit = 20
			}
			fs, err := l.SearchFindings(ctx, id, in.Campaign, in.Query, in.Limit)
			if err != nil {
				return nil, err
			}
			if fs == nil {
				fs = []forum.Finding{}
			}
			return map[string]any{"findings": fs}, nil
		})
	addTool(s, toolSpec{name: "share_finding", title: "Share a finding", researcherOnly: true,
		desc: "Post a finding to your campaign's forum: a result (cites a submission with at least 5 seeds and a snapshot, and carries a method card; the lab records the submission's released figures in metrics.released), a hypothesis, an insight or an error.",
		schema: func(sch *jsonschema.Schema) {
			sch.Properties["type"].Enum = anys(forum.Types)
			sch.Properties["family"].Enum = anys(forum.Families)
			sch.Properties["metrics"].Type = "object"
			sch.Properties["config"].Type = "object"
		}},
		func(ctx context.Context, id *lab.Identity, in findingIn) (any, error) {
			f := forum.Finding{Type: in.Type, Title: in.Title, Body: in.Body, Family: in.Family, Worked: in.Worked,
				Submission: in.Submission, Snapshot: in.Snapshot, Metrics: in.Metrics, Config: in.Config, Card: in.Card}
			stored, _, err := l.PostFindingIdem(ctx, id, f, in.IdempotencyKey)
			return stored, err
		})
	addTool(s, toolSpec{name: "snapshot_diff", title: "Diff two snapshots", readOnly: true,
		desc: "A unified diff of two snapshots' text files: {a, b, diff}."},
		func(ctx context.Context, id *lab.Identity, in diffIn) (any, error) {
			d, err := l.SnapshotDiff(id, in.A, in.B)
			if err != nil {
				return nil, err
			}
			return map[string]any{"a": in.A, "b": in.B, "diff": d}, nil
		})
	addTool(s, toolSpec{name: "snapshot_log", title: "Snapshot lineage", readOnly: true,
		desc: "A snapshot and its ancestors, newest first: {snapshots}."},
		func(ctx context.Context, id *lab.Identity, in snapshotRef) (any, error) {
			log, err := l.SnapshotLog(id, in.ID)
			if err != nil {
				return nil, err
			}
			return map[string]any{"snapshots": log}, nil
		})
	addTool(s, toolSpec{name: "submit_predictions", title: "Submit predictions", researcherOnly: true, schema: seedsSchema,
		desc: "Submit test predictions to the lab's scorer, one array per seed. The answer is what the campaign's feedback policy releases (feedback-split accuracy and PGR, mean ± SE over seeds). Submissions are limited per hour; a result finding needs a submission with at least 5 seeds and a snapshot. Inside a sandbox, aar mcp's submit_files reads prediction files and snapshots the workspace with them."},
		func(ctx context.Context, id *lab.Identity, in submitIn) (any, error) {
			if err := checkSeedBytes(in.Seeds); err != nil {
				return nil, err
			}
			return l.Submit(ctx, id, &lab.SubmitRequest{Seeds: in.Seeds, Snapshot: in.Snapshot, Note: in.Note}, in.IdempotencyKey)
		})
	addTool(s, toolSpec{name: "validate_predictions", title: "Validate predictions", researcherOnly: true, readOnly: true, schema: seedsSchema,
		desc: "Check predictions (format, ids, classes, coverage) without scoring or counting them."},
		func(ctx context.Context, id *lab.Identity, in validateIn) (any, error) {
			if err := checkSeedBytes(in.Seeds); err != nil {
				return nil, err
			}
			return l.Validate(ctx, id, &lab.SubmitRequest{Seeds: in.Seeds})
		})
	addTool(s, toolSpec{name: "vote_finding", title: "Vote on a finding", researcherOnly: true,
		desc:   "Vote a finding of your campaign up (1) or down (-1), once.",
		schema: func(sch *jsonschema.Schema) { sch.Properties["value"].Enum = []any{1, -1} }},
		func(ctx context.Context, id *lab.Identity, in voteIn) (any, error) {
			if err := l.VoteFinding(ctx, id, in.ID, in.Value); err != nil {
				return nil, err
			}
			return map[string]any{"finding": in.ID, "vote": in.Value}, nil
		})
	if !slices.IsSortedFunc(s.tools, func(a, b ToolInfo) int { return strings.Compare(a.Name, b.Name) }) {
		panic("labmcp: the tool table is not sorted by name")
	}
}

// checkSeedBytes bounds a submission's predictions as the REST API bounds
// its body.
func checkSeedBytes(seeds map[string]json.RawMessage) error {
	n := 0
	for k, v := range seeds {
		n += len(k) + len(v)
	}
	if n > MaxPredictionBytes {
		return &lab.PublicError{Status: 413, Code: "body_too_large", Message: fmt.Sprintf("the predictions are over the %d-byte limit", MaxPredictionBytes)}
	}
	return nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
