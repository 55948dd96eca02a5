/**
 * One agent run, start to end:
 *
 * 1. a `running` record is written (owned by this process);
 * 2. a sandbox is created through the normal create path (so through the pool), labelled with
 *    the agent and the run, with a TTL past the run's timeout so a crash cannot leak it for long;
 * 3. the package is unpacked into /workspace;
 * 4. the entrypoint runs in /workspace (journaled like any command), the input on its stdin, its
 *    output streamed to the callbacks;
 * 5. the sandbox is checked: a sandbox that was stopped or whose processes died fails the run
 *    with the reason, and is deleted, never reused;
 * 6. otherwise /workspace is copied out to `<stateDir>/agent-runs/<run id>/`;
 * 7. the record is completed and the sandbox released (deleted, or handed back for the agent's
 *    next run when its manifest says `reuse` and the run succeeded).
 *
 * A failure before the entrypoint starts (steps 2-3) is thrown, after the run is recorded as
 * failed; from step 4 on, every outcome is a run record.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { WarrenConfig } from "../core/config.js";
import { toWarrenError, type WarrenError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import type { ProcessIdentity } from "../core/proc.js";
import { NO_TIMINGS, type AgentRun, type AgentRunTimings, type AgentTables } from "../core/store/agents.js";
import type { ExecResult, Sandbox } from "../core/types.js";
import { MAX_TIMEOUT_SECONDS } from "./agents-manifest.js";
import { packageTar, type AgentPackage } from "./agents-package.js";
import { extractEntries, readTar } from "./agents-tar.js";
import type { FileService } from "./files.js";
import type { CreateOptions } from "./options.js";
import type { SandboxService } from "./sandbox-service.js";

/** Input and streaming of a run. */
export interface RunAgentOptions {
  /** Given to the entrypoint on stdin (then closed). @default empty */
  input?: string | Uint8Array;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Aborting kills the entrypoint; the run is recorded as failed. */
  signal?: AbortSignal;
}

/** Gives a run's sandbox back: delete it, or (reusable) hand it to the agent's next run. */
export type SandboxRelease = (sandboxId: string, o: { reusable: boolean; agent: string }) => Promise<void>;

/** What a run needs. */
export interface RunContext {
  config: Readonly<WarrenConfig>;
  sandboxes: SandboxService;
  files: FileService;
  log: Logger;
  tables: AgentTables;
  owner: ProcessIdentity;
  resultsDir: string;
  release: SandboxRelease;
}

/** Where the package goes and where the entrypoint runs. */
export const WORKSPACE = "/workspace";
/** Labels of a run's sandbox. */
export const AGENT_LABEL = "warren.agent";
export const RUN_LABEL = "warren.run";

/** A new run id: `run-` and 12 hex digits. */
export function newRunId(): string {
  return `run-${randomBytes(6).toString("hex")}`;
}

/** The create options of a run's sandbox. */
export function sandboxOptions(pkg: AgentPackage, runId: string): CreateOptions {
  const m = pkg.manifest;
  const o: CreateOptions = {
    name: runId,
    ...m.resources,
    network: m.network,
    env: m.env,
    // Past the run's timeout, with time to copy the workspace out: a sandbox orphaned by a crash
    // goes away on its own.
    ttlSeconds: Math.max(60, Math.min(m.timeoutSeconds, MAX_TIMEOUT_SECONDS) + 600),
    onTimeout: "delete",
    labels: { [AGENT_LABEL]: m.name, [RUN_LABEL]: runId },
  };
  if (m.driver) o.driver = m.driver;
  if (m.environment) o.environment = m.environment;
  return o;
}

/** Why a sandbox is not running (stopped, deleted, failed), or null while it is. */
function notRunning(sandboxes: SandboxService, id: string): string | null {
  let s: Sandbox;
  try {
    s = sandboxes.status(id);
  } catch (err) {
    return `the sandbox is gone: ${toWarrenError(err).message}`;
  }
  if (s.state === "running") return null;
  return `the sandbox was ${s.state}${s.lastError ? ` (${s.lastError})` : ""}`;
}

/** Why a sandbox can no longer be used, or null when it answers. */
async function deathOf(sandboxes: SandboxService, id: string): Promise<string | null> {
  const gone = notRunning(sandboxes, id);
  if (gone) return gone;
  let failure: string;
  try {
    const probe = { argv: ["true"], timeoutMs: 10000, maxOutputBytes: 1024 };
    const { outcome } = await sandboxes.execInternal(id, probe);
    if (outcome.exitCode === 0) return null;
    failure = `the sandbox does not answer (a probe exited with ${outcome.exitCode})`;
  } catch (err) {
    failure = `the sandbox died: ${toWarrenError(err).message}`;
  }
  // A stop or delete in progress kills processes before it records the new state: give it a
  // moment, so the run says what happened rather than what it looked like.
  for (let i = 0; i < 50; i++) {
    const now = notRunning(sandboxes, id);
    if (now) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
  return failure;
}

/** Runs an agent package once and returns its record. */
export async function runAgent(ctx: RunContext, pkg: AgentPackage, o: RunAgentOptions): Promise<AgentRun> {
  const { sandboxes, files, tables, log } = ctx;
  const m = pkg.manifest;
  const input = o.input === undefined ? Buffer.alloc(0) : Buffer.from(o.input);
  const id = newRunId();
  tables.beginRun(
    { id, agent: m.name, version: pkg.version, inputBytes: input.length, startedAt: Date.now() },
    ctx.owner,
  );
  const timings: AgentRunTimings = { ...NO_TIMINGS };
  const timed = async <T>(key: keyof AgentRunTimings, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[key] = Math.round(performance.now() - t0);
    }
  };
  const finish = (patch: Parameters<AgentTables["updateRun"]>[1]): AgentRun =>
    tables.updateRun(id, { ...patch, timings, finishedAt: Date.now() });
  log.info("agent run starting", { agent: m.name, run: id, version: pkg.version });

  // Steps 2-3: a failure here is the caller's error (e.g. an unusable driver, with its hint).
  let sandbox: Sandbox | null = null;
  try {
    sandbox = await timed("createMs", () => sandboxes.create(sandboxOptions(pkg, id)));
    tables.updateRun(id, { sandboxId: sandbox.id, timings });
    const tar = packageTar(pkg);
    await timed("uploadMs", () => files.uploadTar(sandbox!.id, WORKSPACE, tar));
  } catch (err) {
    const e = toWarrenError(err);
    if (sandbox) await sandboxes.delete(sandbox.id).catch(() => undefined);
    finish({ status: "failed", error: `the run could not start: ${e.message}` });
    log.warn("agent run could not start", { agent: m.name, run: id, error: e.message });
    throw e;
  }
  const sandboxId = sandbox.id;

  // Step 4.
  let result: ExecResult | null = null;
  let execError: WarrenError | null = null;
  try {
    result = await timed("execMs", () =>
      sandboxes.exec(sandboxId, {
        argv: m.entrypoint,
        cwd: WORKSPACE,
        // The manifest's env again: a sandbox handed out by a pool may have been made without it.
        env: { ...m.env, WARREN_AGENT: m.name, WARREN_RUN_ID: id },
        stdin: input,
        timeoutMs: m.timeoutSeconds * 1000,
        onStdout: o.onStdout,
        onStderr: o.onStderr,
        signal: o.signal,
      }),
    );
  } catch (err) {
    execError = toWarrenError(err);
  }
  const output = {
    exitCode: result?.exitCode ?? null,
    timedOut: result?.timedOut ?? false,
    stdout: Buffer.from(result?.stdout ?? ""),
    stderr: Buffer.from(result?.stderr ?? ""),
    truncated: result?.truncated ?? false,
  };

  // Step 5: a dead sandbox fails the run with the reason and is never reused.
  let death = await deathOf(sandboxes, sandboxId);
  let error: string | null = null;
  let resultDir: string | null = null;
  if (!death) {
    // Step 6.
    try {
      const tar = await timed("collectMs", () => files.downloadTar(sandboxId, WORKSPACE));
      resultDir = join(ctx.resultsDir, id);
      extractEntries(readTar(tar), resultDir);
    } catch (err) {
      resultDir = null;
      death = await deathOf(sandboxes, sandboxId);
      if (!death) error = `could not copy the workspace out: ${toWarrenError(err).message}`;
    }
  }
  if (death) error = death;
  else if (execError) error = o.signal?.aborted ? `aborted: ${execError.message}` : execError.message;
  else if (output.timedOut) error = `the entrypoint timed out after ${m.timeoutSeconds} s and was killed`;
  else if (output.exitCode !== 0 && error === null)
    error = `the entrypoint exited with code ${output.exitCode}`;
  const status = error === null ? "succeeded" : "failed";

  // Step 7.
  const reusable = status === "succeeded" && m.reuse;
  try {
    await ctx.release(sandboxId, { reusable, agent: m.name });
  } catch (err) {
    log.warn("could not release a run's sandbox", { run: id, sandboxId, error: String(err) });
    if (reusable) await sandboxes.delete(sandboxId).catch(() => undefined);
  }
  const run = finish({ status, ...output, resultDir, error });
  log.info("agent run finished", { agent: m.name, run: id, sandboxId, status, error });
  return run;
}
