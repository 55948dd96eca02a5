/** The Warren MCP server: the SDK's McpServer with Warren's tools, over any Backend. */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Backend } from "../sdk/backend.js";
import { AGENT_TOOL_NAMES, registerAgentTools } from "./agent-tools.js";
import { TOOL_NAMES as SANDBOX_TOOL_NAMES, registerTools, type ToolOptions } from "./tools.js";

export type { ToolOptions } from "./tools.js";

/** Names of every tool, in the order they are registered. */
export const TOOL_NAMES = [...SANDBOX_TOOL_NAMES, ...AGENT_TOOL_NAMES] as const;

/** How to build the MCP server. */
export type McpServerOptions = ToolOptions;

/** Name and version the server announces to clients. */
export const SERVER_INFO = { name: "warren", version: "0.1.0" } as const;

const INSTRUCTIONS = [
  "Warren runs commands in isolated Linux sandboxes on this machine.",
  "For one command, call sandbox_run. For a session, call sandbox_create, then sandbox_exec and",
  "file_write/file_read/file_list with its id, and sandbox_delete when done.",
  "A non-zero exit code is a normal result; errors carry a code and a hint on how to fix them.",
  "Installed agent packages (agent_list) run in a fresh sandbox each with agent_run.",
].join(" ");

/**
 * Creates an MCP server exposing Warren's tools, each a call into `backend`. Connect it to a
 * transport (stdio or streamable HTTP); closing it does not close the backend.
 */
export function createMcpServer(backend: Backend, options: McpServerOptions = {}): McpServer {
  const server = new McpServer(SERVER_INFO, {
    capabilities: { tools: {} },
    instructions: INSTRUCTIONS,
  });
  const sandboxTools = registerTools(server, backend, options);
  const agentTools = registerAgentTools(server, backend);
  idle.set(server, async () => {
    await sandboxTools();
    await agentTools();
  });
  return server;
}

const idle = new WeakMap<McpServer, () => Promise<void>>();

/**
 * Resolves once no tool call of `server` is running. Close the server first (its in-flight calls
 * are aborted), then wait for this before closing the backend.
 */
export async function whenIdle(server: McpServer): Promise<void> {
  await idle.get(server)?.();
}
