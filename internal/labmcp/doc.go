// Package labmcp owns the lab's Model Context Protocol face: an MCP server
// (streamable HTTP, mounted at /mcp on the lab's TCP address and Unix
// socket) whose tools are the researcher operations of the REST API, and a
// stdio proxy (`aar mcp`) that re-exposes those tools inside a sandbox and
// adds the ones that need the sandbox's files (submit_files,
// push_workspace, pull_workspace).
//
// The server authenticates every HTTP request by its bearer token before any
// MCP processing and calls the lab's typed methods with the caller's
// identity, so a tool has exactly the scope of its REST route. It never
// decides what a caller may see: the lab does. A tool error carries only the
// lab's public message, never a label, a server path or a secret.
package labmcp
