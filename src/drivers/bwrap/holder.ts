/** Starts a sandbox's holder: bubblewrap, detached from the caller, inside the sandbox's cgroup. */
import { spawn } from "node:child_process";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { TimeoutError, InternalError } from "../../core/errors.js";
import { identityOf, type ProcessIdentity } from "../../core/proc.js";
import { JOIN_CGROUPS_SCRIPT } from "./args.js";

/** Processes of a running holder. */
export interface HolderProcesses {
  /** The outer bubblewrap process (host side). */
  bwrap: ProcessIdentity;
  /** The sandbox's pid 1 (bubblewrap's init inside the namespaces): what nsenter targets. */
  init: ProcessIdentity;
}

/** Where and how to start the holder. */
export interface HolderSpawn {
  procsFiles: string[];
  sandboxUid: number;
  bwrapArgs: string[];
  logPath: string;
  healthTimeoutMs: number;
}

/** The first child of a process, or null (Linux /proc children list). */
function firstChild(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return text ? Number(text.split(" ")[0]) : null;
  } catch {
    return null;
  }
}

/**
 * Spawns bubblewrap as the unprivileged sandbox uid, detached (it outlives this process), and
 * resolves once the sandbox's command is running, i.e. the namespaces are fully set up.
 *
 * The holder's stdout is /dev/null and its stderr a pipe read only while it starts: the sandbox's
 * pid 1 and 2 inherit both, and a sandboxed process of the same uid can take a copy of them
 * (pidfd_getfd), so they must never be a host file. What bubblewrap said while starting goes into
 * the log file and into the error when it fails; afterwards the pipe is closed.
 */
export async function spawnHolder(s: HolderSpawn): Promise<HolderProcesses> {
  const child = spawn(
    "/bin/sh",
    [
      "-c",
      JOIN_CGROUPS_SCRIPT,
      "warren-holder",
      ...s.procsFiles,
      "--",
      "/usr/bin/setpriv",
      `--reuid=${s.sandboxUid}`,
      `--regid=${s.sandboxUid}`,
      "--clear-groups",
      "/usr/bin/bwrap",
      ...s.bwrapArgs,
    ],
    {
      detached: true,
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
      stdio: ["ignore", "ignore", "pipe", "pipe"],
    },
  );
  const stderr = child.stdio[2] as NodeJS.ReadableStream;
  let said = "";
  stderr.on("data", (c: Buffer) => {
    if (said.length < 64 * 1024) said += c.toString();
  });
  const info = child.stdio[3] as NodeJS.ReadableStream;
  let text = "";
  let hasExited = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      hasExited = true;
      resolve(code);
    }),
  );
  try {
    const initPid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TimeoutError(`bubblewrap did not start within ${s.healthTimeoutMs} ms`)),
        s.healthTimeoutMs,
      );
      info.on("data", (c: Buffer) => {
        text += c.toString();
        const m = /"child-pid":\s*(\d+)/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      exited.then((code) => {
        clearTimeout(timer);
        // Let the last of stderr arrive before quoting it.
        setImmediate(() =>
          reject(
            new InternalError(
              `bubblewrap exited with code ${code} before the sandbox started${said.trim() ? `: ${said.trim()}` : ""}`,
            ),
          ),
        );
      });
    });
    const deadline = Date.now() + s.healthTimeoutMs;
    // The init forks the sandbox's command once mounts and namespaces are in place.
    let sleeper: number | null = null;
    while ((sleeper = firstChild(initPid)) === null) {
      if (hasExited) throw new InternalError("bubblewrap exited while the sandbox was starting");
      if (Date.now() > deadline)
        throw new TimeoutError(`sandbox did not become ready within ${s.healthTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
    const bwrap = identityOf(child.pid!);
    const init = identityOf(initPid);
    if (!bwrap || !init) throw new InternalError("bubblewrap exited while the sandbox was starting");
    // Keep the holder alive under memory pressure: the OOM killer should pick the command, not pid 1.
    for (const pid of [initPid, sleeper]) {
      try {
        writeFileSync(`/proc/${pid}/oom_score_adj`, "-1000");
      } catch {
        /* not fatal: the holder may just be chosen under OOM */
      }
    }
    return { bwrap, init };
  } finally {
    for (const stream of [info, stderr]) {
      stream.removeAllListeners("data");
      (stream as unknown as { destroy(): void }).destroy();
    }
    if (said) appendFileSync(s.logPath, said);
    child.unref();
  }
}
