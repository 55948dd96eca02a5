/**
 * virtiofsd shares a sandbox's workspace directory into its VM. It runs as an unprivileged host
 * uid in its own user namespace whose map is guest root → `helperUid` and guest user 1000 →
 * `sandboxUid`: files the guest makes are owned by the sandbox uid on the host (as with bwrap),
 * and not even guest root can make a file owned by host root (a setuid-root binary, say).
 *
 * The map has two lines, so it is written from outside (by this root process) once the helper
 * has entered its namespace; the helper waits on stdin for that, then execs (as namespace root,
 * which gives it its capabilities there) into a private mount namespace with its own /run
 * (virtiofsd keeps a lock file in /run/virtiofsd) and on into virtiofsd.
 */
import { readlinkSync, writeFileSync } from "node:fs";
import { InternalError, TimeoutError } from "../../core/errors.js";
import type { ProcessIdentity } from "../../core/proc.js";
import { childIdentity, killProcess, spawnDetached, tailOf, waitForPath } from "./processes.js";

/** Where and how to run virtiofsd. */
export interface VirtiofsdSpec {
  binary: string;
  socketPath: string;
  sourceDir: string;
  logPath: string;
  /** Host uid of guest root (and of the virtiofsd process). */
  helperUid: number;
  /** Host uid of the guest's user 1000. */
  sandboxUid: number;
  deadline: number;
}

/** The guest uid of the sandbox user. */
export const GUEST_UID = 1000;

const INNER_SCRIPT =
  'read _ && exec /usr/bin/unshare --mount -- /bin/sh -c \'mount -t tmpfs -o mode=0755 warren /run && mkdir /run/virtiofsd && exec "$@"\' warren-virtiofsd "$@" </dev/null';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The uid_map / gid_map of the helper's user namespace. */
export function idMap(helperUid: number, sandboxUid: number): string {
  return `0 ${helperUid} 1\n${GUEST_UID} ${sandboxUid} 1\n`;
}

/**
 * Starts virtiofsd detached and resolves once its socket exists.
 * @throws InternalError (with virtiofsd's words) or TimeoutError
 */
export async function startVirtiofsd(s: VirtiofsdSpec): Promise<ProcessIdentity> {
  const args = [
    `--reuid=${s.helperUid}`,
    `--regid=${s.helperUid}`,
    "--clear-groups",
    "/usr/bin/unshare",
    "--user",
    "--",
    "/bin/sh",
    "-c",
    INNER_SCRIPT,
    "warren-virtiofsd",
    s.binary,
    `--socket-path=${s.socketPath}`,
    "-o",
    `source=${s.sourceDir}`,
    "-o",
    "cache=auto",
    "--rlimit-nofile=0",
  ];
  const child = spawnDetached("/usr/bin/setpriv", args, s.logPath, "pipe");
  let exited = false;
  child.once("exit", () => (exited = true));
  const id = childIdentity(child);
  const fail = async (message: string): Promise<never> => {
    await killProcess(id);
    const said = tailOf(s.logPath, 2000).trim().split("\n").slice(-3).join(" | ");
    throw new InternalError(`virtiofsd ${message}${said ? `: ${said}` : ""}`);
  };
  if (!id) return fail("did not start");
  const ours = readlinkSync("/proc/self/ns/user");
  for (;;) {
    let theirs = ours;
    try {
      theirs = readlinkSync(`/proc/${id.pid}/ns/user`);
    } catch {
      /* not yet, or gone */
    }
    if (theirs !== ours) break;
    if (exited) return fail("could not create its user namespace");
    if (Date.now() > s.deadline) return fail("took too long to create its user namespace");
    await sleep(1);
  }
  try {
    writeFileSync(`/proc/${id.pid}/uid_map`, idMap(s.helperUid, s.sandboxUid));
    writeFileSync(`/proc/${id.pid}/gid_map`, idMap(s.helperUid, s.sandboxUid));
  } catch (err) {
    return fail(`could not get its uid map (${(err as Error).message})`);
  }
  child.stdin?.end("go\n");
  if (!(await waitForPath(s.socketPath, s.deadline, () => !exited))) {
    if (!exited && Date.now() > s.deadline) {
      await killProcess(id);
      throw new TimeoutError("virtiofsd did not create its socket in time");
    }
    return fail("exited before it was ready");
  }
  return id;
}
