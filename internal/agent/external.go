package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	"github.com/aar-lab/aar/internal/labclient"
	"github.com/aar-lab/aar/internal/sandbox"
)

// MCPTools are the lab's tools as an external agent sees them through
// `aar mcp` (the lab's MCP server, re-exposed on stdio inside the sandbox,
// with the local conveniences that need the sandbox's files).
var MCPTools = []string{
	"submit_files: submit prediction files (one per seed, JSONL or array), snapshotting the workspace",
	"submit_predictions: submit predictions inline",
	"validate_predictions: check predictions without scoring them",
	"share_finding: post a hypothesis, insight, error or result (a result cites a submission with ≥ 5 seeds and a method card)",
	"search_findings / list_findings / read_finding / comment_finding / vote_finding: the campaign's forum",
	"leaderboard: the feedback leaderboard",
	"push_workspace / pull_workspace / snapshot_log / snapshot_diff: snapshots of /workspace",
	"notebook_append / notebook_read: your lab notebook",
	"budget: what you have spent",
	"my_control: operator notes and your state",
}

// ExternalConfig runs an agent program (Claude Code, Codex CLI, any agent
// that speaks MCP and an Anthropic or OpenAI-compatible API) as a
// researcher inside its sandbox: the lab's tools through `aar mcp`, the
// model through the lab's metering proxy with the researcher's token as its
// virtual key — the real model key never enters the sandbox.
type ExternalConfig struct {
	Researcher, Testbed, Direction string
	// Command is the agent's shell command, run in /workspace.
	Command string
	// Files are written into /workspace first (path → content).
	Files map[string][]byte
	// Token is the researcher's lab token: the MCP bridge's credential and
	// the proxy's virtual key.
	Token   string
	Sandbox sandbox.Sandbox
	Lab     *labclient.Client
	Prompt  *template.Template
	// Wall bounds the agent's run (0: the sandbox's command timeout).
	Wall              time.Duration
	Budget            Budget
	Sharing, Workflow string
	Control           func(ctx context.Context) (Control, error)
	Log               io.Writer
	// Port is the loopback port inside the sandbox where the lab is
	// forwarded for clients that speak only TCP (default 4180).
	Port int
	Now  func() time.Time
}

// externalSession names the transcript session of an external agent.
const externalSession = "agent"

// RunExternal renders the task (the researcher prompt with the MCP tools),
// writes it with an MCP config into the workspace, and runs the agent
// under a loopback forwarder to the lab's socket, recording its start,
// output and exit in the transcript (model calls are recorded by the
// proxy). An operator's stop ends it.
func RunExternal(ctx context.Context, cfg ExternalConfig) (*Summary, error) {
	if strings.TrimSpace(cfg.Command) == "" {
		return nil, fmt.Errorf("agent-cli: no agent command")
	}
	if cfg.Port == 0 {
		cfg.Port = 4180
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	task, err := sandboxPrompt(ctx, cfg.Sandbox, cfg.Prompt, PromptData{Researcher: cfg.Researcher, Direction: cfg.Direction,
		Budget: cfg.Budget.String(), Tools: MCPTools, Workflow: cfg.Workflow == "suggested", Sharing: cfg.Sharing})
	if err != nil {
		return nil, err
	}
	task += "\n\nYour tools are the lab's MCP server `aar` (configured in /workspace/.mcp.json: command `aar mcp`) and a shell in this sandbox. " +
		"Your model is reached through the lab (ANTHROPIC_BASE_URL / OPENAI_BASE_URL are set); it meters every call against your budget.\n"
	mcpConfig, _ := json.MarshalIndent(map[string]any{"mcpServers": map[string]any{"aar": map[string]any{"command": "aar", "args": []string{"mcp"}}}}, "", "  ")
	files := map[string][]byte{"TASK.md": []byte(task), ".mcp.json": append(mcpConfig, '\n')}
	for p, b := range cfg.Files {
		files[p] = b
	}
	for p, b := range files {
		if err := cfg.Sandbox.WriteFile(p, b); err != nil {
			return nil, fmt.Errorf("sandbox: write %s: %w", p, err)
		}
	}
	scrub := func(s string) string {
		if cfg.Token != "" {
			s = strings.ReplaceAll(s, cfg.Token, "[token]")
		}
		return s
	}
	record := func(typ string, data map[string]any) {
		b, _ := json.Marshal(data)
		ev := labclient.TranscriptEvent{Session: externalSession, Type: typ, At: cfg.Now().UTC(), Data: json.RawMessage(scrub(string(b)))}
		if cpu, ok := data["cpu_seconds"].(float64); ok {
			ev.CPUSeconds = cpu
		}
		if _, err := cfg.Lab.AppendTranscript(context.WithoutCancel(ctx), []labclient.TranscriptEvent{ev}); err != nil {
			fmt.Fprintf(cfg.Log, "researcher %s: transcript: %v\n", cfg.Researcher, err)
		}
	}
	record("session_start", map[string]any{"system": task, "backend": "agent-cli", "command": cfg.Command})

	// Operator control: a stop ends the agent.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan string, 1)
	if cfg.Control != nil {
		go func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					c, err := cfg.Control(runCtx)
					if err == nil && c.State == "stopped" {
						stopped <- "stopped by the operator"
						cancel()
						return
					}
				}
			}
		}()
	}
	lab := "unix:///run/aar/lab.sock"
	base := fmt.Sprintf("http://127.0.0.1:%d", cfg.Port)
	// A sandbox on a cluster reaches the lab over the network (its
	// NetworkPolicy allows the lab alone): no socket and no forwarder.
	direct := ""
	if u, ok := cfg.Sandbox.(interface{ LabURL() string }); ok {
		direct = strings.TrimSuffix(u.LabURL(), "/")
	}
	if direct != "" {
		lab, base = direct, direct
	}
	env := []string{
		"AAR_LAB=" + lab, "AAR_TOKEN=" + cfg.Token, "HOME=/workspace",
		"AAR_TASK_FILE=/workspace/TASK.md", "AAR_MCP_CONFIG=/workspace/.mcp.json", "AAR_LAB_HTTP=" + base,
		"ANTHROPIC_BASE_URL=" + base + "/v1/proxy/anthropic", "ANTHROPIC_API_KEY=" + cfg.Token,
		"OPENAI_BASE_URL=" + base + "/v1/proxy/openai/v1", "OPENAI_API_KEY=" + cfg.Token,
		"AAR_AGENT_COMMAND=" + cfg.Command,
	}
	// The forwarder and the agent share one command: a sandbox's processes
	// end with the command that started them.
	shell := fmt.Sprintf(`aar forward --listen 127.0.0.1:%d --to %s 2>/tmp/aar-forward.log &
fwd=$!
i=0; while ! aar forward --check 127.0.0.1:%d 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
sh -c "$AAR_AGENT_COMMAND"
rc=$?
kill $fwd 2>/dev/null
exit $rc`, cfg.Port, strings.TrimPrefix(lab, "unix://"), cfg.Port)
	if direct != "" {
		shell = `exec sh -c "$AAR_AGENT_COMMAND"`
	}
	start := cfg.Now()
	fmt.Fprintf(cfg.Log, "researcher %s: agent-cli: %s\n", cfg.Researcher, cfg.Command)
	res, err := cfg.Sandbox.Exec(runCtx, sandbox.ExecRequest{Shell: shell, Env: env, Dir: "/workspace", Timeout: cfg.Wall})
	sum := &Summary{Sessions: 1, Steps: 1}
	switch {
	case err != nil && runCtx.Err() != nil:
		select {
		case why := <-stopped:
			sum.Reason = why
		default:
			sum.Reason = "stopped"
		}
	case err != nil:
		record("stop", map[string]any{"reason": "sandbox: " + err.Error()})
		return nil, fmt.Errorf("sandbox: %w", err)
	case res.TimedOut:
		sum.Reason = fmt.Sprintf("the agent ran out of time (%s)", cfg.Wall)
	case res.ExitCode != 0:
		sum.Reason = fmt.Sprintf("the agent exited with status %d", res.ExitCode)
	default:
		sum.Reason = "the agent finished"
	}
	data := map[string]any{"reason": sum.Reason, "seconds": cfg.Now().Sub(start).Seconds()}
	if res != nil {
		data["exit_code"], data["stdout"], data["stderr"] = res.ExitCode, tailText(string(res.Stdout), 8000), tailText(string(res.Stderr), 8000)
		data["cpu_seconds"] = res.CPU.Seconds()
		sum.Final = tailText(string(res.Stdout), 4000)
	}
	record("agent_exit", data)
	record("stop", map[string]any{"reason": sum.Reason})
	return sum, nil
}

func tailText(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
