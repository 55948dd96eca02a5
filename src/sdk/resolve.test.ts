import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { InvalidArgumentError, NotFoundError } from "../core/errors.js";
import type { Backend } from "./backend.js";
import { LocalBackend } from "./local.js";
import { RemoteBackend } from "./remote.js";
import { addProfile } from "./profiles.js";
import { leaseBackend, planBackend, resolveBackend } from "./resolve.js";

const KEY = "wk_profile_key_0123456789";
const ENV_KEY = "wk_env_key_abcdefghijkl";

/** A private config home with profiles `remote` (active) and `box` (local); data dir inside. */
function setup(options: { active?: boolean } = {}): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), "warren-resolve-"));
  const env: NodeJS.ProcessEnv = { XDG_CONFIG_HOME: dir, XDG_DATA_HOME: join(dir, "data") };
  addProfile("remote", { url: "https://profile.example", apiKey: KEY }, { env, activate: options.active });
  addProfile("box", { local: true, stateDir: join(dir, "box-state") }, { env });
  return env;
}

const fakeBackend = { createSandbox: async () => ({}) } as unknown as Backend;

describe("backend resolution", () => {
  it("follows the order: option > profile option > WARREN_URL > WARREN_PROFILE > active profile > local", () => {
    const env = setup({ active: true });
    const all = {
      ...env,
      WARREN_URL: "http://env.example:7377",
      WARREN_API_KEY: ENV_KEY,
      WARREN_PROFILE: "box",
    };

    const given = planBackend({ backend: fakeBackend, profile: "box", env: all });
    assert.equal(given.source, "option");
    assert.equal(given.target.kind === "instance" && given.target.backend, fakeBackend);

    const target = planBackend({ backend: { url: "http://given:1", apiKey: KEY }, env: all });
    assert.equal(target.source, "option");
    assert.deepEqual(target.target, { kind: "remote", url: "http://given:1", apiKey: KEY });

    const named = planBackend({ profile: "remote", env: all });
    assert.equal(named.source, "option-profile");
    assert.equal(named.profile, "remote");

    const fromUrl = planBackend({ env: all });
    assert.equal(fromUrl.source, "WARREN_URL");
    assert.deepEqual(fromUrl.target, { kind: "remote", url: "http://env.example:7377", apiKey: ENV_KEY });

    const fromVar = planBackend({ env: { ...env, WARREN_PROFILE: "box" } });
    assert.equal(fromVar.source, "WARREN_PROFILE");
    assert.deepEqual(fromVar.target, { kind: "local", stateDir: join(env.XDG_CONFIG_HOME!, "box-state") });

    const active = planBackend({ env });
    assert.equal(active.source, "active-profile");
    assert.equal(active.profile, "remote");
    assert.deepEqual(active.target, { kind: "remote", url: "https://profile.example", apiKey: KEY });

    const fallback = planBackend({ env: setup() });
    assert.equal(fallback.source, "default-local");
    assert.deepEqual(fallback.target, { kind: "local" });
  });

  it("descriptions never carry a whole key", () => {
    const env = setup({ active: true });
    for (const plan of [
      planBackend({ env }),
      planBackend({ env: { ...env, WARREN_URL: "http://h:1", WARREN_API_KEY: ENV_KEY } }),
      planBackend({ backend: { url: "http://h:1", apiKey: KEY } }),
    ]) {
      assert.equal(plan.description.includes(KEY) || plan.description.includes(ENV_KEY), false);
      assert.match(plan.description, /\*\*\*\*/);
    }
  });

  it("rejects a bad URL, a URL without a key and an unknown profile with typed errors", () => {
    const env = setup();
    assert.throws(() => planBackend({ env: { ...env, WARREN_URL: "http://h:1" } }), InvalidArgumentError);
    assert.throws(
      () => planBackend({ env: { ...env, WARREN_URL: "not a url", WARREN_API_KEY: KEY } }),
      InvalidArgumentError,
    );
    assert.throws(() => planBackend({ backend: { url: "ftp://h", apiKey: KEY } }), InvalidArgumentError);
    assert.throws(() => planBackend({ env: { ...env, WARREN_PROFILE: "nope" } }), NotFoundError);
    assert.throws(() => planBackend({ profile: "nope", env }), NotFoundError);
  });

  it("WARREN_API_KEY alone does not pick a server", () => {
    assert.equal(planBackend({ env: { ...setup(), WARREN_API_KEY: ENV_KEY } }).source, "default-local");
  });

  it("opens local Warren (configured or the profile's state dir) or a RemoteBackend; a given backend is not 'opened'", async () => {
    const env = setup();
    const config = { logLevel: "silent" as const };
    const local = await resolveBackend({ env, config });
    try {
      assert.equal(local.source, "default-local");
      assert.equal(local.opened, true);
      assert.ok(local.backend instanceof LocalBackend);
      assert.equal((await local.backend.info()).location, join(env.XDG_DATA_HOME!, "warren"));
    } finally {
      await local.backend.close();
    }
    const box = await resolveBackend({ env: { ...env, WARREN_PROFILE: "box" }, config });
    try {
      assert.equal((await box.backend.info()).location, join(env.XDG_CONFIG_HOME!, "box-state"));
    } finally {
      await box.backend.close();
    }
    const remote = await resolveBackend({
      env: { ...env, WARREN_URL: "http://127.0.0.1:9", WARREN_API_KEY: KEY },
    });
    assert.ok(remote.backend instanceof RemoteBackend);
    assert.deepEqual([remote.source, remote.opened], ["WARREN_URL", true]);
    assert.equal(
      (await remote.backend.info().catch((e: Error) => e)).constructor.name,
      "DriverUnavailableError",
    );
    await remote.backend.close();
    const given = await resolveBackend({ backend: fakeBackend });
    assert.equal(given.backend, fakeBackend);
    assert.equal(given.opened, false);
  });

  it("leases share one opened backend and close it with the last release", async () => {
    const env = setup();
    const options = { env, config: { logLevel: "silent" as const } };
    const a = await leaseBackend(options);
    const b = await leaseBackend(options);
    assert.equal(a.backend, b.backend);
    await a.release();
    await a.release();
    assert.deepEqual(await b.backend.listSandboxes(), [], "still open while b holds it");
    await b.release();
    const c = await leaseBackend(options);
    assert.notEqual(c.backend, a.backend, "a new backend after the last release");
    await c.release();
    const given = await leaseBackend({ backend: fakeBackend });
    assert.equal(given.backend, fakeBackend);
    await given.release();
  });
});
