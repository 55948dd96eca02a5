/**
 * The MCP tools: each one a thin call into the Backend, with a zod input schema and structured
 * output (`structuredContent`, plus a short text for clients that only show text). Failures come
 * back as tool errors (`isError: true`) carrying Warren's code, message and hint; a command that
 * exits non-zero is a normal result.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { toWarrenError } from "../core/errors.js";
import type { Sandbox } from "../core/types.js";
import type { Backend } from "../sdk/backend.js";
import {
  createShape,
  environmentSchema,
  execResultSchema,
  execShape,
  fileEntrySchema,
  journalEntrySchema,
  outputSchema,
  sandboxRef,
  sandboxSchema,
} from "./schemas.js";
import {
  describeExec,
  describeSandbox,
  fileBytes,
  fileMode,
  guardOptIn,
  readContent,
  refuseOptInDriver,
  streamOf,
  toArgv,
  type Extra,
} from "./support.js";

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

type Text = { type: "text"; text: string };
type ToolResult = { content: Text[]; structuredContent: Record<string, unknown>; isError?: boolean };

/** A successful result: the structured value and a short text for the model. */
function ok(value: object, text: string): ToolResult {
  return { content: [{ type: "text", text }], structuredContent: value as Record<string, unknown> };
}

/** A tool error carrying Warren's code, message, hint and details. */
export function toolError(err: unknown): ToolResult {
  const e = toWarrenError(err);
  const text = [`${e.code}: ${e.message}`, e.hint ? `hint: ${e.hint}` : ""].filter(Boolean).join("\n");
  const error = { code: e.code, message: e.message, hint: e.hint, details: e.details };
  return { content: [{ type: "text", text }], structuredContent: { error }, isError: true };
}

/** Calls still running, per set of registered tools (a server waits for them before it closes). */
type Inflight = Set<Promise<unknown>>;

/** Wraps a handler so any failure becomes a tool error, and tracks it while it runs. */
function safeIn(inflight: Inflight) {
  return <A>(fn: (args: A, extra: Extra) => Promise<ToolResult>) =>
    async (args: A, extra: Extra): Promise<ToolResult> => {
      const call = fn(args, extra).catch(toolError);
      inflight.add(call);
      try {
        return await call;
      } finally {
        inflight.delete(call);
      }
    };
}

const readOnly = { readOnlyHint: true, destructiveHint: false, openWorldHint: false };
const mutating = { readOnlyHint: false, destructiveHint: false, openWorldHint: false };

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

  server.registerTool(
    "file_read",
    {
      title: "Read a file from a sandbox",
      description:
        "Read a file inside a running sandbox. Relative paths are under /workspace. Text comes back as UTF-8; " +
        "a file that is not valid UTF-8 comes back base64-encoded (see encoding), unless you ask for one.",
      inputSchema: {
        sandbox: sandboxRef,
        path: z.string().min(1).describe("Path inside the sandbox, e.g. /workspace/out.txt or out.txt."),
        encoding: z
          .enum(["utf8", "base64"])
          .optional()
          .describe("How to return the content. Default: utf8 when the file is valid UTF-8, else base64."),
        maxBytes: z
          .number()
          .int()
          .positive()
          .optional()
          .describe("Return at most this many bytes (truncated: true when cut). Default 1048576."),
      },
      outputSchema: outputSchema({
        path: z.string(),
        encoding: z.enum(["utf8", "base64"]),
        content: z.string(),
        sizeBytes: z.number().describe("Size of the whole file"),
        truncated: z.boolean(),
      }),
      annotations: readOnly,
    },
    safe(async (a) => {
      await guard(a.sandbox);
      const data = await backend.readFile(a.sandbox, a.path);
      const r = readContent(data, a.encoding, a.maxBytes ?? 1048576);
      return ok({ path: a.path, ...r }, r.content);
    }),
  );

  server.registerTool(
    "file_write",
    {
      title: "Write a file into a sandbox",
      description:
        "Create or replace a file inside a running sandbox (atomically; parent directories are created). " +
        "Relative paths are under /workspace. Content is UTF-8 text unless encoding is base64.",
      inputSchema: {
        sandbox: sandboxRef,
        path: z.string().min(1).describe("Path inside the sandbox, e.g. /workspace/main.py or main.py."),
        content: z.string().describe("The file's new content."),
        encoding: z.enum(["utf8", "base64"]).optional().describe("How content is encoded. Default utf8."),
        mode: z
          .string()
          .optional()
          .describe(
            'Permission bits in octal, e.g. "755" for a script. Default: kept, or 644 for a new file.',
          ),
      },
      outputSchema: outputSchema(fileEntrySchema.shape),
      annotations: { ...mutating, idempotentHint: true },
    },
    safe(async (a) => {
      await guard(a.sandbox);
      const e = await backend.writeFile(a.sandbox, a.path, fileBytes(a.content, a.encoding), {
        mode: fileMode(a.mode),
      });
      return ok(e, `wrote ${e.sizeBytes} bytes to ${e.path} (mode ${e.mode.toString(8)})`);
    }),
  );

  server.registerTool(
    "file_list",
    {
      title: "List files in a sandbox",
      description:
        "List a directory inside a running sandbox, sorted by path: each entry's type, size, mode and " +
        "modification time. depth 2 or more also lists subdirectories' contents.",
      inputSchema: {
        sandbox: sandboxRef,
        path: z.string().optional().describe("Directory inside the sandbox. Default /workspace."),
        depth: z
          .number()
          .int()
          .optional()
          .describe("Levels to descend, 1-64 (1 = only its entries). Default 1."),
      },
      outputSchema: outputSchema({ entries: z.array(fileEntrySchema) }),
      annotations: readOnly,
    },
    safe(async (a) => {
      await guard(a.sandbox);
      const entries = await backend.listFiles(a.sandbox, a.path ?? "/workspace", { depth: a.depth });
      const lines = entries.map(
        (e) =>
          `${e.type.padEnd(9)} ${e.mode.toString(8).padStart(4, "0")} ${String(e.sizeBytes).padStart(9)} ${e.path}`,
      );
      return ok({ entries }, lines.join("\n") || "(empty)");
    }),
  );

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
