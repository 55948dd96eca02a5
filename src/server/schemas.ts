/**
 * Zod schemas of the API's data: they validate requests and generate the OpenAPI document, so the
 * two cannot drift. The model schemas are checked at compile time against the core types (the
 * `Same` assertions at the end), so neither can the wire format and the TypeScript types.
 */
import { z } from "zod/v4";
import { LIMITS } from "../core/names.js";
import type { DriverReport, BackendInfo } from "../sdk/backend.js";
import type { EnvironmentInfo, ReapAction, CreateOptions } from "../service/index.js";
import type { ExecResult, FileEntry, JournalEntry, ProcessInfo, Sandbox } from "../core/types.js";

/** Registry of named schemas: each becomes `#/components/schemas/<id>` in the OpenAPI document. */
export const apiRegistry = z.registry<{ id?: string; description?: string }>();

/** Names a schema (a component of the OpenAPI document). */
export function named<T extends z.ZodType>(id: string, schema: T, description?: string): T {
  apiRegistry.add(schema as z.ZodType, { id, description });
  return schema;
}

/** Describes a schema in the OpenAPI document. */
export function doc<T extends z.ZodType>(schema: T, description: string): T {
  apiRegistry.add(schema as z.ZodType, { description });
  return schema;
}

const stringMap = z.record(z.string(), z.string());
const isoTime = doc(z.string(), "ISO 8601 time");

export const SandboxState = z.enum(["creating", "running", "stopped", "deleted", "failed"]);
const Isolation = z.enum(["none", "namespace", "container", "vm"]);
const Network = z.enum(["none", "host"]);
const OnTimeout = z.enum(["stop", "delete"]);

export const SandboxSchema = named(
  "Sandbox",
  z.object({
    id: z.string(),
    name: z.string(),
    driver: z.string(),
    environment: z.string(),
    state: SandboxState,
    isolation: Isolation,
    resources: z.object({ vcpuCount: z.number(), memoryMiB: z.number(), pidsMax: z.number() }),
    network: Network,
    labels: stringMap,
    env: stringMap,
    ttlSeconds: z.number(),
    onTimeout: OnTimeout,
    workspaceDir: doc(z.string(), "host directory mounted at /workspace"),
    createdAt: isoTime,
    updatedAt: isoTime,
    startedAt: isoTime.nullable(),
    expiresAt: isoTime.nullable(),
    lastError: z.string().nullable(),
  }),
  "A sandbox",
);

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const CreateOptionsSchema = named(
  "CreateOptions",
  z
    .strictObject({
      name: doc(z.string(), "1-128 of A-Z a-z 0-9 . _ -, starting alphanumeric; unique among live sandboxes"),
      driver: doc(z.string(), "driver name; default: the server's default driver"),
      environment: doc(z.string(), "environment (root filesystem); default: host"),
      vcpuCount: int(LIMITS.vcpuCount.min, LIMITS.vcpuCount.max),
      memoryMiB: int(LIMITS.memoryMiB.min, LIMITS.memoryMiB.max),
      pidsMax: int(LIMITS.pidsMax.min, LIMITS.pidsMax.max),
      network: Network,
      ttlSeconds: int(LIMITS.ttlSeconds.min, LIMITS.ttlSeconds.max),
      onTimeout: OnTimeout,
      labels: stringMap,
      env: doc(stringMap, "environment variables for every command"),
      allowHost: doc(z.boolean(), "opt in to drivers without isolation (host)"),
      healthTimeoutMs: int(100, 600000),
    })
    .partial(),
  "Options of a new sandbox; every field is optional",
);

export const ExecResultSchema = named(
  "ExecResult",
  z.object({
    sandboxId: z.string(),
    sequence: doc(z.number(), "the command's journal sequence number"),
    exitCode: doc(z.number(), "128+N when killed by signal N; 124 when timed out"),
    stdout: z.string(),
    stderr: z.string(),
    durationMs: z.number(),
    timedOut: z.boolean(),
    truncated: doc(z.boolean(), "output was cut at the server's maxOutputBytes"),
    isolation: Isolation,
  }),
  "Result of a command; a non-zero exit code is a result, not an error",
);

export const JournalEntrySchema = named(
  "JournalEntry",
  z.object({
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
    startedAt: isoTime,
    finishedAt: isoTime.nullable(),
    durationMs: z.number().nullable(),
    error: z.string().nullable(),
    processId: doc(z.string().nullable(), "set when the entry is a background process"),
  }),
  "One command in a sandbox's journal",
);

export const FileEntrySchema = named(
  "FileEntry",
  z.object({
    path: z.string(),
    name: z.string(),
    type: z.enum(["file", "directory", "symlink", "other"]),
    sizeBytes: z.number(),
    mode: doc(z.number(), "permission bits as a number, e.g. 420 for 0o644"),
    modifiedAt: isoTime,
    linkTarget: z.string().nullable(),
  }),
  "One entry of a sandbox's file system",
);

export const ProcessInfoSchema = named(
  "ProcessInfo",
  z.object({
    sandboxId: z.string(),
    processId: z.string(),
    sequence: z.number(),
    argv: z.array(z.string()),
    cwd: z.string(),
    state: z.enum(["running", "exited", "lost"]),
    exitCode: z.number().nullable(),
    startedAt: isoTime,
    finishedAt: isoTime.nullable(),
    stdinOpen: z.boolean(),
  }),
  "A background process",
);

/** How bytes travel inside JSON: UTF-8 text when they are valid UTF-8, else base64. */
export const Encoding = doc(z.enum(["utf8", "base64"]), "how `data` (or stdout/stderr) is encoded");

export const ProcessOutputSchema = named(
  "ProcessOutput",
  z.object({
    stdout: z.string(),
    stderr: z.string(),
    encoding: Encoding,
    stdoutOffset: doc(z.number(), "pass back to get only newer output"),
    stderrOffset: z.number(),
    state: z.enum(["running", "exited", "lost"]),
    exitCode: z.number().nullable(),
  }),
  "Output of a background process from byte offsets",
);

export const EnvironmentInfoSchema = named(
  "EnvironmentInfo",
  z.object({
    name: z.string(),
    description: z.string(),
    version: z.string(),
    source: z.string(),
    installed: z.boolean(),
    sizeBytes: z.number().nullable(),
    checksum: z.string().nullable(),
    rootfsPath: z.string().nullable(),
    builtAt: isoTime.nullable(),
  }),
  "An environment (root filesystem) of the catalog",
);

export const DriverReportSchema = named(
  "DriverReport",
  z.object({
    driver: z.string(),
    description: z.string(),
    default: z.boolean(),
    requiresOptIn: z.boolean(),
    capabilities: z.object({
      isolation: Isolation,
      networkPolicies: z.array(Network),
      limits: z.object({ memory: z.boolean(), pids: z.boolean(), cpu: z.boolean() }),
      rootfsEnvironments: z.boolean(),
      persistentInstances: z.boolean(),
      posixShell: z.boolean(),
    }),
    usable: z.boolean(),
    reason: z.string(),
    hint: z.string().optional(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
  "Whether a driver is usable on the server's host, and why not",
);

export const ReapActionSchema = named(
  "ReapAction",
  z.object({ sandboxId: z.string(), name: z.string(), action: z.enum(["stopped", "deleted"]) }),
);

export const BackendInfoSchema = named(
  "ServerInfo",
  z.object({
    kind: z.enum(["local", "remote"]),
    location: doc(z.string(), "the server's state directory"),
    defaultDriver: z.string(),
  }),
);

export const ErrorSchema = named(
  "Error",
  z.object({
    error: z.object({
      code: z.enum([
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "INVALID_ARGUMENT",
        "INVALID_STATE",
        "NOT_SUPPORTED",
        "LIMIT_EXCEEDED",
        "TIMEOUT",
        "DRIVER_UNAVAILABLE",
        "UNAUTHORIZED",
        "INTERNAL",
      ]),
      message: z.string(),
      hint: doc(z.string(), "how to fix the problem").optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  }),
  "Every error response (and the `error` line of a stream)",
);

// Compile-time checks: each schema's type is exactly the core type it puts on the wire.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const assertSame = <T extends true>(): T => true as T;
void [
  assertSame<Same<z.output<typeof SandboxSchema>, Sandbox>>(),
  assertSame<Same<z.output<typeof CreateOptionsSchema>, CreateOptions>>(),
  assertSame<Same<z.output<typeof ExecResultSchema>, ExecResult>>(),
  assertSame<Same<z.output<typeof JournalEntrySchema>, JournalEntry>>(),
  assertSame<Same<z.output<typeof FileEntrySchema>, FileEntry>>(),
  assertSame<Same<z.output<typeof ProcessInfoSchema>, ProcessInfo>>(),
  assertSame<Same<z.output<typeof EnvironmentInfoSchema>, EnvironmentInfo>>(),
  assertSame<Same<z.output<typeof DriverReportSchema>, DriverReport>>(),
  assertSame<Same<z.output<typeof ReapActionSchema>, ReapAction>>(),
  assertSame<Same<z.output<typeof BackendInfoSchema>, BackendInfo>>(),
];
