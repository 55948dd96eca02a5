/**
 * Files inside a sandbox: read, write, list, stat, mkdir, remove, rename, exists, and tar in and
 * out. Every operation is a short script run inside the sandbox as its user (see SandboxShell),
 * so paths resolve in the sandbox's own mount namespace: nothing here opens a host path that a
 * sandbox could redirect with `..` or a symlink.
 */
import { posix } from "node:path";
import { InvalidArgumentError } from "../core/errors.js";
import type { FileEntry, FileType, Sandbox } from "../core/types.js";
import { SandboxShell } from "./sandbox-shell.js";

/** Largest file `read` returns; larger ones go through `downloadTar`. @default 64 MiB */
export const MAX_READ_BYTES = 64 * 1024 * 1024;
/** Largest archive `downloadTar` returns. @default 512 MiB */
export const MAX_TAR_BYTES = 512 * 1024 * 1024;

/** find(1) format of one entry: type, size, mode, mtime, link target, path; NUL-separated. */
const ENTRY_FORMAT = `'%y\\0%s\\0%m\\0%T@\\0%l\\0%p\\0'`;
const STAT = `find "$1" -maxdepth 0 -printf ${ENTRY_FORMAT}`;
const MUST_EXIST = `[ -e "$1" ] || [ -L "$1" ] || exit 3`;

const TYPES: Record<string, FileType> = { f: "file", d: "directory", l: "symlink" };

/** Parses NUL-separated find(1) records into entries. */
function parseEntries(sandbox: Sandbox, shell: SandboxShell, out: Buffer): FileEntry[] {
  const fields = out.toString("utf8").split("\0");
  const entries: FileEntry[] = [];
  for (let i = 0; i + 6 <= fields.length; i += 6) {
    const [type, size, mode, mtime, link, printed] = fields.slice(i, i + 6);
    const path = shell.sandboxPath(sandbox, printed);
    entries.push({
      path,
      name: posix.basename(path),
      type: TYPES[type] ?? "other",
      sizeBytes: Number(size),
      mode: parseInt(mode, 8),
      modifiedAt: new Date(Math.round(Number(mtime) * 1000)).toISOString(),
      linkTarget: type === "l" ? link : null,
    });
  }
  return entries;
}

/** File operations on running sandboxes. */
export class FileService {
  constructor(private readonly shell: SandboxShell) {}

  /**
   * Reads a file. `onChunk` gets the content as it arrives (for large files).
   * @throws NotFoundError, InvalidArgumentError (a directory), LimitExceededError (over MAX_READ_BYTES)
   */
  async read(ref: string, path: string, o: { onChunk?: (chunk: Buffer) => void } = {}): Promise<Buffer> {
    const p = this.shell.path(path);
    const { outcome } = await this.shell.run(
      ref,
      {
        script: `${MUST_EXIST}; [ -d "$1" ] && exit 4; [ -r "$1" ] || exit 6; exec cat -- "$1"`,
        args: [],
        maxOutputBytes: MAX_READ_BYTES,
        onStdout: o.onChunk,
        what: p,
      },
      (arg) => [arg(p)],
    );
    return outcome.stdout;
  }

  /**
   * Writes a file atomically (a temporary file renamed over it), creating parent directories.
   * Without `mode`, an existing file keeps its mode.
   * @throws InvalidArgumentError (a directory, read-only place)
   */
  async write(
    ref: string,
    path: string,
    data: string | Uint8Array,
    o: { mode?: number } = {},
  ): Promise<FileEntry> {
    const p = this.shell.path(path);
    const mode = o.mode === undefined ? "" : checkMode(o.mode).toString(8);
    const script = [
      `[ -d "$1" ] && [ ! -L "$1" ] && exit 4`,
      `d=$(dirname -- "$1"); mkdir -p -- "$d" || exit 6`,
      `t="$d/.warren-write.$$"`,
      `cat > "$t" || { rm -f -- "$t"; exit 6; }`,
      `if [ -n "$2" ]; then chmod "$2" -- "$t"; elif [ -e "$1" ]; then chmod --reference="$1" -- "$t"; fi`,
      `mv -f -- "$t" "$1" || { rm -f -- "$t"; exit 6; }`,
      STAT,
    ].join("\n");
    return this.one(ref, p, script, [mode], data);
  }

  /**
   * Lists a directory, `depth` levels deep (1 = its entries), sorted by path.
   * @throws NotFoundError, InvalidArgumentError (not a directory)
   */
  async list(ref: string, path: string, o: { depth?: number } = {}): Promise<FileEntry[]> {
    const p = this.shell.path(path);
    const depth = o.depth ?? 1;
    if (!Number.isInteger(depth) || depth < 1 || depth > 64) {
      throw new InvalidArgumentError(`depth must be an integer from 1 to 64, got ${depth}`);
    }
    const { sandbox, outcome } = await this.shell.run(
      ref,
      {
        script: `${MUST_EXIST}; [ -d "$1" ] || exit 5; find "$1/" -mindepth 1 -maxdepth "$2" -printf ${ENTRY_FORMAT}`,
        args: [String(depth)],
        maxOutputBytes: 64 * 1024 * 1024,
        what: p,
      },
      (arg) => [arg(p)],
    );
    return parseEntries(sandbox, this.shell, outcome.stdout)
      .map((e) => ({ ...e, path: e.path.replace(/\/{2,}/g, "/") }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** One entry (a symlink is described, not followed). @throws NotFoundError */
  stat(ref: string, path: string): Promise<FileEntry> {
    const p = this.shell.path(path);
    return this.one(ref, p, `${MUST_EXIST}\n${STAT}`);
  }

  /** Whether a path exists (a dangling symlink counts). */
  async exists(ref: string, path: string): Promise<boolean> {
    const p = this.shell.path(path);
    const { outcome } = await this.shell.run(
      ref,
      {
        script: `{ [ -e "$1" ] || [ -L "$1" ]; } && echo yes; exit 0`,
        args: [],
        maxOutputBytes: 16,
        what: p,
      },
      (arg) => [arg(p)],
    );
    return outcome.stdout.toString() === "yes\n";
  }

  /** Creates a directory and its parents; an existing directory is fine. @throws InvalidArgumentError */
  mkdir(ref: string, path: string): Promise<FileEntry> {
    const p = this.shell.path(path);
    return this.one(ref, p, `[ -e "$1" ] && [ ! -d "$1" ] && exit 8\nmkdir -p -- "$1" || exit 6\n${STAT}`);
  }

  /**
   * Removes a file, a symlink (not its target) or a directory (non-empty only with `recursive`).
   * @throws NotFoundError, InvalidStateError (not empty), InvalidArgumentError
   */
  async remove(ref: string, path: string, o: { recursive?: boolean } = {}): Promise<void> {
    const p = this.shell.path(path);
    if (p === "/" || p === "/workspace") {
      throw new InvalidArgumentError(`refusing to remove ${p} itself`, {
        hint: "remove the entries inside it instead",
      });
    }
    const script = [
      MUST_EXIST,
      `if [ -d "$1" ] && [ ! -L "$1" ]; then`,
      `  if [ "$2" = 1 ]; then rm -rf -- "$1" || exit 6`,
      `  elif [ -n "$(ls -A -- "$1")" ]; then exit 7`,
      `  else rmdir -- "$1" || exit 6; fi`,
      `else rm -f -- "$1" || exit 6; fi`,
    ].join("\n");
    await this.shell.run(
      ref,
      { script, args: [o.recursive ? "1" : "0"], maxOutputBytes: 4096, what: p },
      (arg) => [arg(p)],
    );
  }

  /** Renames (moves) a path, creating the target's parents; replaces a file at the target. */
  async rename(ref: string, from: string, to: string): Promise<FileEntry> {
    const src = this.shell.path(from, "from");
    const dst = this.shell.path(to, "to");
    const script = [
      MUST_EXIST,
      `mkdir -p -- "$(dirname -- "$2")" || exit 6`,
      `mv -T -- "$1" "$2" || exit 6`,
      `find "$2" -maxdepth 0 -printf ${ENTRY_FORMAT}`,
    ].join("\n");
    const { sandbox, outcome } = await this.shell.run(
      ref,
      { script, args: [], maxOutputBytes: 64 * 1024, what: src },
      (arg) => [arg(src), arg(dst)],
    );
    return parseEntries(sandbox, this.shell, outcome.stdout)[0];
  }

  /** Unpacks a tar archive into a directory (created if missing), as the sandbox user. */
  async uploadTar(ref: string, dir: string, tar: Uint8Array): Promise<void> {
    const p = this.shell.path(dir, "dir");
    await this.shell.run(
      ref,
      {
        script: `mkdir -p -- "$1" || exit 6; [ -d "$1" ] || exit 5; tar -x --no-same-owner -C "$1" -f - || exit 6`,
        args: [],
        stdin: tar,
        timeoutMs: 600000,
        maxOutputBytes: 64 * 1024,
        what: p,
      },
      (arg) => [arg(p)],
    );
  }

  /** Packs a directory into a tar archive (Warren's own `.warren` records are left out). */
  async downloadTar(ref: string, dir: string): Promise<Buffer> {
    const p = this.shell.path(dir, "dir");
    const { outcome } = await this.shell.run(
      ref,
      {
        script: `${MUST_EXIST}; [ -d "$1" ] || exit 5; tar -c --exclude=./.warren -C "$1" -f - . || exit 6`,
        args: [],
        timeoutMs: 600000,
        maxOutputBytes: MAX_TAR_BYTES,
        what: p,
      },
      (arg) => [arg(p)],
    );
    return outcome.stdout;
  }

  /** Runs a script that prints one entry for `p` (its $1) and returns it. */
  private async one(
    ref: string,
    p: string,
    script: string,
    args: string[] = [],
    stdin?: string | Uint8Array,
  ) {
    const { sandbox, outcome } = await this.shell.run(
      ref,
      { script, args, stdin: stdin ?? "", maxOutputBytes: 64 * 1024, what: p },
      (arg) => [arg(p)],
    );
    return parseEntries(sandbox, this.shell, outcome.stdout)[0];
  }
}

/** @throws InvalidArgumentError unless `mode` is a permission value from 0 to 0o7777 */
function checkMode(mode: number): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new InvalidArgumentError(`mode must be an integer from 0 to 0o7777, got ${mode}`, {
      hint: "pass it as a number, e.g. 0o644 (420)",
    });
  }
  return mode;
}
