"""A small scripted agent that speaks MCP and an OpenAI-compatible API, for
aar's agent-cli backend: what an external agent CLI does, without a model.

It reads its task (AAR_TASK_FILE), asks the model for a method through the
lab's metering proxy (OPENAI_BASE_URL, OPENAI_API_KEY — its virtual key),
streams a second answer, trains that method on five seeds with the
toolkit, and uses the lab's tools through `aar mcp` (stdio JSON-RPC): it
lists them, writes to its notebook (including its environment, so a test
can check that no real key reached it), submits its predictions and posts
a result. Standard library only.
"""
import json, os, subprocess, sys, urllib.request


def model(messages, stream=False):
    req = urllib.request.Request(
        os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions",
        data=json.dumps({"model": "gpt-test", "messages": messages, "stream": stream}).encode(),
        headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        if not stream:
            return json.load(r)["choices"][0]["message"]["content"]
        text = ""
        for line in r:
            line = line.decode().strip()
            if line.startswith("data: ") and line != "data: [DONE]":
                for c in json.loads(line[6:]).get("choices", []):
                    text += (c.get("delta") or {}).get("content") or ""
        return text


class MCP:
    """A minimal MCP client over `aar mcp`'s stdio (newline-delimited JSON-RPC)."""

    def __init__(self):
        self.p = subprocess.Popen(["aar", "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.n = 0
        self.call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "scripted-agent", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg):
        self.p.stdin.write(json.dumps(msg) + "\n")
        self.p.stdin.flush()

    def call(self, method, params):
        self.n += 1
        self.send({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params})
        while True:
            msg = json.loads(self.p.stdout.readline())
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def tool(self, name, args):
        res = self.call("tools/call", {"name": name, "arguments": args})
        text = "".join(c.get("text", "") for c in res.get("content", []))
        if res.get("isError"):
            raise RuntimeError(f"{name}: {text}")
        return res.get("structuredContent") or json.loads(text or "{}")


task = open(os.environ["AAR_TASK_FILE"]).read()
assert "Direction" in task or "direction" in task, "the task has no direction"
method = model([{"role": "system", "content": task}, {"role": "user", "content": "Name one built-in method to try."}]).strip()
why = model([{"role": "user", "content": "Why?"}], stream=True)
mcp = MCP()
tools = {t["name"] for t in mcp.call("tools/list", {})["tools"]}
for need in ("submit_files", "share_finding", "notebook_append", "leaderboard"):
    assert need in tools, f"aar mcp lacks {need}: {sorted(tools)}"
mcp.tool("notebook_append", {"text": "env: " + json.dumps(dict(os.environ), sort_keys=True)})
mcp.tool("notebook_append", {"text": f"plan: {method} ({why})"})

seeds = json.load(open("/data/testbed.json"))["weak_seeds"][:5]
os.makedirs("runs", exist_ok=True)
for s in seeds:
    subprocess.run(["aar", "w2s", "train", "--view", "/data", "--seed", s, "--method", method, "--out", f"runs/{s}.jsonl"], check=True)
with open("aar.toml", "w") as f:
    f.write(f'[method]\nname = "{method}"\ncommand = "sh run.sh"\n')
with open("run.sh", "w") as f:
    f.write(f'aar w2s train --view "$AAR_DATA" --seed "$AAR_SEED" --method {method} --out "$AAR_OUT"\n')
sub = mcp.tool("submit_files", {"files": [f"runs/{s}.jsonl" for s in seeds], "note": f"{method} on 5 seeds"})


def find_id(x, prefix):
    """The first id with prefix (sub_, snap_) anywhere in a tool's answer."""
    if isinstance(x, str) and x.startswith(prefix):
        return x
    for v in (x.values() if isinstance(x, dict) else x if isinstance(x, list) else []):
        found = find_id(v, prefix)
        if found:
            return found
    return None


sub_id, snap_id = find_id(sub, "sub_"), find_id(sub, "snap_")
assert sub_id, f"submit_files answered no submission id: {sub}"
board = mcp.tool("leaderboard", {})
mcp.tool("share_finding", {"type": "result", "family": "other", "title": f"{method} on 5 seeds", "submission": sub_id, "snapshot": snap_id,
                           "body": f"The model suggested {method}: {why}", "worked": True,
                           "metrics": {"seeds": 5},
                           "card": {"summary": f"the built-in {method}", "pseudocode": "aar w2s train --method " + method,
                                    "components": [{"name": method, "ablation": "the baseline itself"}], "inputs": ["weak labels"]}})
print(json.dumps({"method": method, "submission": sub_id, "tools": len(tools), "board": bool(board)}))
