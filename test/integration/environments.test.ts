/**
 * Environments: `debian-bookworm` is built with debootstrap from Debian's mirror (about 25 s),
 * recorded with size and checksum, used by a bwrap sandbox, and protected while in use. A failed
 * pull leaves nothing behind.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InternalError, InvalidStateError } from "../../src/core/errors.js";
import { bwrapSkipReason, testWarren, type TestWarren } from "../helpers/warren.js";

const skip =
  (await bwrapSkipReason()) || (existsSync("/usr/sbin/debootstrap") ? false : "debootstrap is not installed");
if (skip) console.log(`# environments test: skipping: ${skip}`);

describe("environments", { skip }, () => {
  let t: TestWarren;
  before(async () => {
    t = await testWarren();
  });
  after(async () => {
    await t.dispose();
  });

  it("a pull that fails leaves nothing behind", async () => {
    const saved = process.env.WARREN_DEBIAN_MIRROR;
    process.env.WARREN_DEBIAN_MIRROR = "http://127.0.0.1:9/debian";
    try {
      await assert.rejects(
        t.warren.environments.pull("debian-bookworm"),
        (e: unknown) => e instanceof InternalError && !!e.hint,
      );
    } finally {
      if (saved === undefined) delete process.env.WARREN_DEBIAN_MIRROR;
      else process.env.WARREN_DEBIAN_MIRROR = saved;
    }
    assert.deepEqual(readdirSync(join(t.stateDir, "environments")), []);
    assert.equal(t.warren.environments.inspect("debian-bookworm").installed, false);
  });

  it("debian-bookworm builds with progress, size and checksum, and runs a sandbox", async () => {
    const phases = new Set<string>();
    const info = await t.warren.environments.pull("debian-bookworm", {
      onProgress: (p) => phases.add(p.phase),
    });
    assert.ok(
      phases.has("debootstrap") && phases.has("checksum") && phases.has("done"),
      [...phases].join(","),
    );
    assert.equal(info.installed, true);
    assert.match(info.version, /^12\./);
    assert.match(info.checksum ?? "", /^sha256:[0-9a-f]{64}$/);
    assert.ok((info.sizeBytes ?? 0) > 50 * 1048576, `size ${info.sizeBytes}`);

    const s = await t.warren.sandboxes.create({ environment: "debian-bookworm", name: "deb" });
    const r = await t.warren.sandboxes.exec(s.id, {
      argv: ["sh", "-c", "cat /etc/debian_version; touch /usr/x 2>&1; id -u"],
    });
    assert.equal(r.stdout.split("\n")[0], info.version);
    assert.match(r.stdout, /Read-only file system/);
    assert.match(r.stdout, /\n1000\n$/);

    assert.throws(() => t.warren.environments.remove("debian-bookworm", [s.id]), InvalidStateError);
    await t.warren.sandboxes.delete(s.id);
    const removed = t.warren.environments.remove("debian-bookworm", []);
    assert.equal(removed.installed, false);
    assert.equal(existsSync(join(t.stateDir, "environments", "debian-bookworm")), false);
  });
});
