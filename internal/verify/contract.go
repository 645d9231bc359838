// Package verify re-runs a result's method in fresh sandboxes and checks it
// (the lab's research-integrity checks): exact replay of the claimed seeds,
// a re-run on the sealed partition with fresh seeds and lab-made weak
// labels, a teacher ablation, transfer to the other installed testbeds, the
// sandbox's audit of what the method tried, its complexity against its
// parent and the nearest baseline, and, on the honeypot testbed, agreement
// with each known shortcut. Every check is a ledger event with its figures;
// the verdict marks the leaderboard and a flagged result waits for review.
package verify

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/aar-lab/aar/internal/snapshot"
	"github.com/aar-lab/aar/internal/w2s"
)

// ContractFile names the method contract at a snapshot's root.
const ContractFile = "aar.toml"

// Contract is a snapshot's aar.toml: how to re-run its method.
//
//	[method]
//	name = "logconf"                         # optional, for people
//	command = "sh run.sh"                    # run by /bin/sh -c in the snapshot's files
//	testbeds = ["*"]                         # optional: where it may be tried (default: every installed testbed)
//	timeout = "10m"                          # optional, per seed (default 10m)
//
// The command runs in a copy of the snapshot (the working directory), with
// the testbed's view read-only at /data and these variables set:
// AAR_DATA=/data, AAR_SEED (the seed: its weak labels are
// $AAR_DATA/weak/$AAR_SEED.jsonl, also in AAR_WEAK), AAR_OUT (the file to
// write: one {"id", "label"} line per row of $AAR_DATA/test.jsonl, or a
// JSON array of class indexes in that order) and AAR_TESTBED.
type Contract struct {
	Method struct {
		Name     string   `toml:"name"`
		Command  string   `toml:"command"`
		Testbeds []string `toml:"testbeds"`
		Timeout  string   `toml:"timeout"`
	} `toml:"method"`
	timeout time.Duration
}

// ContractError says what is wrong with a snapshot's aar.toml.
type ContractError struct{ Msg string }

func (e *ContractError) Error() string { return e.Msg }

// ParseContract reads an aar.toml, refusing unknown keys and a missing
// command.
func ParseContract(data []byte) (*Contract, error) {
	var c Contract
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		return nil, &ContractError{fmt.Sprintf("%s: %v: see `aar verify --help` for the format", ContractFile, err)}
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, &ContractError{fmt.Sprintf("%s: unknown key(s) %s: the keys are method.name, method.command, method.testbeds, method.timeout", ContractFile, strings.Join(keys, ", "))}
	}
	c.Method.Command = strings.TrimSpace(c.Method.Command)
	if c.Method.Command == "" {
		return nil, &ContractError{fmt.Sprintf(`%s: method.command is missing: name the command that writes $AAR_OUT, e.g. command = "sh run.sh"`, ContractFile)}
	}
	c.timeout = 10 * time.Minute
	if c.Method.Timeout != "" {
		d, err := time.ParseDuration(c.Method.Timeout)
		if err != nil || d <= 0 || d > 2*time.Hour {
			return nil, &ContractError{fmt.Sprintf("%s: method.timeout %q: give a duration up to 2h, e.g. \"10m\"", ContractFile, c.Method.Timeout)}
		}
		c.timeout = d
	}
	return &c, nil
}

// ContractOf finds and parses a tree's aar.toml.
func ContractOf(t *snapshot.Tree) (*Contract, error) {
	for _, f := range t.Files {
		if f.Path == ContractFile {
			return ParseContract(f.Data)
		}
	}
	return nil, &ContractError{fmt.Sprintf("the snapshot has no %s at its root, so its method cannot be re-run: add one naming the command that writes $AAR_OUT (see `aar verify --help`)", ContractFile)}
}

// RunsOn says whether the contract lets the method be tried on a testbed.
func (c *Contract) RunsOn(name string) bool {
	if len(c.Method.Testbeds) == 0 {
		return true
	}
	for _, t := range c.Method.Testbeds {
		if t == "*" || t == name {
			return true
		}
	}
	return false
}

// BaselineFiles are the files of a built-in method as a contract-following
// snapshot: what `aar w2s train --method M` does, as aar.toml and run.sh.
func BaselineFiles(method string) []snapshot.File {
	toml := fmt.Sprintf("[method]\nname = %q\ncommand = \"sh run.sh\"\n", method)
	run := fmt.Sprintf("#!/bin/sh\n# The built-in %s baseline.\nset -e\naar w2s train --view \"$AAR_DATA\" --seed \"$AAR_SEED\" --method %s --out \"$AAR_OUT\"\n", method, method)
	return []snapshot.File{
		{Path: ContractFile, Mode: 0o644, Data: []byte(toml)},
		{Path: "run.sh", Mode: 0o755, Data: []byte(run)},
	}
}

// baselineTrees are every built-in method's files, by name.
func baselineTrees() map[string]*snapshot.Tree {
	out := map[string]*snapshot.Tree{}
	for _, m := range w2s.Methods {
		t, _, err := snapshot.FromFiles(BaselineFiles(m.Name), snapshot.Limits{})
		if err != nil {
			panic(err) // fixed, valid files
		}
		out[m.Name] = t
	}
	return out
}

// codeTree keeps a tree's method code: text files under 256 KiB that are
// not data or outputs (predictions, logs, arrays).
func codeTree(t *snapshot.Tree) *snapshot.Tree {
	if t == nil {
		return &snapshot.Tree{}
	}
	out := &snapshot.Tree{}
	for _, f := range t.Files {
		top, _, _ := strings.Cut(f.Path, "/")
		switch top {
		case "runs", "preds", "out", "outputs", "__pycache__", ".aar":
			continue
		}
		switch strings.ToLower(path.Ext(f.Path)) {
		case ".jsonl", ".json", ".csv", ".tsv", ".npy", ".npz", ".pkl", ".pt", ".bin", ".log", ".f32", ".gz", ".tar", ".zip", ".pyc":
			continue
		}
		if f.Size > 256<<10 || len(f.Data) > 256<<10 || bytes.IndexByte(f.Data, 0) >= 0 {
			continue
		}
		out.Files = append(out.Files, f)
	}
	sort.Slice(out.Files, func(i, j int) bool { return out.Files[i].Path < out.Files[j].Path })
	return out
}

// changedLines counts the lines added and removed between two trees' code.
func changedLines(a, b *snapshot.Tree) (added, removed int) {
	for _, ln := range strings.Split(snapshot.Diff(codeTree(a), codeTree(b)), "\n") {
		switch {
		case strings.HasPrefix(ln, "+++ "), strings.HasPrefix(ln, "--- "):
		case strings.HasPrefix(ln, "+"):
			added++
		case strings.HasPrefix(ln, "-"):
			removed++
		}
	}
	return added, removed
}
