package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
)

type bashParams struct {
	Command        string `json:"command"`
	TimeoutSeconds int    `json:"timeout_seconds"`
}

// maxBashTimeout bounds one command; the sandbox's own limit may be lower.
const maxBashTimeout = 30 * time.Minute

func bashTool() Tool {
	return &typed[bashParams]{
		name: "bash",
		desc: "Run a shell command (/bin/sh -c) in your sandbox, in /workspace. The testbed's public view is read-only at /data, the forum copy at /shared; `aar w2s ...` is the W2S toolkit; python3 with numpy, scipy and scikit-learn is there. No network. Returns the exit code, stdout and stderr (long output is cut in the middle).",
		schema: `{"type": "object", "properties": {
  "command": {"type": "string", "description": "the shell command"},
  "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 1800, "description": "kill it after this long (default: the sandbox's command timeout)"}},
 "required": ["command"], "additionalProperties": false}`,
		run: func(ctx context.Context, env *Env, p bashParams) (Output, error) {
			if strings.TrimSpace(p.Command) == "" {
				return Output{}, Mistake("command is empty")
			}
			if p.TimeoutSeconds < 0 {
				return Output{}, Mistake("timeout_seconds must be positive")
			}
			req := sandbox.ExecRequest{Shell: p.Command}
			if p.TimeoutSeconds > 0 {
				req.Timeout = min(time.Duration(p.TimeoutSeconds)*time.Second, maxBashTimeout)
			}
			res, err := env.Sandbox.Exec(ctx, req)
			if err != nil {
				return Output{}, fmt.Errorf("sandbox: %w", err)
			}
			if env.Meter != nil {
				env.Meter.AddCPU(res.CPU)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "exit code %d", res.ExitCode)
			if res.TimedOut {
				b.WriteString(" (timed out)")
			}
			fmt.Fprintf(&b, " in %s\n", res.Duration.Round(time.Millisecond))
			if len(res.Stdout) > 0 {
				b.WriteString("--- stdout ---\n")
				b.Write(res.Stdout)
				if res.Stdout[len(res.Stdout)-1] != '\n' {
					b.WriteByte('\n')
				}
			}
			if len(res.Stderr) > 0 {
				b.WriteString("--- stderr ---\n")
				b.Write(res.Stderr)
			}
			return Output{Text: b.String(), Data: map[string]any{"exit_code": res.ExitCode, "cpu_seconds": res.CPU.Seconds(), "timed_out": res.TimedOut}}, nil
		},
	}
}
