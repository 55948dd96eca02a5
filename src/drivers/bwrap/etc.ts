/** The per-sandbox files of the bwrap driver: generated /etc and the holder's log. */
import { copyFileSync, existsSync, lstatSync, mkdirSync, readlinkSync, writeFileSync } from "node:fs";
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
