/**
 * Host processes of the microvm driver (QEMU or Firecracker, virtiofsd): started detached so a
 * VM outlives the Warren process that booted it, known by pid and start time, and found again by
 * the paths on their command lines (every one names its sandbox's directory).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readFileSync, readdirSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { identityOf, isAlive, type ProcessIdentity } from "../../core/proc.js";

/** PATH for the helpers the driver runs (they never see the caller's environment). */
export const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** First executable among an explicit path and names looked up on PATH (and /usr/lib/qemu). */
export function findExecutable(explicit: string | undefined, names: string[]): string | null {
  const candidates = explicit
    ? [explicit]
    : names.flatMap((n) =>
        n.startsWith("/")
          ? [n]
          : [...(process.env.PATH ?? HOST_PATH).split(delimiter), ...HOST_PATH.split(":")].map((d) =>
              join(d, n),
            ),
      );
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {
      /* next */
    }
  }
  return null;
}

/**
 * Starts a process in its own session with stdout and stderr appended to `logPath`, not waited
 * for by this process. With `stdin: "pipe"` the caller can feed it before it goes on.
 */
export function spawnDetached(
  command: string,
  args: string[],
  logPath: string,
  stdin: "ignore" | "pipe" = "ignore",
): ChildProcess {
  const log = openSync(logPath, "a", 0o600);
  try {
    const child = spawn(command, args, {
      detached: true,
      env: { PATH: HOST_PATH },
      stdio: [stdin, log, log],
    });
    child.on("error", () => undefined); /* reported through its absence and the log */
    child.unref();
    return child;
  } finally {
    closeSync(log);
  }
}

/** The identity of a child just started, or null when it is already gone. */
export function childIdentity(child: ChildProcess): ProcessIdentity | null {
  return child.pid === undefined ? null : identityOf(child.pid);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits up to `ms` for a process to end; true when it has. */
export async function waitGone(id: ProcessIdentity | null, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (id && isAlive(id)) {
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
  return true;
}

/** Signals a process if it is still the one we started. */
export function signalProcess(id: ProcessIdentity | null, signal: NodeJS.Signals): void {
  if (!id || !isAlive(id)) return;
  try {
    process.kill(id.pid, signal);
  } catch {
    /* gone meanwhile */
  }
}

/** SIGKILLs a process and waits (briefly) until it is gone. */
export async function killProcess(id: ProcessIdentity | null): Promise<void> {
  signalProcess(id, "SIGKILL");
  await waitGone(id, 5000);
}

/** Live processes whose command line contains `marker`, with that command line. */
export function processesMentioning(marker: string): Array<ProcessIdentity & { cmdline: string }> {
  const found: Array<ProcessIdentity & { cmdline: string }> = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      continue;
    }
    if (!cmdline.includes(marker)) continue;
    const id = identityOf(Number(name));
    if (id && isAlive(id)) found.push({ ...id, cmdline });
  }
  return found;
}

/** The last `bytes` of a file, or "" when it does not exist. */
export function tailOf(path: string, bytes = 65536): string {
  try {
    const text = readFileSync(path);
    return text.subarray(Math.max(0, text.length - bytes)).toString("utf8");
  } catch {
    return "";
  }
}

/** Waits for a path to exist; false when the deadline passes or `stillRunning` turns false. */
export async function waitForPath(
  path: string,
  deadline: number,
  stillRunning: () => boolean,
): Promise<boolean> {
  for (;;) {
    try {
      statSync(path);
      return true;
    } catch {
      if (Date.now() > deadline || !stillRunning()) return false;
      await sleep(5);
    }
  }
}
