/**
 * Tar archives for agent packages and run results, in memory. The writer makes POSIX ustar (with
 * pax headers for long names), which any tar reads; the reader understands what GNU and POSIX
 * tar write (ustar, GNU long names, pax headers). Archives from a sandbox or a client are
 * untrusted, so reading normalises every name and refuses absolute paths and `..`, and
 * extracting never writes through a symlink: symlinks are made last, and only where every parent
 * is a real directory inside the destination.
 */
import {
  chmodSync,
  copyFileSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join, posix } from "node:path";
import { InvalidArgumentError } from "../core/errors.js";

/** One member of an archive. */
export interface TarEntry {
  /** Relative path, `/`-separated, normalised (no `.`, `..` or leading `/`). */
  path: string;
  type: "file" | "directory" | "symlink" | "hardlink" | "other";
  /** Permission bits. */
  mode: number;
  /** Content of a file (empty for anything else). */
  data: Buffer;
  /** Target of a symlink or hard link. */
  linkTarget: string;
}

const BLOCK = 512;

/** Writes `value` as a NUL-terminated octal field of `width` bytes. */
function octal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(value.toString(8).padStart(width - 1, "0") + "\0", offset, width, "ascii");
}

function header(name: string, type: string, mode: number, size: number, linkTarget = ""): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, "utf8");
  octal(h, 100, 8, mode & 0o7777);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, Math.floor(Date.now() / 1000));
  h.write(" ".repeat(8), 148, 8, "ascii");
  h.write(type, 156, 1, "ascii");
  h.write(linkTarget, 157, 100, "utf8");
  h.write("ustar\0", 257, 6, "ascii");
  h.write("00", 263, 2, "ascii");
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
  return h;
}

const pad = (size: number): Buffer => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/** A pax record: `LEN key=value\n`, where LEN counts the whole record, itself included. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body);
  while (String(len).length + Buffer.byteLength(body) !== len)
    len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** What `writeTar` packs: files, directories and symlinks. */
export type TarInput = Pick<TarEntry, "path" | "mode" | "data"> & {
  type: "file" | "directory" | "symlink";
  linkTarget?: string;
};

/** Packs entries into a tar archive. */
export function writeTar(entries: TarInput[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const name = e.type === "directory" ? `${e.path}/` : e.path;
    const link = e.type === "symlink" ? (e.linkTarget ?? "") : "";
    const records = [
      Buffer.byteLength(name) > 99 ? paxRecord("path", name) : "",
      Buffer.byteLength(link) > 99 ? paxRecord("linkpath", link) : "",
    ].join("");
    if (records) {
      const pax = Buffer.from(records);
      parts.push(header("PaxHeader", "x", 0o644, pax.length), pax, pad(pax.length));
    }
    const short = (s: string) => Buffer.from(s).subarray(0, 99).toString("utf8");
    if (e.type === "directory") parts.push(header(short(name), "5", e.mode, 0));
    else if (e.type === "symlink") parts.push(header(short(name), "2", 0o777, 0, short(link)));
    else parts.push(header(short(name), "0", e.mode, e.data.length), e.data, pad(e.data.length));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

const cstring = (b: Buffer): string => {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString("utf8");
};

/** A numeric field: octal text, or base-256 when the high bit of the first byte is set. */
function number(field: Buffer): number {
  if (field[0] & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i];
    return n;
  }
  const text = cstring(field).trim();
  return text ? parseInt(text, 8) : 0;
}

/** Parses pax records into key/value pairs. */
function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(data.subarray(at, space).toString("ascii"));
    if (!Number.isInteger(len) || len <= 0) break;
    const record = data.subarray(space + 1, at + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += len;
  }
  return out;
}

/**
 * A member name made safe: relative, `/`-separated, without `.` or empty components. The root
 * itself (`.`, `./`) is the empty string.
 * @throws InvalidArgumentError for an absolute name or one with `..`
 */
export function safeName(name: string): string {
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (name.startsWith("/") || parts.includes("..") || name.includes("\0")) {
    throw new InvalidArgumentError(`archive member "${name}" points outside its directory`, {
      hint: "archive members must be relative paths without ..",
      details: { member: name },
    });
  }
  return parts.join("/");
}

const TYPES: Record<string, TarEntry["type"]> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "5": "directory",
  "2": "symlink",
  "1": "hardlink",
};

/**
 * Reads every member of a tar archive (the root directory itself is left out).
 * @throws InvalidArgumentError for a damaged archive or an unsafe member name
 */
export function readTar(tar: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let longName: string | null = null;
  let longLink: string | null = null;
  let pax: Record<string, string> = {};
  let at = 0;
  while (at + BLOCK <= tar.length) {
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (sum !== number(h.subarray(148, 156))) {
      throw new InvalidArgumentError(`not a tar archive (bad header checksum at byte ${at})`, {
        hint: "send an archive made by tar, e.g. tar -c -C DIR .",
      });
    }
    const size = number(h.subarray(124, 136));
    const type = String.fromCharCode(h[156]);
    const dataStart = at + BLOCK;
    const data = tar.subarray(dataStart, dataStart + size);
    if (data.length < size) throw new InvalidArgumentError("the tar archive is cut short");
    at = dataStart + size + ((BLOCK - (size % BLOCK)) % BLOCK);
    if (type === "L") longName = cstring(data);
    else if (type === "K") longLink = cstring(data);
    else if (type === "x") pax = paxRecords(data);
    else if (type !== "g") {
      // POSIX ustar keeps a name prefix at 345; GNU tar ("ustar  ") uses that space for times.
      const posixUstar = h.subarray(257, 263).toString("latin1") === "ustar\0";
      const prefix = posixUstar ? cstring(h.subarray(345, 500)) : "";
      const raw =
        pax.path ??
        longName ??
        (prefix ? `${prefix}/${cstring(h.subarray(0, 100))}` : cstring(h.subarray(0, 100)));
      const path = safeName(raw);
      if (path !== "") {
        entries.push({
          path,
          type: TYPES[type] ?? "other",
          mode: number(h.subarray(100, 108)) & 0o7777,
          data: TYPES[type] === "file" ? Buffer.from(data) : Buffer.alloc(0),
          linkTarget: pax.linkpath ?? longLink ?? cstring(h.subarray(157, 257)),
        });
      }
      longName = longLink = null;
      pax = {};
    }
  }
  return entries;
}

/**
 * Makes sure every directory from `dest` down to `rel` exists as a real directory (never a
 * symlink), creating missing ones.
 * @throws InvalidArgumentError when a component is a symlink or not a directory
 */
function realDirs(dest: string, rel: string): void {
  let dir = dest;
  for (const part of rel.split("/").filter(Boolean)) {
    dir = join(dir, part);
    let st: ReturnType<typeof lstatSync> | undefined;
    try {
      st = lstatSync(dir);
    } catch {
      mkdirSync(dir, { mode: 0o755 });
      continue;
    }
    if (!st.isDirectory() || st.isSymbolicLink()) {
      throw new InvalidArgumentError(`archive member path "${rel}" goes through a non-directory`, {
        details: { member: rel },
      });
    }
  }
}

/** Removes whatever is at `path` (not following symlinks), so a later member can replace it. */
function clear(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/**
 * Writes entries under `dest` (created if missing): directories, files, hard links as copies,
 * then symlinks. Devices, FIFOs and the like are left out. Returns how many members were written.
 * @throws InvalidArgumentError for a member that would leave `dest`
 */
export function extractEntries(entries: TarEntry[], dest: string): number {
  mkdirSync(dest, { recursive: true, mode: 0o755 });
  const links: TarEntry[] = [];
  let written = 0;
  for (const e of entries) {
    const target = join(dest, e.path);
    if (e.type === "symlink") {
      links.push(e);
      continue;
    }
    if (e.type === "other") continue;
    realDirs(dest, posix.dirname(e.path) === "." ? "" : posix.dirname(e.path));
    if (e.type === "directory") {
      const st = lstatSync(target, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) clear(target);
      realDirs(dest, e.path);
      chmodSync(target, (e.mode & 0o777) | 0o700);
    } else {
      clear(target);
      if (e.type === "hardlink") {
        const source = join(dest, safeName(e.linkTarget));
        const st = lstatSync(source, { throwIfNoEntry: false });
        if (!st?.isFile()) continue;
        copyFileSync(source, target);
      } else {
        writeFileSync(target, e.data, { mode: 0o600 });
        chmodSync(target, (e.mode & 0o777) | 0o600);
      }
    }
    written++;
  }
  for (const e of links) {
    const parent = posix.dirname(e.path) === "." ? "" : posix.dirname(e.path);
    realDirs(dest, parent);
    const target = join(dest, e.path);
    if (lstatSync(target, { throwIfNoEntry: false })) clear(target);
    symlinkSync(e.linkTarget, target);
    written++;
  }
  return written;
}

/** Packs a host directory (files, directories, symlinks as links; nothing else) into a tar archive. */
export function tarOfDir(dir: string): Buffer {
  const entries: TarInput[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      const full = join(dir, path);
      const mode = lstatSync(full).mode & 0o7777;
      if (e.isDirectory()) {
        entries.push({ path, type: "directory", mode, data: Buffer.alloc(0) });
        walk(path);
      } else if (e.isFile()) entries.push({ path, type: "file", mode, data: readFileSync(full) });
      else if (e.isSymbolicLink())
        entries.push({ path, type: "symlink", mode, data: Buffer.alloc(0), linkTarget: readlinkSync(full) });
    }
  };
  walk("");
  return writeTar(entries);
}
