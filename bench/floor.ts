/**
 * The raw floor: bubblewrap spawned directly from Node with every namespace unshared, running
 * `true`. Nothing Warren adds (store, journal, cgroups, nsenter) is in it.
 */
import { spawn } from "node:child_process";
import { existsSync, lstatSync, readlinkSync } from "node:fs";

/** bwrap arguments for a minimal sandbox that sees the host's /usr read-only. */
export function floorArgs(): string[] {
  const a = ["--unshare-all", "--ro-bind", "/usr", "/usr"];
  for (const name of ["bin", "lib", "lib64", "sbin"]) {
    const p = `/${name}`;
    if (!existsSync(p)) continue;
    if (lstatSync(p).isSymbolicLink()) a.push("--symlink", readlinkSync(p), p);
    else a.push("--ro-bind", p, p);
  }
  a.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--", "/usr/bin/true");
  return a;
}

/** Spawns `bwrap ... true` once and waits for it; rejects unless it exits 0. */
export function rawBwrapTrue(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/bwrap", args, { stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`bwrap exited ${code}`))));
  });
}
