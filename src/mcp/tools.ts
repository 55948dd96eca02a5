/**
 * The MCP tools: each one a thin call into the Backend, with a zod input schema and structured
 * output (`structuredContent`, plus a short text for clients that only show text). Failures come
 * back as tool errors (`isError: true`) carrying Warren's code, message and hint; a command that
 * exits non-zero is a normal result.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import type { Sandbox } from "../core/types.js";
import type { Backend } from "../sdk/backend.js";
import {
  createShape,
  environmentSchema,
  execResultSchema,
  execShape,
  journalEntrySchema,
  outputSchema,
  sandboxRef,
  sandboxSchema,
} from "./schemas.js";
import { registerFileTools } from "./file-tools.js";
import { mutating, ok, readOnly, safeIn, type Inflight } from "./result.js";
import { describeExec, describeSandbox, guardOptIn, refuseOptInDriver, streamOf, toArgv } from "./support.js";

/** What the server allows beyond the defaults. */
export interface ToolOptions {
  /**
   * Allow drivers that give no isolation (the host driver). Only the operator sets this, when
   * starting the server; no tool argument can.
   * @default false
   */
  allowHost?: boolean;
}

/** Names of every tool, in the order they are registered. */
export const TOOL_NAMES = [
  "sandbox_run",
  "sandbox_create",
  "sandbox_exec",
  "sandbox_list",
  "sandbox_status",
  "sandbox_logs",
  "sandbox_stop",
  "sandbox_start",
  "sandbox_delete",
  "file_read",
  "file_write",
  "file_list",
  "environment_list",
] as const;

/**
 * Registers every tool on `server`, each a call into `backend`. Returns a function that resolves
 * once no call is running (after a transport closed, in-flight commands are aborted and settle).
 */
export function registerTools(
  server: McpServer,
  backend: Backend,
  options: ToolOptions = {},
): () => Promise<void> {
  const inflight: Inflight = new Set();
  const safe = safeIn(inflight);
  const allowHost = options.allowHost === true;
  const guard = (ref: string) => (allowHost ? Promise.resolve() : guardOptIn(backend, ref));
  const sandboxOut = outputSchema(sandboxSchema.shape);
  const lifecycle = (
    name: string,
    description: string,
    call: (ref: string) => Promise<Sandbox>,
    annotations: Record<string, boolean>,
  ) =>
    server.registerTool(
      name,
      { description, inputSchema: { sandbox: sandboxRef }, outputSchema: sandboxOut, annotations },
      safe(async ({ sandbox }: { sandbox: string }) => {
        const s = await call(sandbox);
        return ok(s, describeSandbox(s));
      }),
    );

  server.registerTool(
    "sandbox_run",
    {
      title: "Run one command in a fresh sandbox",
      description:
        "One-shot: create an isolated sandbox, run one command in it, and delete it (whatever happens). " +
        "Use it for a single self-contained command; nothing persists afterwards. To run several commands " +
        "that share files, use sandbox_create, then sandbox_exec, then sandbox_delete. Returns exitCode, " +
        "stdout and stderr; a non-zero exitCode is a normal result, not an error.",
      inputSchema: { ...execShape, ...createShape },
      outputSchema: outputSchema(execResultSchema.shape),
      annotations: { ...mutating, openWorldHint: true },
    },
    safe(async (a, extra) => {
      await refuseOptInDriver(backend, a.driver, allowHost);
      const r = await backend.run(
        {
          driver: a.driver,
          environment: a.environment,
          vcpuCount: a.vcpuCount,
          memoryMiB: a.memoryMiB,
          pidsMax: a.pidsMax,
          network: a.network,
          ttlSeconds: a.ttlSeconds,
          labels: a.labels,
          onTimeout: "delete",
          allowHost,
        },
        { argv: toArgv(a.command), cwd: a.cwd, env: a.env, stdin: a.stdin, timeoutMs: a.timeoutMs },
        streamOf(extra),
      );
      return ok(r, describeExec(r));
    }),
  );

  server.registerTool(
    "sandbox_create",
    {
      title: "Create a sandbox",
      description:
        "Create and start an isolated Linux sandbox that lives until deleted or its TTL runs out. Its " +
        "/workspace directory persists across sandbox_stop/sandbox_start. Run commands with sandbox_exec and " +
        "move files with file_write/file_read, passing the returned id (or the name). By default it has no " +
        'network (only loopback); pass network: "host" to reach the internet. Delete it with sandbox_delete ' +
        "when done.",
      inputSchema: {
        name: z
          .string()
          .optional()
          .describe("Name, unique among live sandboxes: 1-128 of A-Z a-z 0-9 . _ -. Default: from the id."),
        ...createShape,
        onTimeout: z
          .enum(["stop", "delete"])
          .optional()
          .describe(
            'What happens when the TTL runs out: "stop" (keeps the workspace; the default) or "delete".',
          ),
        env: z
          .record(z.string())
          .optional()
          .describe("Environment variables set for every command in this sandbox."),
      },
      outputSchema: sandboxOut,
      annotations: { ...mutating, openWorldHint: true },
    },
    safe(async (a) => {
      await refuseOptInDriver(backend, a.driver, allowHost);
      const s = await backend.createSandbox({ ...a, allowHost });
      return ok(s, describeSandbox(s));
    }),
  );

  server.registerTool(
    "sandbox_exec",
    {
      title: "Run a command in a sandbox",
      description:
        "Run a command in a running sandbox and wait for it. A string command runs through /bin/sh -c " +
        "(so pipes and && work); an array is run as-is. Commands run as an unprivileged user, in /workspace " +
        "by default. Returns exitCode, stdout and stderr; a non-zero exitCode is a normal result (read " +
        "stderr), not an error. Every command is recorded in the sandbox's journal (sandbox_logs).",
      inputSchema: { sandbox: sandboxRef, ...execShape },
      outputSchema: outputSchema(execResultSchema.shape),
      annotations: { ...mutating, openWorldHint: true },
    },
    safe(async (a, extra) => {
      await guard(a.sandbox);
      const r = await backend.exec(
        a.sandbox,
        { argv: toArgv(a.command), cwd: a.cwd, env: a.env, stdin: a.stdin, timeoutMs: a.timeoutMs },
        streamOf(extra),
      );
      return ok(r, describeExec(r));
    }),
  );

  server.registerTool(
    "sandbox_list",
    {
      title: "List sandboxes",
      description:
        "List sandboxes, newest first: running, stopped and failed ones (deleted ones too with all: true). " +
        "Filter by labels; every label given must match.",
      inputSchema: {
        labels: z
          .record(z.string())
          .optional()
          .describe('Only sandboxes with all these labels, e.g. {"task": "build"}.'),
        all: z.boolean().optional().describe("Include deleted sandboxes. Default false."),
      },
      outputSchema: outputSchema({ sandboxes: z.array(sandboxSchema) }),
      annotations: readOnly,
    },
    safe(async (a) => {
      const sandboxes = await backend.listSandboxes({ labels: a.labels, all: a.all });
      const lines = sandboxes.map((s) => `${s.id}  ${s.name}  ${s.state}  ${s.driver}  ${s.environment}`);
      return ok({ sandboxes }, [`${sandboxes.length} sandbox(es)`, ...lines].join("\n"));
    }),
  );

  lifecycle(
    "sandbox_status",
    "Show one sandbox: its state (creating, running, stopped, deleted, failed), driver and isolation, " +
      "resources, network, labels, when its TTL runs out, and its last error if it failed.",
    (ref) => backend.getSandbox(ref),
    readOnly,
  );

  server.registerTool(
    "sandbox_logs",
    {
      title: "Show a sandbox's command journal",
      description:
        "The sandbox's journal: every command run in it, in order, with its status (completed, timed_out, " +
        "failed, lost, running), exit code, duration and output. Deleted sandboxes keep their journal. " +
        "Optionally also the driver's own log (start-up and infrastructure messages, not command output), " +
        "useful when a sandbox failed to start.",
      inputSchema: {
        sandbox: sandboxRef,
        sinceSequence: z.number().int().optional().describe("Only entries after this sequence number."),
        limit: z.number().int().positive().optional().describe("At most this many entries."),
        includeOutput: z.boolean().optional().describe("Include each command's stdout/stderr. Default true."),
        driverLog: z.boolean().optional().describe("Also return the driver's log. Default false."),
      },
      outputSchema: outputSchema({
        entries: z.array(journalEntrySchema),
        driverLog: z.string().optional().describe("Only when asked for"),
      }),
      annotations: readOnly,
    },
    safe(async (a) => {
      let entries = await backend.journal(a.sandbox, { sinceSequence: a.sinceSequence, limit: a.limit });
      if (a.includeOutput === false) entries = entries.map((e) => ({ ...e, stdout: "", stderr: "" }));
      const lines = entries.flatMap((e) => {
        const code = e.exitCode === null ? "" : ` exit=${e.exitCode}`;
        const head = `#${e.sequence} [${e.status}${code}] ${JSON.stringify(e.argv)}`;
        const out = (text: string, mark: string) =>
          text
            .split("\n")
            .filter(Boolean)
            .map((l) => `  ${mark} ${l}`);
        return [
          head,
          ...(e.error ? [`  error: ${e.error}`] : []),
          ...out(e.stdout, "|"),
          ...out(e.stderr, "!"),
        ];
      });
      const driverLog = a.driverLog ? await backend.driverLog(a.sandbox) : undefined;
      if (driverLog !== undefined) lines.push("--- driver log ---", driverLog);
      return ok({ entries, driverLog }, lines.join("\n") || "(no commands yet)");
    }),
  );

  lifecycle(
    "sandbox_stop",
    "Stop a running sandbox: its processes end, its /workspace is kept. Start it again with sandbox_start.",
    (ref) => backend.stopSandbox(ref),
    mutating,
  );
  lifecycle(
    "sandbox_start",
    "Start a stopped sandbox again, with the /workspace it had; its TTL starts over.",
    async (ref) => {
      await guard(ref);
      return backend.startSandbox(ref);
    },
    mutating,
  );
  lifecycle(
    "sandbox_delete",
    "Delete a sandbox and its /workspace for good (its journal stays readable with sandbox_logs). " +
      "Deleting a deleted sandbox is fine.",
    (ref) => backend.deleteSandbox(ref),
    { ...mutating, destructiveHint: true, idempotentHint: true },
  );

  registerFileTools(server, backend, { safe, guard });

  server.registerTool(
    "environment_list",
    {
      title: "List environments",
      description:
        'The root filesystems a sandbox can use (the environment option of sandbox_create/sandbox_run): "host" ' +
        "(the host's /usr, read-only) is always there; others (e.g. debian-bookworm) must be installed by the " +
        "operator (warren env pull) before use.",
      inputSchema: {},
      outputSchema: outputSchema({ environments: z.array(environmentSchema) }),
      annotations: readOnly,
    },
    safe(async () => {
      const environments = await backend.listEnvironments();
      const lines = environments.map(
        (e) => `${e.name}  ${e.installed ? "installed" : "not installed"}  ${e.description}`,
      );
      return ok({ environments }, lines.join("\n"));
    }),
  );
  return async () => {
    while (inflight.size) await Promise.allSettled([...inflight]);
  };
}
