/**
 * Agent packages in memory: read from a directory or a tar archive, checked (manifest first, so a
 * bad manifest changes nothing), hashed into a version, written to the state directory and packed
 * for upload into a sandbox. A package holds only regular files and directories; a file keeps
 * one permission fact, whether it is executable.
 */
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, LimitExceededError, NotFoundError } from "../core/errors.js";
import { MANIFEST_FILE, parseManifest, type AgentManifest } from "./agents-manifest.js";
import { readTar, writeTar } from "./agents-tar.js";

/** Largest package (all files together). @default 256 MiB */
export const MAX_PACKAGE_BYTES = 256 * 1024 * 1024;
/** Most files and directories in a package. @default 20000 */
export const MAX_PACKAGE_ENTRIES = 20000;

/** One file of a package. */
export interface PackageFile {
  /** Relative, `/`-separated. */
  path: string;
  executable: boolean;
  data: Buffer;
}

/** A checked package. */
export interface AgentPackage {
  manifest: AgentManifest;
  /** Sorted by path. */
  files: PackageFile[];
  /** Directories (relative paths), sorted; empty ones are kept. */
  dirs: string[];
  /** Content hash: 16 hex digits of a SHA-256 over paths, executable bits and contents. */
  version: string;
  sizeBytes: number;
}

const byPath = <T extends { path: string }>(a: T, b: T) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** @throws LimitExceededError when a package is over MAX_PACKAGE_BYTES or MAX_PACKAGE_ENTRIES */
function checkLimits(name: string, sizeBytes: number, entries: number): void {
  if (sizeBytes <= MAX_PACKAGE_BYTES && entries <= MAX_PACKAGE_ENTRIES) return;
  throw new LimitExceededError(
    `agent package ${name} is too large (at least ${sizeBytes} bytes in ${entries} entries)`,
    {
      hint: `keep a package under ${MAX_PACKAGE_BYTES / 1048576} MiB and ${MAX_PACKAGE_ENTRIES} entries; fetch big data at run time`,
      details: { sizeBytes, entries, limitBytes: MAX_PACKAGE_BYTES, limitEntries: MAX_PACKAGE_ENTRIES },
    },
  );
}

/** Finishes a package: limits, sorting, version. */
function seal(manifest: AgentManifest, files: PackageFile[], dirs: string[]): AgentPackage {
  const sizeBytes = files.reduce((n, f) => n + f.data.length, 0);
  checkLimits(manifest.name, sizeBytes, files.length + dirs.length);
  files.sort(byPath);
  dirs.sort();
  const hash = createHash("sha256");
  for (const d of dirs) hash.update(`d\0${d}\0`);
  for (const f of files) {
    hash.update(`f\0${f.path}\0${f.executable ? 1 : 0}\0${f.data.length}\0`);
    hash.update(f.data);
  }
  return { manifest, files, dirs, version: hash.digest("hex").slice(0, 16), sizeBytes };
}

/**
 * Reads a package directory: the manifest first (nothing else is read when it is bad), then every
 * file under it.
 * @throws NotFoundError (no directory, no manifest), InvalidArgumentError (bad manifest, a symlink
 *   or special file), LimitExceededError
 */
export function readPackageDir(dir: string): AgentPackage {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st) throw new NotFoundError(`no directory ${dir}`, { hint: "pass the agent package's directory" });
  if (!st.isDirectory()) {
    throw new InvalidArgumentError(`${dir} is not a directory`, {
      hint: `an agent package is a directory with a ${MANIFEST_FILE}`,
    });
  }
  const manifestPath = join(dir, MANIFEST_FILE);
  const mst = lstatSync(manifestPath, { throwIfNoEntry: false });
  if (!mst?.isFile()) {
    throw new NotFoundError(`no ${MANIFEST_FILE} in ${dir}`, {
      hint: `write a ${MANIFEST_FILE} with at least {"name": ..., "entrypoint": ...} (see docs/agents.md)`,
      details: { dir },
    });
  }
  const manifest = parseManifest(readFileSync(manifestPath, "utf8"), manifestPath);
  const files: PackageFile[] = [];
  const dirs: string[] = [];
  let bytes = 0;
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      const full = join(dir, path);
      if (e.isDirectory()) {
        dirs.push(path);
        walk(path);
      } else if (e.isFile()) {
        const data = readFileSync(full);
        bytes += data.length;
        files.push({ path, executable: (lstatSync(full).mode & 0o111) !== 0, data });
      } else {
        throw new InvalidArgumentError(
          `${full} is a ${e.isSymbolicLink() ? "symlink" : "special file"}; a package holds only files and directories`,
          { hint: "replace it with a copy of what it points to, or leave it out", details: { path } },
        );
      }
      checkLimits(manifest.name, bytes, files.length + dirs.length);
    }
  };
  walk("");
  return seal(manifest, files, dirs);
}

/**
 * Reads a package from a tar archive of its directory (the manifest at its root).
 * @throws InvalidArgumentError (a damaged archive, a bad manifest, links or special files),
 *   NotFoundError (no manifest), LimitExceededError
 */
export function packageFromTar(tar: Buffer): AgentPackage {
  const entries = readTar(tar);
  const m = entries.filter((e) => e.path === MANIFEST_FILE && e.type === "file").pop();
  if (!m) {
    throw new NotFoundError(`the archive has no ${MANIFEST_FILE} at its root`, {
      hint: "pack the package directory itself, e.g. tar -c -C DIR .",
    });
  }
  const manifest = parseManifest(m.data.toString("utf8"));
  const files = new Map<string, PackageFile>();
  const dirs = new Set<string>();
  for (const e of entries) {
    if (e.type === "directory") dirs.add(e.path);
    else if (e.type === "file")
      files.set(e.path, { path: e.path, executable: (e.mode & 0o111) !== 0, data: e.data });
    else {
      throw new InvalidArgumentError(
        `archive member ${e.path} is a ${e.type}; a package holds only files and directories`,
        {
          hint: "replace links with copies of what they point to",
          details: { path: e.path },
        },
      );
    }
  }
  // Parent directories that the archive only implies.
  for (const path of files.keys()) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  const clash = [...dirs].find((d) => files.has(d));
  if (clash !== undefined) {
    throw new InvalidArgumentError(`archive member ${clash} is both a file and a directory`, {
      hint: "pack the package directory itself, e.g. tar -c -C DIR .",
      details: { path: clash },
    });
  }
  return seal(manifest, [...files.values()], [...dirs]);
}

/** Writes a package's files under `dest` (which must not exist yet). */
export function writePackage(pkg: AgentPackage, dest: string): void {
  mkdirSync(dest, { recursive: true, mode: 0o755 });
  for (const d of pkg.dirs) mkdirSync(join(dest, d), { recursive: true, mode: 0o755 });
  for (const f of pkg.files)
    writeFileSync(join(dest, f.path), f.data, { mode: f.executable ? 0o755 : 0o644 });
}

/** The package as a tar archive (what is unpacked into a run's sandbox, or sent to a server). */
export function packageTar(pkg: AgentPackage): Buffer {
  return writeTar([
    ...pkg.dirs.map((path) => ({ path, type: "directory" as const, mode: 0o755, data: Buffer.alloc(0) })),
    ...pkg.files.map((f) => ({
      path: f.path,
      type: "file" as const,
      mode: f.executable ? 0o755 : 0o644,
      data: f.data,
    })),
  ]);
}
