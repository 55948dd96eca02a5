/**
 * Path escapes through the file service. Each attack aims the service at a host canary
 * directory (readable and writable by the sandbox uid on the host, so only the sandbox boundary
 * protects it): `..` in paths, absolute and relative symlinks planted in /workspace, a symlink
 * swapped in while operations run, and tar members with `..` or absolute names.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { WarrenError } from "../../src/core/errors.js";
import { bwrapSkipReason, testWarren, type TestWarren } from "../helpers/warren.js";
import { nonce, scenario } from "./support.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# security (files): skipping: ${skip}`);

describe("security: file service path escapes (bwrap)", { skip }, () => {
  let t: TestWarren;
  let canaryDir: string;
  let secret: string;
  before(async () => {
    t = await testWarren();
    canaryDir = mkdtempSync(join(tmpdir(), "warren-canary-"));
    secret = nonce();
    writeFileSync(join(canaryDir, "secret.txt"), `${secret}\n`);
    // The sandbox uid owns the canary on the host: only the sandbox boundary keeps it out.
    const uid = t.warren.config.sandboxUid;
    chownSync(canaryDir, uid, uid);
    chownSync(join(canaryDir, "secret.txt"), uid, uid);
    chmodSync(canaryDir, 0o777);
  });
  after(async () => {
    rmSync(canaryDir, { recursive: true, force: true });
    await t.dispose();
  });

  /** The canary dir holds only the secret, unchanged. */
  const assertCanaryIntact = (): void => {
    assert.deepEqual(readdirSync(canaryDir), ["secret.txt"]);
    assert.equal(readFileSync(join(canaryDir, "secret.txt"), "utf8"), `${secret}\n`);
  };

  /** Whatever an operation returns or throws, it must not carry the secret. */
  const attempt = async (what: string, op: () => Promise<unknown>): Promise<void> => {
    let out: unknown;
    try {
      out = await op();
    } catch (err) {
      assert.ok(err instanceof WarrenError, `${what} threw a non-Warren error: ${String(err)}`);
      out = err.message;
    }
    const text = Buffer.isBuffer(out) ? out.toString("latin1") : (JSON.stringify(out) ?? "");
    assert.ok(!text.includes(secret), `${what} returned the host secret`);
  };

  it("files:dotdot: `..` paths stay inside the sandbox's own root", () =>
    scenario(t, async ({ create }) => {
      const s = await create();
      const { files } = t.warren;
      const up = "/workspace/../../../../..";
      for (const p of [
        `${up}${canaryDir}/secret.txt`,
        `..${canaryDir}/secret.txt`,
        `${canaryDir}/secret.txt`,
      ]) {
        await attempt(`read ${p}`, () => files.read(s.id, p));
        await attempt(`list ${p}`, () => files.list(s.id, `${p}/..`));
        await attempt(`write ${p}`, () => files.write(s.id, p, "pwned"));
        await attempt(`remove ${p}`, () => files.remove(s.id, p, { recursive: true }));
        await attempt(`rename ${p}`, () => files.rename(s.id, p, "/workspace/stolen"));
      }
      await attempt("read /etc/shadow", () => files.read(s.id, `${up}/etc/shadow`));
      assertCanaryIntact();
    }));

  it("files:symlinks: absolute and relative symlinks in /workspace resolve inside the sandbox", () =>
    scenario(t, async ({ create, sh }) => {
      const s = await create();
      const { files } = t.warren;
      const depth = "../".repeat(12);
      await sh(
        s.id,
        `ln -s '${canaryDir}' /workspace/abs; ln -s '${depth}${canaryDir.slice(1)}' /workspace/rel; ` +
          `ln -s '${canaryDir}/secret.txt' /workspace/file`,
      );
      // The links really lead to the canary when followed on the host.
      assert.equal(readFileSync(join(s.workspaceDir, "abs", "secret.txt"), "utf8"), `${secret}\n`);
      for (const link of ["abs", "rel"]) {
        await attempt(`read via ${link}`, () => files.read(s.id, `/workspace/${link}/secret.txt`));
        await attempt(`list via ${link}`, () => files.list(s.id, `/workspace/${link}`));
        await attempt(`write via ${link}`, () => files.write(s.id, `/workspace/${link}/new.txt`, "pwned"));
        await attempt(`mkdir via ${link}`, () => files.mkdir(s.id, `/workspace/${link}/newdir`));
        await attempt(`remove via ${link}`, () =>
          files.remove(s.id, `/workspace/${link}/secret.txt`, { recursive: true }),
        );
        await attempt(`rename via ${link}`, () =>
          files.rename(s.id, `/workspace/${link}/secret.txt`, "/workspace/s"),
        );
        await attempt(`tar via ${link}`, () => files.downloadTar(s.id, `/workspace/${link}`));
        await attempt(`untar via ${link}`, () =>
          files.uploadTar(s.id, `/workspace/${link}`, tarOf({ "x.txt": "x" })),
        );
      }
      await attempt("read via file link", () => files.read(s.id, "/workspace/file"));
      await attempt("write via file link", () => files.write(s.id, "/workspace/file", "pwned"));
      // Removing a link removes the link, never its target.
      await files.remove(s.id, "/workspace/abs", { recursive: true });
      assertCanaryIntact();
    }));

  it("files:swap: a symlink swapped in during operations never lets them out", () =>
    scenario(t, async ({ create }) => {
      const s = await create();
      const { files, processes } = t.warren;
      // Inside the sandbox, flip /workspace/swap between a directory and a link to the canary.
      const flipper = await processes.start(s.id, {
        argv: [
          "sh",
          "-c",
          `while :; do rm -rf /workspace/swap; mkdir -p /workspace/swap; rm -rf /workspace/swap; ln -s '${canaryDir}' /workspace/swap; done`,
        ],
      });
      try {
        for (let i = 0; i < 25; i++) {
          await attempt("swap read", () => files.read(s.id, "/workspace/swap/secret.txt"));
          await attempt("swap write", () => files.write(s.id, `/workspace/swap/w${i}.txt`, "pwned"));
          await attempt("swap remove", () => files.remove(s.id, "/workspace/swap/secret.txt"));
        }
      } finally {
        await processes.signal(s.id, flipper.processId, "KILL").catch(() => undefined);
      }
      assertCanaryIntact();
    }));

  it("files:tar-members: `..` and absolute members are not written outside the target", () =>
    scenario(t, async ({ create }) => {
      const s = await create();
      const tag = nonce();
      const tar = tarOf({
        [`../../escape-${tag}.txt`]: "x",
        [`${canaryDir}/abs-${tag}.txt`]: "x",
        "ok.txt": "ok",
      });
      await t.warren.files.uploadTar(s.id, "/workspace/in", tar).catch(() => undefined);
      assertCanaryIntact();
      const everywhere = spawnSync("find", [t.stateDir, tmpdir(), "-name", `*-${tag}.txt`], {
        encoding: "utf8",
      });
      const outside = everywhere.stdout
        .split("\n")
        .filter(Boolean)
        .filter((p) => !p.startsWith(join(s.workspaceDir, "in") + "/"));
      assert.deepEqual(outside, [], "a tar member landed outside the target directory");
    }));
});

/** A tar archive with the given member names (kept verbatim, `..` and `/` included). */
function tarOf(members: Record<string, string>): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "warren-tar-"));
  try {
    const names = Object.keys(members).map((name, i) => {
      writeFileSync(join(dir, `m${i}`), members[name]);
      return { file: `m${i}`, name };
    });
    const transforms = names.flatMap(({ file, name }) => [`--transform=s|^${file}$|${name}|`]);
    const r = spawnSync("tar", ["-c", "-P", "-C", dir, ...transforms, ...names.map((n) => n.file)]);
    if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
