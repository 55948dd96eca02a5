/**
 * Shared pieces of the security suite: a scenario runner that tracks and deletes the sandboxes a
 * test makes (and names them when it fails), and host-side probes (processes by command line,
 * process credentials, a sandbox's cgroup directories) used to check what an attack really did.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ExecResult, Sandbox } from "../../src/core/types.js";
import { detectCgroups } from "../../src/drivers/bwrap/cgroups.js";
import { cgroupScope } from "../../src/drivers/bwrap/driver.js";
import type { CreateOptions, ExecOptions, Warren } from "../../src/service/index.js";
import type { TestWarren } from "../helpers/warren.js";

/** What one security test gets. */
export interface Scenario {
  warren: Warren;
  stateDir: string;
  /** Host uid that sandboxed processes run as. */
  sandboxUid: number;
  /** Creates a bwrap sandbox that is deleted when the test ends. */
  create(options?: CreateOptions): Promise<Sandbox>;
  /** Runs `sh -c script` in a sandbox (10 s timeout unless told otherwise). */
  sh(id: string, script: string, extra?: Partial<ExecOptions>): Promise<ExecResult>;
}

/**
 * Runs `fn` with a scenario on `t`. Sandboxes it created are deleted afterwards whatever happens;
 * a failure message names them so their journal and holder log can be looked up.
 */
export async function scenario(t: TestWarren, fn: (s: Scenario) => Promise<void>): Promise<void> {
  const made: Sandbox[] = [];
  const s: Scenario = {
    warren: t.warren,
    stateDir: t.stateDir,
    sandboxUid: t.warren.config.sandboxUid,
    async create(options = {}) {
      const sbx = await t.warren.sandboxes.create({
        driver: "bwrap",
        labels: { suite: "security" },
        ...options,
      });
      made.push(sbx);
      return sbx;
    },
    sh: (id, script, extra = {}) =>
      t.warren.sandboxes.exec(id, { argv: ["sh", "-c", script], timeoutMs: 10000, ...extra }),
  };
  try {
    await fn(s);
  } catch (err) {
    if (err instanceof Error) err.message += ` [sandboxes: ${made.map((m) => m.id).join(", ") || "none"}]`;
    throw err;
  } finally {
    for (const m of made) await t.warren.sandboxes.delete(m.id).catch(() => undefined);
  }
}

/** A random marker that makes file names and command lines of one test unique. */
export function nonce(): string {
  return randomBytes(6).toString("hex");
}

/** A `sleep` duration that doubles as a unique marker in a command line, e.g. `300.4711`. */
export function sleepMarker(base: number): string {
  return `${base}.${randomBytes(3).readUIntBE(0, 3)}`;
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}

/** Command line of a host process (arguments joined by spaces), or null once it is gone. */
export function cmdlineOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return null;
  }
}

/** Host pids whose whole command line is `cmdline` (zombies have none, so they do not count). */
export function hostPids(cmdline: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .filter((pid) => cmdlineOf(pid) === cmdline);
}

/** Credentials of a host process from /proc/PID/status. */
export interface ProcCreds {
  uids: number[];
  gids: number[];
  capEff: bigint;
}

/** Credentials of a host process, or null once it is gone. */
export function credsOf(pid: number): ProcCreds | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(text)?.[1] ?? "";
  return {
    uids: field("Uid").split(/\s+/).map(Number),
    gids: field("Gid").split(/\s+/).map(Number),
    capEff: BigInt(`0x${field("CapEff") || "0"}`),
  };
}

/** Whether a host process exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Host directory of a sandbox's cgroup for one controller (v1), or the unified one (v2). */
export function sandboxCgroup(stateDir: string, sandboxId: string, controller: "memory" | "pids"): string {
  const layout = detectCgroups();
  if (!layout) throw new Error("no cgroup hierarchy is mounted");
  const root = layout.mode === "v2" ? layout.roots[0] : layout.roots[controller === "memory" ? 0 : 1];
  return join(root, "warren", cgroupScope(stateDir), sandboxId);
}

/** Every pid in a sandbox's cgroup and its children (holder and commands). */
export function sandboxPids(stateDir: string, sandboxId: string): number[] {
  const dir = sandboxCgroup(stateDir, sandboxId, "pids");
  const dirs = [
    dir,
    ...readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(dir, d.name)),
  ];
  return dirs.flatMap((d) => {
    try {
      return readFileSync(join(d, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

/** Reads one integer-valued cgroup file of a sandbox (`pids.current`, `memory.max_usage_in_bytes`, ...). */
export function cgroupNumber(dir: string, file: string): number {
  return Number(readFileSync(join(dir, file), "utf8").trim());
}

/**
 * Starts a long `sleep` on the host as `uid` (the sandbox uid: the same credentials as sandboxed
 * processes, so only namespaces stand between them) and resolves once it runs.
 */
export async function hostSleeper(uid: number, seconds: string): Promise<ChildProcess & { pid: number }> {
  const child = spawn(
    "/usr/bin/setpriv",
    [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "/usr/bin/sleep", seconds],
    { stdio: "ignore" },
  );
  await waitFor(
    () => child.pid !== undefined && cmdlineOf(child.pid) === `/usr/bin/sleep ${seconds}`,
    5000,
    "the host sleep",
  );
  return child as ChildProcess & { pid: number };
}

/** Kills a child started by this test and waits for it to be reaped. */
export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}
