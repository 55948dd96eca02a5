/**
 * Zod schemas of the MCP tools' inputs and outputs. Outputs mirror the core types (`Sandbox`,
 * `ExecResult`, `JournalEntry`, `FileEntry`, `EnvironmentInfo`) so that a tool's structured
 * content is what `warren <verb> --json` prints. Objects pass unknown fields through, so a field
 * added to a core type later does not break a client that validates against the advertised schema.
 */
import { z } from "zod";

// ---------------------------------------------------------------------------------------------
// Inputs

/** The sandbox a tool acts on. */
export const sandboxRef = z
  .string()
  .min(1)
  .describe('Sandbox id (e.g. "sbx-0123456789ab") or name, as returned by sandbox_create or sandbox_list.');

/** A command: a string runs through `/bin/sh -c`, an array is the argv itself. */
export const command = z
  .union([z.string().min(1), z.array(z.string()).min(1)])
  .describe(
    'The command. A string runs through /bin/sh -c (pipes, redirects, && work), e.g. "ls -la | head". ' +
      'An array is the exact argv with no shell, e.g. ["python3", "-c", "print(1)"].',
  );

/** Options of one command, shared by sandbox_exec and sandbox_run. */
export const execShape = {
  command,
  cwd: z.string().optional().describe("Working directory inside the sandbox (absolute). Default /workspace."),
  env: z
    .record(z.string())
    .optional()
    .describe('Extra environment variables for this command only, e.g. {"DEBUG": "1"}.'),
  stdin: z.string().optional().describe("Text passed to the command's standard input (UTF-8)."),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .optional()
    .describe(
      "Kill the command (and everything it started) after this many milliseconds; the result then has " +
        "timedOut: true. Separate from the sandbox's lifetime. Default: no limit.",
    ),
};

/** What a caller may choose when creating a sandbox (never the host opt-in: that is the server's). */
export const createShape = {
  driver: z
    .string()
    .optional()
    .describe(
      'Driver: "bwrap" (namespaces + cgroups, the usual default) or "fake" (in-memory, for tests). ' +
        '"host" runs commands with NO isolation and works only if the server was started with --allow-host. ' +
        "Default: the server's configured driver (usually bwrap).",
    ),
  environment: z
    .string()
    .optional()
    .describe(
      'Root filesystem: "host" (the host\'s /usr, read-only; the default) or an installed environment such as ' +
        '"debian-bookworm" (see environment_list).',
    ),
  vcpuCount: z.number().int().optional().describe("CPU quota in CPUs, 1-8. Default 1."),
  memoryMiB: z.number().int().optional().describe("Memory limit in MiB, 128-32768. Default 512."),
  pidsMax: z.number().int().optional().describe("Most processes and threads, 16-65536. Default 512."),
  network: z
    .enum(["none", "host"])
    .optional()
    .describe(
      '"none" (only loopback; the default) or "host" (the host\'s network, e.g. to install packages).',
    ),
  ttlSeconds: z
    .number()
    .int()
    .optional()
    .describe("Lifetime in seconds, 60-86400; then the sandbox is stopped (or deleted). Default 3600."),
  labels: z
    .record(z.string())
    .optional()
    .describe('Labels to find the sandbox by later (sandbox_list filters on them), e.g. {"task": "build"}.'),
};

// ---------------------------------------------------------------------------------------------
// Outputs

// A fresh instance per field: the JSON-schema converter turns a reused instance into a `$ref`.
const isoTime = () => z.string().describe("ISO 8601 time");

/** A sandbox (core `Sandbox`). */
export const sandboxSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    driver: z.string(),
    environment: z.string(),
    state: z.enum(["creating", "running", "stopped", "deleted", "failed"]),
    isolation: z.enum(["none", "namespace", "container", "vm"]),
    resources: z.object({ vcpuCount: z.number(), memoryMiB: z.number(), pidsMax: z.number() }).passthrough(),
    network: z.enum(["none", "host"]),
    labels: z.record(z.string()),
    env: z.record(z.string()),
    ttlSeconds: z.number(),
    onTimeout: z.enum(["stop", "delete"]),
    workspaceDir: z.string().describe("Host directory mounted at /workspace"),
    createdAt: isoTime(),
    updatedAt: isoTime(),
    startedAt: isoTime().nullable(),
    expiresAt: isoTime().nullable().describe("When the TTL runs out, while running"),
    lastError: z.string().nullable(),
  })
  .passthrough();

/** The result of one command (core `ExecResult`). */
export const execResultSchema = z
  .object({
    sandboxId: z.string(),
    sequence: z.number().describe("Its entry in the sandbox's journal (sandbox_logs)"),
    exitCode: z.number().describe("The command's exit status; non-zero is a normal result"),
    stdout: z.string(),
    stderr: z.string(),
    durationMs: z.number(),
    timedOut: z.boolean().describe("Killed because timeoutMs ran out"),
    truncated: z.boolean().describe("Output was longer than the server keeps and was cut"),
    isolation: z.enum(["none", "namespace", "container", "vm"]),
  })
  .passthrough();

/** One journal entry (core `JournalEntry`). */
export const journalEntrySchema = z
  .object({
    sandboxId: z.string(),
    sequence: z.number(),
    argv: z.array(z.string()),
    cwd: z.string(),
    status: z.enum(["running", "completed", "timed_out", "lost", "failed"]),
    exitCode: z.number().nullable(),
    stdout: z.string(),
    stderr: z.string(),
    truncated: z.boolean(),
    timedOut: z.boolean(),
    startedAt: isoTime(),
    finishedAt: isoTime().nullable(),
    durationMs: z.number().nullable(),
    error: z.string().nullable(),
    processId: z.string().nullable(),
  })
  .passthrough();

/** One file-system entry (core `FileEntry`). */
export const fileEntrySchema = z
  .object({
    path: z.string().describe("Path inside the sandbox"),
    name: z.string(),
    type: z.enum(["file", "directory", "symlink", "other"]),
    sizeBytes: z.number(),
    mode: z.number().describe("Permission bits as a number (e.g. 420 = 0o644)"),
    modifiedAt: isoTime(),
    linkTarget: z.string().nullable(),
  })
  .passthrough();

/** An environment (service `EnvironmentInfo`). */
export const environmentSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    version: z.string(),
    source: z.string(),
    installed: z.boolean(),
    sizeBytes: z.number().nullable(),
    checksum: z.string().nullable(),
    rootfsPath: z.string().nullable(),
    builtAt: isoTime().nullable(),
  })
  .passthrough();

/** A failed call: what `warren --json` prints as `{"error": ...}`. */
export const errorSchema = z
  .object({
    code: z.string().describe("Stable code: NOT_FOUND, INVALID_ARGUMENT, INVALID_STATE, TIMEOUT, ..."),
    message: z.string(),
    hint: z.string().optional().describe("How to fix it"),
    details: z.record(z.unknown()).optional(),
  })
  .passthrough();

/**
 * The output schema of a tool: on success the result's fields (all present), on failure only
 * `error`. Result fields are optional in the schema only because a tool error carries
 * `{ error }` as its structured content and must still match the tool's output schema.
 */
export function outputSchema<T extends z.ZodRawShape>(shape: T) {
  return z
    .object(shape)
    .partial()
    .extend({ error: errorSchema.optional().describe("Set (alone) when the call failed") })
    .passthrough();
}
