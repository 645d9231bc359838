package agent

import (
	"context"
	"fmt"
	"strings"
)

// Files the model reads and writes live under /workspace; paths may be
// given absolute (/workspace/x) or relative (x).
func workspacePath(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return "", Mistake("path is empty")
	}
	if strings.HasPrefix(p, "/") {
		rel, ok := strings.CutPrefix(p, "/workspace/")
		if !ok {
			return "", Mistake("%s is outside /workspace: these file tools work in /workspace only; read other files with bash (cat, head)", p)
		}
		p = rel
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", Mistake("path %q leaves /workspace", p)
		}
	}
	return p, nil
}

// maxFileRead is the most read_file returns at once.
const maxFileRead = 64 << 10

type readFileParams struct {
	Path   string `json:"path"`
	Offset int    `json:"offset"`
	Limit  int    `json:"limit"`
}

func readFileTool() Tool {
	return &typed[readFileParams]{
		name: "read_file",
		desc: "Read a text file in /workspace (64 KiB at a time; use offset and limit, in bytes, to page). For files elsewhere (/data, /shared) use bash.",
		schema: `{"type": "object", "properties": {
  "path": {"type": "string"}, "offset": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1}},
 "required": ["path"], "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p readFileParams) (Output, error) {
			path, err := workspacePath(p.Path)
			if err != nil {
				return Output{}, err
			}
			b, err := env.Sandbox.ReadFile(path)
			if err != nil {
				return Output{}, Mistake("cannot read %s: %v", p.Path, err)
			}
			if p.Offset < 0 || p.Limit < 0 {
				return Output{}, Mistake("offset and limit must not be negative")
			}
			lim := p.Limit
			if lim == 0 || lim > maxFileRead {
				lim = maxFileRead
			}
			if p.Offset > len(b) {
				return Output{}, Mistake("offset %d is past the end of %s (%d bytes)", p.Offset, p.Path, len(b))
			}
			end := min(len(b), p.Offset+lim)
			text := string(b[p.Offset:end])
			if end < len(b) {
				text += fmt.Sprintf("\n[%d of %d bytes shown; read on with offset %d]", end-p.Offset, len(b), end)
			}
			return Output{Text: text, Data: map[string]any{"bytes": len(b)}}, nil
		},
	}
}

type writeFileParams struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

func writeFileTool() Tool {
	return &typed[writeFileParams]{
		name: "write_file",
		desc: "Write (create or replace) a file in /workspace with the given content; parent directories are made.",
		schema: `{"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
 "required": ["path", "content"], "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p writeFileParams) (Output, error) {
			path, err := workspacePath(p.Path)
			if err != nil {
				return Output{}, err
			}
			if err := env.Sandbox.WriteFile(path, []byte(p.Content)); err != nil {
				return Output{}, Mistake("cannot write %s: %v", p.Path, err)
			}
			return Output{Text: fmt.Sprintf("wrote %d bytes to /workspace/%s", len(p.Content), path), Data: map[string]any{"path": path, "bytes": len(p.Content)}}, nil
		},
	}
}

type editFileParams struct {
	Path       string `json:"path"`
	Old        string `json:"old"`
	New        string `json:"new"`
	ReplaceAll bool   `json:"replace_all"`
}

func editFileTool() Tool {
	return &typed[editFileParams]{
		name: "edit_file",
		desc: "Replace text in a file in /workspace: `old` must occur exactly once (or set replace_all).",
		schema: `{"type": "object", "properties": {"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}, "replace_all": {"type": "boolean"}},
 "required": ["path", "old", "new"], "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p editFileParams) (Output, error) {
			path, err := workspacePath(p.Path)
			if err != nil {
				return Output{}, err
			}
			if p.Old == "" {
				return Output{}, Mistake("old is empty: say which text to replace (use write_file to write a whole file)")
			}
			b, err := env.Sandbox.ReadFile(path)
			if err != nil {
				return Output{}, Mistake("cannot read %s: %v", p.Path, err)
			}
			s := string(b)
			n := strings.Count(s, p.Old)
			switch {
			case n == 0:
				return Output{}, Mistake("the text to replace does not occur in %s", p.Path)
			case n > 1 && !p.ReplaceAll:
				return Output{}, Mistake("the text to replace occurs %d times in %s; give more context or set replace_all", n, p.Path)
			}
			if p.ReplaceAll {
				s = strings.ReplaceAll(s, p.Old, p.New)
			} else {
				s = strings.Replace(s, p.Old, p.New, 1)
			}
			if err := env.Sandbox.WriteFile(path, []byte(s)); err != nil {
				return Output{}, Mistake("cannot write %s: %v", p.Path, err)
			}
			return Output{Text: fmt.Sprintf("replaced %d occurrence(s) in /workspace/%s", map[bool]int{true: n, false: 1}[p.ReplaceAll], path)}, nil
		},
	}
}

type listFilesParams struct {
	Path  string `json:"path"`
	Depth int    `json:"depth"`
}

func listFilesTool() Tool {
	return &typed[listFilesParams]{
		name: "list_files",
		desc: "List files under a directory of the sandbox (default /workspace; /data and /shared too) with their sizes, to the given depth (default 2).",
		schema: `{"type": "object", "properties": {"path": {"type": "string"}, "depth": {"type": "integer", "minimum": 1, "maximum": 6}},
 "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p listFilesParams) (Output, error) {
			dir := p.Path
			if dir == "" {
				dir = "/workspace"
			}
			if !strings.HasPrefix(dir, "/") {
				dir = "/workspace/" + dir
			}
			depth := p.Depth
			if depth <= 0 {
				depth = 2
			}
			out, err := bashTool().Run(ctx, env, jsonRaw(map[string]any{
				"command": fmt.Sprintf("find %s -maxdepth %d -printf '%%y %%10s  %%p\\n' 2>&1 | sort -k3 | head -n 500", shellQuote(dir), min(depth, 6)),
			}))
			if err != nil {
				return Output{}, err
			}
			return Output{Text: out.Text}, nil
		},
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
