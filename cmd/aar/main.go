// Command aar is the lab's command line. It only wires: each subcommand lives
// in its own file and calls one typed method of an internal package.
//
// Exit codes: 0 success; 1 failure (I/O, internal); 2 usage error (unknown
// command, bad flag or argument); 3 invalid input (a malformed file or
// prediction; nothing was changed); 4 not found (no such testbed).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/aar-lab/aar/internal/jsonl"
	"github.com/aar-lab/aar/internal/score"
	"github.com/aar-lab/aar/internal/testbed"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitInput    = 3
	exitNotFound = 4
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var se silentExit
	if errors.As(err, &se) {
		return se.code
	}
	code := exitCode(err)
	fmt.Fprintln(stderr, "aar:", err)
	if code == exitUsage {
		cmd, _, ferr := root.Find(args)
		if ferr != nil || cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Try: %s --help\n", cmd.CommandPath())
	}
	return code
}

// usageError marks a mistake in how a command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// silentExit ends a command with an exit code after it has said why.
type silentExit struct{ code int }

func (e silentExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// inputError marks a malformed input file (exit 3).
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func invalidf(format string, args ...any) error { return inputError{fmt.Errorf(format, args...)} }

func exitCode(err error) int {
	var ue usageError
	var ie inputError
	var nf *testbed.NotFoundError
	var ce *score.CoverageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &nf):
		return exitNotFound
	case jsonl.IsInputError(err), errors.As(err, &ce), errors.As(err, &ie):
		return exitInput
	default:
		return exitFailure
	}
}

// globals are the flags every command shares.
type globals struct {
	data   string
	stdout io.Writer
	stderr io.Writer
}

// dataDir resolves the lab's data directory: --data, else $AAR_DATA, else
// $XDG_DATA_HOME/aar, else ~/.local/share/aar.
func (g *globals) dataDir() (string, error) {
	if g.data != "" {
		return g.data, nil
	}
	if d := os.Getenv("AAR_DATA"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "aar"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no data directory: pass --data DIR or set AAR_DATA (%w)", err)
	}
	return filepath.Join(home, ".local", "share", "aar"), nil
}

func (g *globals) testbeds() (*testbed.Store, error) {
	dir, err := g.dataDir()
	if err != nil {
		return nil, err
	}
	return testbed.OpenStore(dir)
}

// loadTestbed opens the store and loads one testbed from it.
func (g *globals) loadTestbed(name string) (*testbed.Testbed, error) {
	store, err := g.testbeds()
	if err != nil {
		return nil, err
	}
	return store.Load(name)
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "aar",
		Short: "aar: a lab for automated alignment research on weak-to-strong supervision",
		Long: `aar runs parallel researchers on weak-to-strong (W2S) supervision problems
and scores them by PGR = (transfer − weak) / (ceiling − weak) on test labels
only the lab holds.

Lab state lives in a data directory: --data, else $AAR_DATA, else
$XDG_DATA_HOME/aar, else ~/.local/share/aar.

Exit codes: 0 ok, 1 failure, 2 usage error, 3 invalid input (nothing changed),
4 not found.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.data, "data", "", "lab data directory (default $AAR_DATA, else $XDG_DATA_HOME/aar or ~/.local/share/aar)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newTestbedCmd(g), newScoreCmd(g), newBaselineCmd(g), newW2SCmd(g), newLedgerCmd(g), newLabCmd(g), newSubmitCmd(g), newSnapshotCmd(g), newForumCmd(g), newLeaderboardCmd(g), newSandboxCmd(g), newResearcherCmd(g), newTranscriptCmd(g), newRunCmd(g), newRunsCmd(g), newVerifyCmd(g), newVersionCmd(g))
	root.AddCommand(newForwardCmd(g))
	root.AddCommand(newMCPCmd(g))
	markUsage(root)
	return root
}

// markUsage makes argument-count errors of every command usage errors and
// gives unknown subcommands a usage error too.
func markUsage(c *cobra.Command) {
	if c.Args != nil {
		inner := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := inner(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	if c.HasSubCommands() && c.RunE == nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		}
		c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	}
	for _, sub := range c.Commands() {
		markUsage(sub)
	}
}
