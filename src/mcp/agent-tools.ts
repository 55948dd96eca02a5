/**
 * The agent tools: list the installed agent packages, and run one (a fresh sandbox, the input on
 * stdin, the run record back). Installing packages is the operator's job (`warren agent add`).
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import type { AgentRun } from "../service/index.js";
import type { Backend } from "../sdk/backend.js";
import { mutating, ok, readOnly, safeIn, type Inflight } from "./result.js";
import { errorSchema, outputSchema } from "./schemas.js";
import { streamOf } from "./support.js";

/** Names of the agent tools, in the order they are registered. */
export const AGENT_TOOL_NAMES = ["agent_list", "agent_run"] as const;

const ms = () => z.number().nullable();

/** A run record (service `AgentRun`). */
const agentRunSchema = z
  .object({
    id: z.string().describe("Run id (run- and 12 hex digits)"),
    agent: z.string(),
    version: z.string().describe("Content hash of the package that ran"),
    status: z.enum(["running", "succeeded", "failed"]),
    exitCode: z
      .number()
      .nullable()
      .describe("The entrypoint's exit code; null when it did not end on its own"),
    timedOut: z.boolean(),
    sandboxId: z.string().nullable(),
    stdout: z.string(),
    stderr: z.string(),
    truncated: z.boolean(),
    inputBytes: z.number(),
    resultDir: z.string().nullable().describe("Where the run's workspace was copied to, on the Warren host"),
    error: z.string().nullable().describe("Why the run failed"),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    durationMs: ms(),
    timings: z
      .object({ createMs: ms(), uploadMs: ms(), execMs: ms(), collectMs: ms() })
      .passthrough()
      .describe("Milliseconds spent creating the sandbox, copying the package in, running, copying out"),
  })
  .passthrough();

const agentInfoSchema = z
  .object({
    name: z.string(),
    version: z.string(),
    description: z.string(),
    manifest: z.record(z.unknown()).describe("The package's warren-agent.json with defaults applied"),
    sizeBytes: z.number(),
    fileCount: z.number(),
    addedAt: z.string(),
  })
  .passthrough();

/** Short text for a run. */
export function describeRun(r: AgentRun): string {
  const code = r.exitCode === null ? "" : ` (exit code ${r.exitCode}${r.timedOut ? ", timed out" : ""})`;
  const parts = [
    `run ${r.id} of ${r.agent} ${r.status}${code} in ${r.durationMs ?? "?"} ms` +
      (r.resultDir ? `; workspace copied to ${r.resultDir}` : ""),
  ];
  if (r.error) parts.push(`error: ${r.error}`);
  if (r.stdout) parts.push(`--- stdout ---\n${r.stdout.replace(/\n$/, "")}`);
  if (r.stderr) parts.push(`--- stderr ---\n${r.stderr.replace(/\n$/, "")}`);
  if (r.truncated) parts.push("(output truncated)");
  return parts.join("\n");
}

/**
 * Registers agent_list and agent_run. Returns a function that resolves once no call is running.
 */
export function registerAgentTools(server: McpServer, backend: Backend): () => Promise<void> {
  const inflight: Inflight = new Set();
  const safe = safeIn(inflight);

  server.registerTool(
    "agent_list",
    {
      title: "List agent packages",
      description:
        "The agent packages installed on this Warren (by the operator, with `warren agent add`): each one's " +
        "name, description and manifest (entrypoint, resources, network, timeout). Run one with agent_run.",
      inputSchema: {},
      outputSchema: outputSchema({ agents: z.array(agentInfoSchema) }),
      annotations: readOnly,
    },
    safe(async () => {
      const agents = await backend.listAgents();
      const lines = agents.map((a) => `${a.name}  ${a.version}  ${a.description}`);
      return ok({ agents }, lines.join("\n") || "(no agents installed)");
    }),
  );

  server.registerTool(
    "agent_run",
    {
      title: "Run an agent package",
      description:
        "Run an installed agent package in a fresh isolated sandbox: its files are copied into /workspace, its " +
        "entrypoint runs there with `input` on stdin, and the workspace it leaves is copied out on the Warren " +
        "host (resultDir). Returns the run record: status (succeeded or failed), exitCode, stdout, stderr, error. " +
        "A failed run is a normal result, not a tool error. The sandbox is released when the run ends.",
      inputSchema: {
        agent: z.string().min(1).describe("The agent's name, as listed by agent_list."),
        input: z.string().optional().describe("Text given to the agent on its standard input (UTF-8)."),
      },
      // A run's own `error` is a string (why it failed) or null; a failed call's is the error object.
      outputSchema: outputSchema(agentRunSchema.shape).extend({
        error: z
          .union([z.string(), errorSchema])
          .nullable()
          .optional()
          .describe(
            "Why the run failed (a string; null when it succeeded), or the error object when the call failed",
          ),
      }),
      annotations: { ...mutating, openWorldHint: true },
    },
    safe(async (a, extra) => {
      const run = await backend.runAgent(a.agent, { input: a.input }, streamOf(extra));
      return ok(run, describeRun(run));
    }),
  );

  return async () => {
    while (inflight.size) await Promise.allSettled([...inflight]);
  };
}
