// A second, independent client of the lab's MCP server: the official
// TypeScript SDK over streamable HTTP with a bearer token. It lists the
// tools, calls leaderboard, notebook_append, notebook_read, search_findings,
// submit_predictions and leaderboard again, and prints one JSON object with
// every answer.
//
//   AAR_MCP_URL=http://127.0.0.1:PORT/mcp AAR_TOKEN=... AAR_SEEDS_FILE=seeds.json node index.mjs
//
// AAR_SEEDS_FILE holds the seeds object submit_predictions takes.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = process.env.AAR_MCP_URL;
const token = process.env.AAR_TOKEN;
if (!url || !token) {
  console.error("set AAR_MCP_URL and AAR_TOKEN");
  process.exit(2);
}
const seeds = JSON.parse(readFileSync(process.env.AAR_SEEDS_FILE, "utf8"));

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "aar-ts-test", version: "0.0.0" });
await client.connect(transport);

// call returns what a tool answered: its structured content, its text and
// whether it is an error.
async function call(name, args) {
  const res = await client.callTool({ name, arguments: args });
  return {
    isError: res.isError === true,
    structured: res.structuredContent ?? null,
    text: (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n"),
  };
}

const tools = (await client.listTools()).tools;
const out = {
  server: client.getServerVersion(),
  protocol: transport.protocolVersion ?? null,
  tools: tools.map((t) => ({ name: t.name, required: t.inputSchema?.required ?? [] })),
  leaderboard: await call("leaderboard", {}),
  notebook_append: await call("notebook_append", { text: "from the TypeScript SDK" }),
  notebook_read: await call("notebook_read", {}),
  search_findings: await call("search_findings", { query: "typescript", limit: 5 }),
  submit_predictions: await call("submit_predictions", { seeds, note: "ts client" }),
  forbidden_field: await call("notebook_append", { text: "x", extra: 1 }),
};
out.leaderboard_after = await call("leaderboard", {});
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
