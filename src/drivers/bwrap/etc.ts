/** The per-sandbox files of the bwrap driver: generated /etc and the holder's log. */
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { DriverUnavailableError } from "../../core/errors.js";
import { join } from "node:path";
import { etcFiles, type RootLinks } from "./args.js";

/** Writes the minimal /etc for a sandbox into `dir` (read-only inside the sandbox). */
export function writeEtc(dir: string, hostname: string): void {
  mkdirSync(join(dir, "alternatives"), { recursive: true, mode: 0o755 });
  for (const [name, content] of Object.entries(etcFiles(hostname))) {
    writeFileSync(join(dir, name), content, { mode: 0o644 });
  }
  if (existsSync("/etc/ld.so.cache")) copyFileSync("/etc/ld.so.cache", join(dir, "ld.so.cache"));
}

/** How the host's top-level library and binary directories look (symlinks into /usr, or real dirs). */
export function hostRootLinks(): RootLinks {
  const out: RootLinks = [];
  for (const name of ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]) {
    const path = `/${name}`;
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) out.push({ name, kind: "symlink", target: readlinkSync(path) });
    else if (st.isDirectory()) out.push({ name, kind: "dir" });
  }
  return out;
}

/**
 * Checks that `uid` can traverse every directory leading to `path` (bubblewrap resolves its
 * mount sources as the unprivileged sandbox uid).
 * @throws DriverUnavailableError naming the blocking directory and how to fix it.
 */
export function assertReachable(path: string, uid: number): void {
  const parts = path.split("/").filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const dir = "/" + parts.slice(0, i).join("/");
    const st = statSync(dir);
    const ok =
      st.uid === uid
        ? (st.mode & 0o100) !== 0
        : st.gid === uid
          ? (st.mode & 0o010) !== 0
          : (st.mode & 0o001) !== 0;
    if (!ok) {
      throw new DriverUnavailableError(
        `the sandbox user (uid ${uid}) cannot reach ${path}: ${dir} has mode ${(st.mode & 0o777).toString(8)}`,
        {
          hint: `put the state dir where every parent is traversable (e.g. WARREN_HOME=/var/lib/warren), or run: chmod o+x ${dir}`,
          details: { path, blockedAt: dir },
        },
      );
    }
  }
}
