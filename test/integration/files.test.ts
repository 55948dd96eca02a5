/**
 * The file service on real sandboxes: every operation, its typed errors, and that a failed
 * operation changes nothing. Runs on bwrap (and the host driver for the path mapping).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  InvalidArgumentError,
  InvalidStateError,
  LimitExceededError,
  NotFoundError,
  NotSupportedError,
} from "../../src/core/errors.js";
import type { Sandbox } from "../../src/core/types.js";
import { MAX_READ_BYTES } from "../../src/service/files.js";
import { bwrapSkipReason, testWarren, type TestWarren } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# files: skipping: ${skip}`);

describe("files (bwrap)", { skip }, () => {
  let t: TestWarren;
  let s: Sandbox;
  before(async () => {
    t = await testWarren();
    s = await t.warren.sandboxes.create({ driver: "bwrap" });
  });
  after(async () => {
    await t.dispose();
  });

  it("write creates parents, read returns the bytes, and the file is the sandbox user's", async () => {
    const { files } = t.warren;
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13]);
    const e = await files.write(s.id, "/workspace/a/b/c.bin", bytes);
    assert.equal(e.path, "/workspace/a/b/c.bin");
    assert.equal(e.type, "file");
    assert.equal(e.sizeBytes, 6);
    assert.deepEqual(await files.read(s.id, "/workspace/a/b/c.bin"), bytes);
    // Relative paths are taken from /workspace.
    assert.deepEqual(await files.read(s.id, "a/b/c.bin"), bytes);
    const host = join(s.workspaceDir, "a/b/c.bin");
    assert.deepEqual(readFileSync(host), bytes);
    assert.equal(statSync(host).uid, t.warren.config.sandboxUid);
  });

  it("write sets a mode, keeps an existing mode, and replaces atomically", async () => {
    const { files } = t.warren;
    assert.equal(
      (await files.write(s.id, "/workspace/run.sh", "#!/bin/sh\necho ran\n", { mode: 0o755 })).mode,
      0o755,
    );
    assert.equal((await files.write(s.id, "/workspace/run.sh", "#!/bin/sh\necho again\n")).mode, 0o755);
    const r = await t.warren.sandboxes.exec(s.id, { argv: ["/workspace/run.sh"] });
    assert.equal(r.stdout, "again\n");
    // No temporary file is left behind.
    assert.deepEqual(
      (await files.list(s.id, "/workspace")).map((e) => e.name).filter((n) => n.startsWith(".warren-write")),
      [],
    );
    await assert.rejects(files.write(s.id, "/workspace/x", "x", { mode: 0o17777 }), InvalidArgumentError);
  });

  it("list goes to the asked depth, sorted, with symlinks described and not followed", async () => {
    const { files } = t.warren;
    await files.write(s.id, "/workspace/tree/one.txt", "1");
    await files.write(s.id, "/workspace/tree/sub/two.txt", "22");
    await t.warren.sandboxes.exec(s.id, { argv: ["ln", "-s", "/etc", "/workspace/tree/etc-link"] });
    const shallow = await files.list(s.id, "/workspace/tree");
    assert.deepEqual(
      shallow.map((e) => [e.name, e.type]),
      [
        ["etc-link", "symlink"],
        ["one.txt", "file"],
        ["sub", "directory"],
      ],
    );
    assert.equal(shallow[0].linkTarget, "/etc");
    const deep = await files.list(s.id, "/workspace/tree", { depth: 2 });
    assert.deepEqual(
      deep.map((e) => e.path),
      [
        "/workspace/tree/etc-link",
        "/workspace/tree/one.txt",
        "/workspace/tree/sub",
        "/workspace/tree/sub/two.txt",
      ],
    );
    assert.equal(deep[3].sizeBytes, 2);
    await assert.rejects(files.list(s.id, "/workspace/tree/one.txt"), InvalidArgumentError);
    await assert.rejects(files.list(s.id, "/workspace/nope"), NotFoundError);
    await assert.rejects(files.list(s.id, "/workspace/tree", { depth: 0 }), InvalidArgumentError);
  });

  it("stat, exists, mkdir, rename and remove behave and fail with typed errors", async () => {
    const { files } = t.warren;
    assert.equal(await files.exists(s.id, "/workspace/m/n"), false);
    assert.equal((await files.mkdir(s.id, "/workspace/m/n")).type, "directory");
    assert.equal(
      (await files.mkdir(s.id, "/workspace/m/n")).type,
      "directory",
      "mkdir of a directory is fine",
    );
    assert.equal(await files.exists(s.id, "/workspace/m/n"), true);
    await files.write(s.id, "/workspace/m/n/f.txt", "f");
    await assert.rejects(files.mkdir(s.id, "/workspace/m/n/f.txt"), InvalidArgumentError);
    await assert.rejects(files.stat(s.id, "/workspace/none"), NotFoundError);
    await assert.rejects(files.read(s.id, "/workspace/m"), InvalidArgumentError);
    const moved = await files.rename(s.id, "/workspace/m/n/f.txt", "/workspace/moved/g.txt");
    assert.equal(moved.path, "/workspace/moved/g.txt");
    assert.equal(existsSync(join(s.workspaceDir, "m/n/f.txt")), false);
    await assert.rejects(files.rename(s.id, "/workspace/none", "/workspace/x"), NotFoundError);
    await files.write(s.id, "/workspace/m/n/h.txt", "h");
    await assert.rejects(files.remove(s.id, "/workspace/m"), InvalidStateError, "not empty needs recursive");
    assert.equal(existsSync(join(s.workspaceDir, "m/n/h.txt")), true, "a refused remove removes nothing");
    await files.remove(s.id, "/workspace/m", { recursive: true });
    assert.equal(existsSync(join(s.workspaceDir, "m")), false);
    await assert.rejects(files.remove(s.id, "/workspace/m"), NotFoundError);
    await assert.rejects(files.remove(s.id, "/workspace", { recursive: true }), InvalidArgumentError);
  });

  it("system directories are read-only: a write fails with a hint and creates nothing", async () => {
    const err = await t.warren.files.write(s.id, "/usr/local/evil", "x").catch((e: unknown) => e);
    assert.ok(err instanceof InvalidArgumentError, String(err));
    assert.match(err.hint ?? "", /read-only/);
    assert.equal(existsSync("/usr/local/evil"), false);
  });

  it("tar round trip: download a directory and unpack it elsewhere, without Warren's own records", async () => {
    const { files } = t.warren;
    await files.write(s.id, "/workspace/src/main.py", "print(1)\n");
    await files.write(s.id, "/workspace/src/lib/util.py", "X = 2\n");
    const tar = await files.downloadTar(s.id, "/workspace/src");
    const names = spawnSync("tar", ["-t"], { input: tar, encoding: "utf8" })
      .stdout.split("\n")
      .filter(Boolean);
    assert.deepEqual(names.sort(), ["./", "./lib/", "./lib/util.py", "./main.py"]);
    await files.uploadTar(s.id, "/workspace/copy", tar);
    assert.equal((await files.read(s.id, "/workspace/copy/lib/util.py")).toString(), "X = 2\n");
    await assert.rejects(files.downloadTar(s.id, "/workspace/nope"), NotFoundError);
  });

  it("read streams chunks and refuses a file over the limit", async () => {
    const { files } = t.warren;
    await t.warren.sandboxes.exec(s.id, {
      argv: [
        "sh",
        "-c",
        "head -c 3000000 /dev/zero > /workspace/big; truncate -s $1 /workspace/huge",
        "sh",
        String(MAX_READ_BYTES + 1),
      ],
    });
    let streamed = 0;
    const data = await files.read(s.id, "/workspace/big", { onChunk: (c) => (streamed += c.length) });
    assert.equal(data.length, 3000000);
    assert.equal(streamed, 3000000);
    await assert.rejects(files.read(s.id, "/workspace/huge"), LimitExceededError);
  });

  it("a stopped sandbox's files cannot be touched until it starts again", async () => {
    const other = await t.warren.sandboxes.create({ driver: "bwrap" });
    await t.warren.files.write(other.id, "/workspace/keep.txt", "kept");
    await t.warren.sandboxes.stop(other.id);
    await assert.rejects(t.warren.files.read(other.id, "/workspace/keep.txt"), InvalidStateError);
    await t.warren.sandboxes.start(other.id);
    assert.equal((await t.warren.files.read(other.id, "/workspace/keep.txt")).toString(), "kept");
  });
});

describe("files (host and fake drivers)", () => {
  let t: TestWarren;
  before(async () => {
    t = await testWarren();
  });
  after(async () => {
    await t.dispose();
  });

  it("the host driver maps /workspace to the workspace directory and refuses other paths", async () => {
    const s = await t.warren.sandboxes.create({ driver: "host", allowHost: true });
    const e = await t.warren.files.write(s.id, "/workspace/d/x.txt", "on host");
    assert.equal(e.path, "/workspace/d/x.txt");
    assert.equal(readFileSync(join(s.workspaceDir, "d/x.txt"), "utf8"), "on host");
    assert.deepEqual(
      (await t.warren.files.list(s.id, "/workspace")).map((f) => f.path),
      ["/workspace/d"],
    );
    await assert.rejects(t.warren.files.read(s.id, "/etc/passwd"), InvalidArgumentError);
    await assert.rejects(t.warren.files.read(s.id, "/workspace/../../etc/passwd"), InvalidArgumentError);
  });

  it("the fake driver says it cannot, with a typed error", async () => {
    const s = await t.warren.sandboxes.create({ driver: "fake" });
    await assert.rejects(t.warren.files.read(s.id, "/workspace/x"), NotSupportedError);
    await assert.rejects(t.warren.processes.start(s.id, { argv: ["true"] }), NotSupportedError);
  });
});
