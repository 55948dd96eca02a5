/** Process identity: a pid plus its start time, so a reused pid is never taken for a live process. */
import { readFileSync } from "node:fs";

/** A process as (pid, start time in clock ticks since boot). */
export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

/** Start time (field 22 of /proc/PID/stat) or null when the process does not exist. */
export function processStartTime(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const value = Number(rest[19]);
  return Number.isFinite(value) ? value : null;
}

/** Identity of a live process, or null. */
export function identityOf(pid: number): ProcessIdentity | null {
  const startTime = processStartTime(pid);
  return startTime === null ? null : { pid, startTime };
}

/** Identity of this process. */
export function selfIdentity(): ProcessIdentity {
  const id = identityOf(process.pid);
  if (!id) throw new Error("cannot read /proc/self/stat");
  return id;
}

/** Whether the process with this identity is still alive (and is not a zombie). */
export function isAlive(identity: ProcessIdentity): boolean {
  if (processStartTime(identity.pid) !== identity.startTime) return false;
  try {
    const stat = readFileSync(`/proc/${identity.pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
