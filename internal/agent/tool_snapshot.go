package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/aar-lab/aar/internal/snapshot"
)

type pushSnapshotParams struct {
	Message string `json:"message"`
}

// pushWorkspace snapshots /workspace to the lab, its parent the last
// snapshot this researcher pushed or pulled.
func pushWorkspace(ctx context.Context, env *Env) (map[string]any, error) {
	t, archive, err := snapshotWorkspace(ctx, env.Sandbox)
	if err != nil {
		return nil, err
	}
	_, _, parent := env.last()
	raw, err := env.Lab.PushSnapshot(ctx, bytes.NewReader(archive), parent)
	if err != nil {
		return nil, err
	}
	var meta map[string]any
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("lab answer: %w", err)
	}
	id, _ := meta["id"].(string)
	if id == "" {
		return nil, fmt.Errorf("lab answer has no snapshot id")
	}
	env.setSnapshot(id)
	meta["files"] = len(t.Files)
	return meta, nil
}

func pushSnapshotTool() Tool {
	return &typed[pushSnapshotParams]{
		name:   "push_snapshot",
		desc:   "Snapshot your whole /workspace to the lab (content-addressed, with your previous snapshot as parent) so others can pull your code. Submissions and results snapshot automatically.",
		schema: `{"type": "object", "properties": {"message": {"type": "string", "description": "what this snapshot holds"}}, "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p pushSnapshotParams) (Output, error) {
			meta, err := pushWorkspace(ctx, env)
			if err != nil {
				return Output{}, err
			}
			return Output{Text: jsonText(meta), Data: map[string]any{"snapshot": meta["id"], "message": p.Message}}, nil
		},
	}
}

type pullSnapshotParams struct {
	ID  string `json:"id"`
	Dir string `json:"dir"`
}

func pullSnapshotTool() Tool {
	return &typed[pullSnapshotParams]{
		name:   "pull_snapshot",
		desc:   "Download a snapshot of your campaign (yours or another researcher's, e.g. the one behind a result) into a new directory of /workspace (default snapshots/ID).",
		schema: `{"type": "object", "properties": {"id": {"type": "string"}, "dir": {"type": "string"}}, "required": ["id"], "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p pullSnapshotParams) (Output, error) {
			if p.ID == "" {
				return Output{}, Mistake("id is empty: give a snapshot id (snap_…), e.g. from a finding")
			}
			dir := p.Dir
			if dir == "" {
				dir = "snapshots/" + p.ID
			}
			dir, err := workspacePath(dir)
			if err != nil {
				return Output{}, err
			}
			rc, err := env.Lab.PullSnapshot(ctx, p.ID)
			if err != nil {
				return Output{}, err
			}
			defer rc.Close()
			t, err := snapshot.ReadArchive(rc, snapshot.Limits{})
			if err != nil {
				return Output{}, fmt.Errorf("snapshot %s: %w", p.ID, err)
			}
			var exec []string
			for _, f := range t.Files {
				dst := path.Join(dir, f.Path)
				if err := env.Sandbox.WriteFile(dst, f.Data); err != nil {
					return Output{}, Mistake("cannot write %s: %v", dst, err)
				}
				if f.Mode&0o111 != 0 {
					exec = append(exec, shellQuote("/workspace/"+dst))
				}
			}
			if len(exec) > 0 {
				if _, err := bashTool().Run(ctx, env, jsonRaw(map[string]any{"command": "chmod +x " + strings.Join(exec, " ")})); err != nil {
					return Output{}, err
				}
			}
			env.setSnapshot(p.ID)
			return Output{Text: fmt.Sprintf("pulled snapshot %s (%d files, %d bytes) into /workspace/%s", p.ID, len(t.Files), t.Bytes, dir),
				Data: map[string]any{"snapshot": p.ID, "dir": dir}}, nil
		},
	}
}

func jsonRaw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
