/**
 * `warren cp`: copy files and directories between the host and a sandbox, like `docker cp`.
 * One side is `SANDBOX:PATH`; the other a host path, or `-` for stdin/stdout (a file's bytes).
 * Directories travel as tar archives, unpacked by the receiving side's tar.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, posix } from "node:path";
import { Command } from "commander";
import { InternalError, InvalidArgumentError, NotFoundError } from "../../core/errors.js";
import type { Backend } from "../../sdk/backend.js";
import { runVerb, withJson } from "../context.js";
import { printJson } from "../render.js";

/** `SANDBOX:PATH` split, or null for a host path. */
export function parseSandboxPath(arg: string): { sandbox: string; path: string } | null {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]*):(.*)$/.exec(arg);
  if (!m) return null;
  return { sandbox: m[1], path: m[2] === "" ? "/workspace" : m[2] };
}

/** What was copied. */
interface CopyReport {
  from: string;
  to: string;
  type: "file" | "directory";
  bytes: number;
}

/** Where a copy lands: inside `dst` when it is an existing directory (or ends with /). */
async function sandboxTarget(b: Backend, ref: string, dst: string, name: string): Promise<string> {
  if (dst.endsWith("/")) return posix.join(dst, name);
  const st = await b.statFile(ref, dst).catch((e: unknown) => {
    if (e instanceof NotFoundError) return null;
    throw e;
  });
  return st?.type === "directory" ? posix.join(dst, name) : dst;
}

async function toSandbox(b: Backend, src: string, ref: string, dst: string): Promise<CopyReport> {
  if (src === "-") {
    const data = readFileSync(0);
    const e = await b.writeFile(ref, dst, data);
    return { from: "-", to: `${ref}:${e.path}`, type: "file", bytes: data.length };
  }
  if (!existsSync(src)) {
    throw new NotFoundError(`host path ${src} does not exist`, { hint: "check the source path" });
  }
  const st = statSync(src);
  const target = await sandboxTarget(b, ref, dst, basename(src));
  if (st.isDirectory()) {
    const tar = spawnSync("tar", ["-c", "-C", src, "."], { maxBuffer: 2 ** 31 - 1 });
    if (tar.status !== 0)
      throw new InternalError(`tar could not read ${src}: ${tar.stderr.toString().trim()}`);
    await b.uploadTar(ref, target, tar.stdout);
    return { from: src, to: `${ref}:${target}`, type: "directory", bytes: tar.stdout.length };
  }
  if (!st.isFile()) throw new InvalidArgumentError(`${src} is neither a file nor a directory`);
  const data = readFileSync(src);
  const e = await b.writeFile(ref, target, data, { mode: st.mode & 0o777 });
  return { from: src, to: `${ref}:${e.path}`, type: "file", bytes: data.length };
}

async function fromSandbox(b: Backend, ref: string, src: string, dst: string): Promise<CopyReport> {
  const st = await b.statFile(ref, src);
  if (st.type === "directory") {
    if (dst === "-")
      throw new InvalidArgumentError("a directory cannot be copied to stdout", {
        hint: "name a host directory",
      });
    const target = existsSync(dst) && statSync(dst).isDirectory() ? join(dst, posix.basename(st.path)) : dst;
    const tar = await b.downloadTar(ref, st.path);
    mkdirSync(target, { recursive: true });
    const r = spawnSync("tar", ["-x", "-C", target, "--no-same-owner"], { input: tar });
    if (r.status !== 0)
      throw new InternalError(`tar could not unpack into ${target}: ${r.stderr.toString().trim()}`);
    return { from: `${ref}:${st.path}`, to: target, type: "directory", bytes: tar.length };
  }
  const data = await b.readFile(ref, st.path);
  if (dst === "-") {
    process.stdout.write(data);
    return { from: `${ref}:${st.path}`, to: "-", type: "file", bytes: data.length };
  }
  const target =
    dst.endsWith("/") || (existsSync(dst) && statSync(dst).isDirectory())
      ? join(dst, posix.basename(st.path))
      : dst;
  writeFileSync(target, data, { mode: st.mode & 0o777 });
  return { from: `${ref}:${st.path}`, to: target, type: "file", bytes: data.length };
}

export function cpCommand(): Command {
  const cmd = new Command("cp")
    .description(
      "copy between the host and a sandbox: `warren cp ./src box:/workspace/` or `warren cp box:/workspace/out.txt .` (- is stdin/stdout)",
    )
    .argument("<source>", "host path, SANDBOX:PATH, or - (stdin)")
    .argument("<destination>", "host path, SANDBOX:PATH, or - (stdout)");
  withJson(cmd).action(async (source: string, destination: string, f: { json?: boolean }) =>
    runVerb(f.json, async (b) => {
      const [s, d] = [parseSandboxPath(source), parseSandboxPath(destination)];
      if ((s === null) === (d === null)) {
        throw new InvalidArgumentError("exactly one side of `warren cp` must be SANDBOX:PATH", {
          hint: "e.g. `warren cp notes.txt mybox:/workspace/` or `warren cp mybox:/workspace/out .`",
        });
      }
      if (f.json && destination === "-") {
        throw new InvalidArgumentError("--json cannot be used when copying to stdout");
      }
      const report = d
        ? await toSandbox(b, source, d.sandbox, d.path)
        : await fromSandbox(b, s!.sandbox, s!.path, destination);
      if (f.json) printJson(report);
      else if (report.to !== "-")
        process.stderr.write(`copied ${report.type} ${report.from} → ${report.to} (${report.bytes} bytes)\n`);
    }),
  );
  return cmd;
}
