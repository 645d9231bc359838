package agent

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aar-lab/aar/internal/sandbox"
	"github.com/aar-lab/aar/internal/snapshot"
)

// snapshotWorkspace reads the sandbox's /workspace (regular files, listed
// by find inside the sandbox, read through the sandbox's confined
// ReadFile) into a canonical snapshot archive.
func snapshotWorkspace(ctx context.Context, sb sandbox.Sandbox) (*snapshot.Tree, []byte, error) {
	if tr, ok := sb.(sandbox.TreeReader); ok {
		// One call for the whole tree where each call costs (containers).
		got, err := tr.ReadTree(ctx)
		if err != nil {
			return nil, nil, Mistake("snapshot: %v", err)
		}
		files := make([]snapshot.File, len(got))
		for i, f := range got {
			files[i] = snapshot.File{Path: f.Path, Mode: f.Mode, Data: f.Data}
		}
		return snapshotFiles(files)
	}
	res, err := sb.Exec(ctx, sandbox.ExecRequest{Shell: `cd /workspace && find . -type f -printf '%m %s %P\0'`})
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: %w", err)
	}
	if res.ExitCode != 0 {
		return nil, nil, Mistake("listing /workspace failed: %s", strings.TrimSpace(string(res.Stderr)))
	}
	if res.StdoutDropped > 0 {
		return nil, nil, Mistake("/workspace holds too many files to snapshot; remove some")
	}
	var files []snapshot.File
	for _, rec := range bytes.Split(res.Stdout, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		f := strings.SplitN(string(rec), " ", 3)
		if len(f) != 3 {
			continue
		}
		mode, _ := strconv.ParseUint(f[0], 8, 32)
		data, err := sb.ReadFile(f[2])
		if err != nil {
			return nil, nil, Mistake("snapshot: cannot read %s: %v", f[2], err)
		}
		files = append(files, snapshot.File{Path: f[2], Mode: uint32(mode), Data: data})
	}
	return snapshotFiles(files)
}

func snapshotFiles(files []snapshot.File) (*snapshot.Tree, []byte, error) {
	t, b, err := snapshot.FromFiles(files, snapshot.Limits{})
	if err != nil {
		if snapshot.IsInputError(err) {
			return nil, nil, Mistake("snapshot: %v", err)
		}
		return nil, nil, err
	}
	return t, b, nil
}
