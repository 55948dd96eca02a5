/**
 * Runs one child process for a driver: streams and caps its output, feeds stdin, and on timeout or
 * abort calls the driver's own tree-killer (a driver knows how to find every process a command
 * made; a process group alone misses those that call setsid).
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { ExecOutcome } from "./driver.js";

/** What to run and how. */
export interface RunProcessOptions {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  stdin?: string | Uint8Array;
  timeoutMs?: number;
  maxOutputBytes: number;
  signal?: AbortSignal;
  /** Start the child in its own process group. */
  detached?: boolean;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Kills the command's whole process tree; called on timeout or abort. */
  killTree: (pid: number) => Promise<void>;
}

/** Collects a stream up to a cap, remembering whether anything was cut. */
class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    const room = this.cap - this.size;
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (part.length < chunk.length) this.truncated = true;
    this.chunks.push(part);
    this.size += part.length;
  }
  value(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** How long output pipes may stay open after the command exited before stragglers are killed. */
const STRAGGLER_GRACE_MS = 200;

/** Exit code of 124 marks a timeout, as with timeout(1). */
export const TIMEOUT_EXIT_CODE = 124;

/** Runs the process to completion. Never rejects for a non-zero exit. */
export function runProcess(o: RunProcessOptions): Promise<ExecOutcome> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(o.command, o.args, {
      env: o.env,
      cwd: o.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      detached: o.detached ?? false,
    });
    const out = new CappedBuffer(o.maxOutputBytes);
    const err = new CappedBuffer(o.maxOutputBytes);
    let timedOut = false;
    let aborted = false;
    let spawnError: Error | null = null;
    const kill = (): void => {
      if (child.pid !== undefined) o.killTree(child.pid).catch(() => child.kill("SIGKILL"));
    };
    const timer =
      o.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            kill();
          }, o.timeoutMs)
        : null;
    const onAbort = (): void => {
      aborted = true;
      kill();
    };
    o.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (c: Buffer) => {
      out.push(c);
      o.onStdout?.(c);
    });
    child.stderr.on("data", (c: Buffer) => {
      err.push(c);
      o.onStderr?.(c);
    });
    child.stdin.on("error", () => {
      /* the command may exit without reading its stdin */
    });
    if (o.stdin !== undefined) child.stdin.end(o.stdin);
    else child.stdin.end();
    child.on("error", (e) => (spawnError = e));
    // Processes a command leaves behind may hold its stdout open; once the command itself has
    // exited, give the pipes a moment to drain, then end the stragglers so the result returns.
    let straggler: NodeJS.Timeout | undefined;
    child.on("exit", () => {
      straggler = setTimeout(kill, STRAGGLER_GRACE_MS);
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      clearTimeout(straggler);
      o.signal?.removeEventListener("abort", onAbort);
      if (spawnError) return reject(spawnError);
      if (aborted) return reject(o.signal?.reason ?? new Error("aborted"));
      const exitCode = timedOut
        ? TIMEOUT_EXIT_CODE
        : code !== null
          ? code
          : 128 + (constants.signals[signal as NodeJS.Signals] ?? 9);
      resolve({
        exitCode,
        stdout: out.value(),
        stderr: err.value(),
        timedOut,
        truncated: out.truncated || err.truncated,
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      });
    });
  });
}

/** Rejects with `onTimeout()` if `promise` has not settled within `ms`. */
export async function withDeadline<T>(
  promise: Promise<T>,
  ms: number | undefined,
  onTimeout: () => Error,
): Promise<T> {
  if (ms === undefined) return promise;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(onTimeout()), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
