/**
 * `sandbox.files`: the sandbox's file system. Paths are sandbox paths; a relative one is taken
 * from `/workspace`. Operations run inside the running sandbox, as its user.
 */
import type { FileEntry } from "../core/types.js";
import type { SandboxContext } from "./commands.js";

/** Options of `files.read`. */
export interface ReadOptions {
  /** `text` decodes UTF-8 into a string; `bytes` returns a Buffer. @default "text" */
  format?: "text" | "bytes";
}

/** Files of one sandbox: `sandbox.files`. */
export class Files {
  /** @internal */
  constructor(private readonly ctx: SandboxContext) {}

  /** Reads a file as UTF-8 text. */
  read(path: string, options?: { format?: "text" }): Promise<string>;
  /** Reads a file as bytes. */
  read(path: string, options: { format: "bytes" }): Promise<Buffer>;
  /** Reads a file as text or bytes, as `format` says. */
  read(path: string, options?: ReadOptions): Promise<string | Buffer>;
  /**
   * Reads a file (up to 64 MiB; use `downloadTar` for more).
   * @throws NotFoundError, InvalidArgumentError (a directory), LimitExceededError (too large)
   */
  async read(path: string, options: ReadOptions = {}): Promise<string | Buffer> {
    const data = await this.ctx.backend().readFile(this.ctx.ref, path);
    return options.format === "bytes" ? data : data.toString("utf8");
  }

  /**
   * Writes a file atomically, creating parent directories. Without `mode`, an existing file keeps
   * its mode.
   * @throws InvalidArgumentError (a directory, a read-only place, a bad mode)
   */
  write(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<FileEntry> {
    return this.ctx.backend().writeFile(this.ctx.ref, path, data, options);
  }

  /**
   * Lists a directory `depth` levels deep (1 = its entries), sorted by path.
   * @throws NotFoundError, InvalidArgumentError (not a directory)
   */
  list(path = "/workspace", options: { depth?: number } = {}): Promise<FileEntry[]> {
    return this.ctx.backend().listFiles(this.ctx.ref, path, options);
  }

  /** One entry (a symlink itself, not its target). @throws NotFoundError */
  stat(path: string): Promise<FileEntry> {
    return this.ctx.backend().statFile(this.ctx.ref, path);
  }

  /** Whether anything (a dangling symlink too) exists at the path. */
  exists(path: string): Promise<boolean> {
    return this.ctx.backend().exists(this.ctx.ref, path);
  }

  /** Creates a directory and its parents; an existing directory is fine. @throws InvalidArgumentError (a file is there) */
  makeDir(path: string): Promise<FileEntry> {
    return this.ctx.backend().makeDir(this.ctx.ref, path);
  }

  /**
   * Removes a file, a symlink (not its target) or a directory (a non-empty one only with
   * `recursive`).
   * @throws NotFoundError, InvalidStateError (a non-empty directory without `recursive`)
   */
  remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    return this.ctx.backend().removeFile(this.ctx.ref, path, options);
  }

  /** Renames (moves) an entry, creating the target's parents; returns it at its new path. @throws NotFoundError */
  rename(from: string, to: string): Promise<FileEntry> {
    return this.ctx.backend().renameFile(this.ctx.ref, from, to);
  }

  /** Unpacks a tar archive into a directory of the sandbox (created if missing). */
  uploadTar(dir: string, tar: Uint8Array): Promise<void> {
    return this.ctx.backend().uploadTar(this.ctx.ref, dir, tar);
  }

  /** Packs a directory of the sandbox into a tar archive. @throws NotFoundError */
  downloadTar(dir: string): Promise<Buffer> {
    return this.ctx.backend().downloadTar(this.ctx.ref, dir);
  }
}
