/**
 * Agent packages without a sandbox: the manifest's typed errors, content-hash versions, and the
 * tar reader and writer (against GNU tar, and against archives that try to leave their directory).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { InvalidArgumentError, NotFoundError } from "../core/errors.js";
import { parseManifest } from "./agents-manifest.js";
import { packageFromTar, packageTar, readPackageDir } from "./agents-package.js";
import { extractEntries, readTar, writeTar } from "./agents-tar.js";

const root = mkdtempSync(join(tmpdir(), "warren-agent-unit-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A package directory with a manifest and files. */
function pkgDir(manifest: unknown, files: Record<string, string> = {}): string {
  const dir = join(root, `pkg-${n++}`);
  mkdirSync(dir);
  writeFileSync(
    join(dir, "warren-agent.json"),
    typeof manifest === "string" ? manifest : JSON.stringify(manifest),
  );
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const tar = (args: string[], input?: Buffer) => {
  const r = spawnSync("tar", args, { input, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr?.toString());
  return r.stdout;
};

describe("agent manifest", () => {
  it("applies defaults and turns a string entrypoint into sh -c", () => {
    const m = parseManifest(JSON.stringify({ name: "a", entrypoint: "echo hi" }));
    assert.deepEqual(m.entrypoint, ["/bin/sh", "-c", "echo hi"]);
    assert.equal(m.network, "none");
    assert.equal(m.timeoutSeconds, 600);
    assert.equal(m.reuse, false);
    assert.equal(m.environment, null);
  });

  it("refuses bad manifests with InvalidArgumentError naming the field, with a hint", () => {
    const cases: Array<[unknown, RegExp]> = [
      ["{not json", /not valid JSON/],
      [{ entrypoint: ["x"] }, /name/],
      [{ name: "a" }, /entrypoint/],
      [{ name: "Bad Name", entrypoint: ["x"] }, /name/],
      [{ name: "a", entrypoint: [] }, /entrypoint/],
      [{ name: "a", entrypoint: ["x"], timeout: 5 }, /timeout/],
      [{ name: "a", entrypoint: ["x"], env: { "1X": "v" } }, /env/],
      [{ name: "a", entrypoint: ["x"], resources: { memoryMiB: 1 } }, /resources\.memoryMiB/],
      [{ name: "a", entrypoint: ["x"], network: "bridge" }, /network/],
      [{ name: "a", entrypoint: ["x"], timeoutSeconds: 0 }, /timeoutSeconds/],
    ];
    for (const [manifest, field] of cases) {
      assert.throws(
        () => parseManifest(typeof manifest === "string" ? manifest : JSON.stringify(manifest)),
        (e: unknown) => {
          assert.ok(e instanceof InvalidArgumentError, `${JSON.stringify(manifest)}: ${String(e)}`);
          assert.match(e.message, field);
          assert.ok(e.hint, "a hint");
          return true;
        },
      );
    }
  });
});

describe("agent packages", () => {
  it("reads a directory; the version is a content hash of paths, exec bits and contents", () => {
    const dir = pkgDir({ name: "p", entrypoint: ["sh", "run.sh"] }, { "run.sh": "echo 1", "lib/a.txt": "a" });
    const a = readPackageDir(dir);
    assert.equal(a.manifest.name, "p");
    assert.deepEqual(
      a.files.map((f) => f.path),
      ["lib/a.txt", "run.sh", "warren-agent.json"],
    );
    assert.deepEqual(a.dirs, ["lib"]);
    assert.match(a.version, /^[0-9a-f]{16}$/);
    assert.equal(readPackageDir(dir).version, a.version, "stable");
    chmodSync(join(dir, "run.sh"), 0o755);
    const b = readPackageDir(dir);
    assert.notEqual(b.version, a.version, "the exec bit counts");
    writeFileSync(join(dir, "lib/a.txt"), "b");
    assert.notEqual(readPackageDir(dir).version, b.version, "contents count");
    const back = packageFromTar(packageTar(b));
    assert.equal(back.version, b.version, "a tar of the package is the same package");
  });

  it("refuses a missing directory or manifest (NotFound), symlinks (InvalidArgument)", () => {
    assert.throws(() => readPackageDir(join(root, "nope")), NotFoundError);
    const empty = join(root, `empty-${n++}`);
    mkdirSync(empty);
    assert.throws(
      () => readPackageDir(empty),
      (e: unknown) => e instanceof NotFoundError && !!e.hint,
    );
    const linked = pkgDir({ name: "l", entrypoint: ["x"] });
    symlinkSync("/etc/passwd", join(linked, "passwd"));
    assert.throws(() => readPackageDir(linked), /symlink/);
  });

  it("reads a package from a GNU tar of its directory, and refuses links in one", () => {
    const dir = pkgDir({ name: "t", entrypoint: ["x"] }, { ["d/".repeat(60) + "deep.txt"]: "deep" });
    const pkg = packageFromTar(tar(["-c", "-C", dir, "."]));
    assert.equal(pkg.version, readPackageDir(dir).version);
    symlinkSync("x", join(dir, "link"));
    assert.throws(() => packageFromTar(tar(["-c", "-C", dir, "."])), InvalidArgumentError);
    assert.throws(() => packageFromTar(Buffer.alloc(1024, 7)), /not a tar archive/);
    assert.throws(() => packageFromTar(writeTar([])), NotFoundError);
    const clash = writeTar([
      {
        path: "warren-agent.json",
        type: "file",
        mode: 0o644,
        data: Buffer.from('{"name":"c","entrypoint":"x"}'),
      },
      { path: "a", type: "file", mode: 0o644, data: Buffer.from("file") },
      { path: "a/b", type: "file", mode: 0o644, data: Buffer.from("under it") },
    ]);
    assert.throws(() => packageFromTar(clash), /both a file and a directory/);
  });
});

describe("tar", () => {
  const long = "x".repeat(120);
  const entries = [
    { path: "a", type: "directory" as const, mode: 0o755, data: Buffer.alloc(0) },
    { path: "a/f.txt", type: "file" as const, mode: 0o644, data: Buffer.from("hello") },
    { path: `a/${long}/g.bin`, type: "file" as const, mode: 0o755, data: Buffer.from([0, 1, 2, 255]) },
    {
      path: "a/link",
      type: "symlink" as const,
      mode: 0o777,
      data: Buffer.alloc(0),
      linkTarget: `f.txt/${long}`,
    },
  ];

  it("round-trips files, directories, long names and symlinks; GNU tar reads what it writes", () => {
    const t = writeTar(entries);
    const back = readTar(t);
    assert.deepEqual(
      back.map((e) => [e.path, e.type, e.data.toString("hex"), e.type === "symlink" ? e.linkTarget : ""]),
      entries.map((e) => [e.path, e.type, e.data.toString("hex"), e.linkTarget ?? ""]),
    );
    assert.equal(back[2].mode, 0o755);
    const out = join(root, `gnu-${n++}`);
    mkdirSync(out);
    tar(["-x", "-C", out], t);
    assert.equal(readFileSync(join(out, "a", long, "g.bin")).toString("hex"), "000102ff");
    assert.equal(readlinkSync(join(out, "a/link")), `f.txt/${long}`);
  });

  it("refuses members that leave the directory, and never writes through a symlink", () => {
    const evil = (name: string) => {
      const t = writeTar([{ path: "placeholder", type: "file", mode: 0o644, data: Buffer.from("x") }]);
      // Rewrite the name and the checksum by hand: the writer itself only makes safe names.
      t.fill(0, 0, 100);
      t.write(name, 0, "utf8");
      t.write(" ".repeat(8), 148, "ascii");
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += t[i];
      t.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
      return t;
    };
    assert.throws(() => readTar(evil("../escape")), InvalidArgumentError);
    assert.throws(() => readTar(evil("/etc/escape")), InvalidArgumentError);
    assert.throws(() => readTar(evil("a/../../escape")), InvalidArgumentError);

    const outside = join(root, `outside-${n++}`);
    mkdirSync(outside);
    const dest = join(root, `dest-${n++}`);
    const attack = [
      { path: "l", type: "symlink" as const, mode: 0o777, data: Buffer.alloc(0), linkTarget: outside },
      { path: "l/pwned", type: "file" as const, mode: 0o644, data: Buffer.from("x") },
      { path: "m", type: "symlink" as const, mode: 0o777, data: Buffer.alloc(0), linkTarget: outside },
      { path: "m/deeper", type: "symlink" as const, mode: 0o777, data: Buffer.alloc(0), linkTarget: "/" },
    ].map((e) => ({ linkTarget: "", ...e }));
    assert.throws(() => extractEntries(attack, dest), InvalidArgumentError);
    assert.ok(!existsSync(join(outside, "pwned")), "nothing written through l");
    assert.ok(!existsSync(join(outside, "deeper")), "nothing written through m");
    assert.equal(readlinkSync(join(dest, "l")), outside, "the symlink itself is kept");
  });
});
