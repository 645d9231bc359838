package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/sandbox"
	"github.com/aar-lab/aar/internal/sandbox/bwrap"
)

func newSandboxCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "sandbox", Short: "Check and try the local sandbox"}
	var asJSON bool
	doctor := &cobra.Command{
		Use:   "doctor",
		Short: "Report which isolation features and profiles this host supports",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tmp, err := os.MkdirTemp("", "aar-doctor-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			b, err := g.sandboxBackend(tmp)
			if err != nil {
				return err
			}
			checks := bwrap.Doctor(cmd.Context(), b)
			if asJSON {
				return writeJSON(g.stdout, checks)
			}
			failed := 0
			for _, ch := range checks {
				mark := "ok  "
				if !ch.OK {
					mark, failed = "MISS", failed+1
				}
				fmt.Fprintf(g.stdout, "%s %-22s %s\n", mark, ch.Feature, ch.Detail)
			}
			if failed > 0 {
				fmt.Fprintf(g.stdout, "%d feature(s) missing: sandboxes run with the limits marked MISS unenforced\n", failed)
			}
			return nil
		},
	}
	doctor.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var (
		tbName, profile, limits string
		keep                    bool
	)
	run := &cobra.Command{
		Use:   "run --testbed T [--profile cpu] [--limits memory=2G,pids=256,timeout=10m,...] -- CMD...",
		Short: "Run one command in a fresh sandbox holding a testbed's public view at /data (admin)",
		Long: `Run creates a sandbox as a researcher would get it — the testbed's public view
read-only at /data, a private /workspace, the aar binary, the lab's socket
when the lab runs, no network — runs CMD, prints its output and exit code,
and destroys the sandbox (unless --keep). Limits: memory, cpu (shares),
pids, files (open), fsize, workspace, tmp, timeout, output; sizes take
K/M/G suffixes, durations Go's form (10m, 30s).`,
		Example: `  aar sandbox run --testbed reviews -- ls -l /data
  aar sandbox run --testbed reviews --limits memory=512M,timeout=30s -- aar w2s train --view /data --smoke --out /workspace/p.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tbName == "" {
				return usagef("--testbed is required")
			}
			lim, err := parseLimits(limits)
			if err != nil {
				return usageError{err}
			}
			tb, err := g.loadTestbed(tbName)
			if err != nil {
				return err
			}
			dir, err := g.dataDir()
			if err != nil {
				return err
			}
			id := fmt.Sprintf("run-%d", time.Now().UnixNano()%1e12)
			view := filepath.Join(dir, "sandbox-views", id)
			if err := tb.WritePublic(view, false); err != nil {
				return err
			}
			defer os.RemoveAll(view)
			spec := sandbox.Spec{ID: id, Profile: profile, Data: view, Limits: lim}
			if exe, err := os.Executable(); err == nil {
				spec.AarBinary = exe
			}
			if sock := filepath.Join(dir, "lab.sock"); fileExists(sock) {
				spec.LabSocket = sock
			}
			b, err := g.sandboxBackend(filepath.Join(dir, "sandboxes"))
			if err != nil {
				return err
			}
			s, err := b.Create(cmd.Context(), spec)
			if err != nil {
				return err
			}
			for _, w := range s.Warnings() {
				fmt.Fprintf(g.stderr, "warning: %s\n", w)
			}
			if keep {
				defer fmt.Fprintf(g.stderr, "kept sandbox %s: its workspace is %s on this host; remove it with: aar sandbox rm %s\n",
					id, filepath.Join(b.Root, id, "workspace"), id)
			} else {
				defer s.Destroy(cmd.Context())
			}
			res, err := s.Exec(cmd.Context(), sandbox.ExecRequest{Argv: args})
			if err != nil {
				return err
			}
			g.stdout.Write(res.Stdout)
			g.stderr.Write(res.Stderr)
			fmt.Fprintf(g.stderr, "[sandbox %s: exit %d in %s]\n", id, res.ExitCode, res.Duration.Round(time.Millisecond))
			if res.TimedOut {
				return fmt.Errorf("the command hit its time limit and every process in the sandbox was killed (raise it with --limits timeout=...)")
			}
			if res.ExitCode != 0 {
				return fmt.Errorf("the command exited %d", res.ExitCode)
			}
			return nil
		},
	}
	f := run.Flags()
	f.StringVar(&tbName, "testbed", "", "installed testbed whose public view is mounted at /data")
	f.StringVar(&profile, "profile", "cpu", "sandbox profile")
	f.StringVar(&limits, "limits", "", "comma-separated limits, e.g. memory=1G,pids=128,timeout=5m")
	f.BoolVar(&keep, "keep", false, "keep the sandbox after the command")
	rm := &cobra.Command{
		Use:   "rm ID...",
		Short: "Destroy sandboxes kept by aar sandbox run --keep",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.dataDir()
			if err != nil {
				return err
			}
			b, err := g.sandboxBackend(filepath.Join(dir, "sandboxes"))
			if err != nil {
				return err
			}
			for _, id := range args {
				if err := b.Remove(id); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "removed sandbox %s\n", id)
			}
			return nil
		},
	}
	c.AddCommand(doctor, run, rm, newSandboxImageCmd(g))
	return c
}

// sandboxBackend is the local backend with the profiles in
// DATA/sandbox-profiles.
func (g *globals) sandboxBackend(root string) (*bwrap.Backend, error) {
	dir, err := g.dataDir()
	if err != nil {
		return nil, err
	}
	profs, err := bwrap.LoadProfiles(filepath.Join(dir, "sandbox-profiles"))
	if err != nil {
		return nil, err
	}
	return &bwrap.Backend{Root: root, Profiles: profs}, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// parseLimits reads "key=value,..." into sandbox limits.
func parseLimits(s string) (sandbox.Limits, error) {
	var l sandbox.Limits
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return l, fmt.Errorf("limit %q: write key=value", kv)
		}
		size := func() (int64, error) { return parseSize(v) }
		var err error
		switch k {
		case "memory":
			l.MemoryBytes, err = size()
		case "workspace":
			l.WorkspaceBytes, err = size()
		case "tmp":
			l.TmpBytes, err = size()
		case "fsize":
			l.FileBytes, err = size()
		case "output":
			l.OutputBytes, err = size()
		case "cpu":
			l.CPUShares, err = strconv.Atoi(v)
		case "pids":
			l.Pids, err = strconv.Atoi(v)
		case "files":
			l.OpenFiles, err = strconv.Atoi(v)
		case "timeout":
			l.CommandTimeout, err = time.ParseDuration(v)
		case "lifetime":
			l.Lifetime, err = time.ParseDuration(v)
		default:
			return l, fmt.Errorf("limit %q: use memory, cpu, pids, files, fsize, workspace, tmp, timeout, lifetime or output", k)
		}
		if err != nil {
			return l, fmt.Errorf("limit %s=%s: %v", k, v, err)
		}
	}
	return l, nil
}

// parseSize reads a byte count: a number with an optional K, M or G
// suffix (binary; case-insensitive, "Mi", "MB" and "MiB" read the same).
func parseSize(v string) (int64, error) {
	u := strings.ToUpper(strings.TrimSpace(v))
	u = strings.TrimSuffix(strings.TrimSuffix(u, "B"), "I")
	mult := int64(1)
	if n := len(u); n > 0 {
		switch u[n-1] {
		case 'K':
			mult, u = 1<<10, u[:n-1]
		case 'M':
			mult, u = 1<<20, u[:n-1]
		case 'G':
			mult, u = 1<<30, u[:n-1]
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("not a positive size; write e.g. 512M or 2G")
	}
	return n * mult, nil
}
