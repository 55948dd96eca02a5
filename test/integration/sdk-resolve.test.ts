/**
 * The SDK choosing its backend itself (no `backend` option): local Warren from WARREN_HOME,
 * a server from WARREN_URL, a profile from WARREN_PROFILE or the active one; and what it opened
 * is closed with the last handle.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { UnauthorizedError } from "../../src/core/errors.js";
import type { Backend } from "../../src/sdk/backend.js";
import { addProfile } from "../../src/sdk/profiles.js";
import { RemoteBackend } from "../../src/sdk/remote.js";
import { Sandbox } from "../../src/sdk/sandbox.js";
import { bwrapSkipReason, leakedCgroups } from "../helpers/warren.js";
import { remoteFactory, type BackendFixture } from "./sdk-backends.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# sdk-resolve: skipping: ${skip}`);

const VARS = [
  "WARREN_HOME",
  "XDG_CONFIG_HOME",
  "WARREN_LOG_LEVEL",
  "WARREN_URL",
  "WARREN_API_KEY",
  "WARREN_PROFILE",
];

/** Runs `fn` with exactly these WARREN_* / XDG_CONFIG_HOME variables set, then restores them. */
async function withEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));
  for (const v of VARS) delete process.env[v];
  Object.assign(process.env, { WARREN_LOG_LEVEL: "silent" }, vars);
  try {
    await fn();
  } finally {
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  }
}

describe("SDK without a backend option (bwrap)", { skip }, () => {
  let remote: BackendFixture;
  let home: string;
  before(async () => {
    remote = await remoteFactory.open();
    home = mkdtempSync(join(tmpdir(), "warren-sdk-env-"));
    chmodSync(home, 0o711);
  });
  after(async () => {
    await remote?.dispose();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it("local Warren from WARREN_HOME: shared by handles, closed with the last one", async () => {
    const stateDir = join(home, "state");
    await withEnv({ WARREN_HOME: stateDir, XDG_CONFIG_HOME: join(home, "config") }, async () => {
      let backend: Backend;
      {
        await using sbx = await Sandbox.create({ driver: "bwrap" });
        assert.equal(sbx.backendSource, "default-local");
        backend = sbx.backend;
        assert.equal((await backend.info()).location, stateDir);
        const other = await Sandbox.connect(sbx.id);
        assert.equal(other.backend, backend, "one backend for every handle");
        await other.close();
        assert.equal((await sbx.commands.run("echo ok")).stdout, "ok\n", "still open after the other closed");
      }
      await assert.rejects(backend.listSandboxes(), "closed with the last handle");
      assert.deepEqual(leakedCgroups(stateDir), []);
    });
  });

  it("a server from WARREN_URL + WARREN_API_KEY, from { url, apiKey }, and from profiles", async () => {
    const { url, token } = remote as Required<BackendFixture>;
    const config = join(home, "config-remote");
    await withEnv({ WARREN_URL: url, WARREN_API_KEY: token, XDG_CONFIG_HOME: config }, async () => {
      await using sbx = await Sandbox.create({ driver: "bwrap", labels: { via: "env" } });
      assert.equal(sbx.backendSource, "WARREN_URL");
      assert.ok(sbx.backend instanceof RemoteBackend);
      assert.equal((await sbx.commands.run("echo remote")).stdout, "remote\n");
      assert.deepEqual(
        (await remote.backend.listSandboxes({ labels: { via: "env" } })).map((s) => s.id),
        [sbx.id],
        "the sandbox lives behind the server",
      );
    });
    await withEnv({ XDG_CONFIG_HOME: config }, async () => {
      const list = await Sandbox.list({ backend: { url, apiKey: token }, labels: { via: "env" }, all: true });
      assert.equal(list[0]?.state, "deleted");
      addProfile("srv", { url, apiKey: token }, { activate: true });
      const viaActive = await Sandbox.create({ driver: "bwrap" });
      assert.equal(viaActive.backendSource, "active-profile");
      await viaActive[Symbol.asyncDispose]();
      addProfile("wrong", { url, apiKey: "not-the-token-0123456789" });
      await withEnv({ XDG_CONFIG_HOME: config, WARREN_PROFILE: "wrong" }, async () => {
        await assert.rejects(Sandbox.list(), UnauthorizedError);
      });
    });
  });
});
