import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { resolveConfig } from "../core/config.js";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "../core/errors.js";
import {
  addProfile,
  getProfile,
  readProfiles,
  redactKey,
  redactProfile,
  removeProfile,
  useProfile,
} from "./profiles.js";

const KEY = "wk_0123456789abcdefWXYZ";

/** An environment with a private XDG_CONFIG_HOME, optionally with a config file. */
function envWith(content?: unknown): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), "warren-profiles-"));
  if (content !== undefined) {
    mkdirSync(join(dir, "warren"));
    writeFileSync(join(dir, "warren", "config.json"), JSON.stringify(content));
  }
  return { XDG_CONFIG_HOME: dir, XDG_DATA_HOME: join(dir, "data") };
}

const fileOf = (env: NodeJS.ProcessEnv) => join(env.XDG_CONFIG_HOME!, "warren", "config.json");

describe("profiles", () => {
  it("no file means no profiles and none active", () => {
    const env = envWith();
    assert.deepEqual(readProfiles(env), { path: fileOf(env), profiles: {}, activeProfile: null });
  });

  it("add, use, get, rm; the file is 0600 and written atomically", () => {
    const env = envWith();
    addProfile("prod", { url: "https://warren.example", apiKey: KEY }, { env });
    addProfile("mine", { local: true, stateDir: "/srv/warren" }, { env, activate: true });
    assert.equal(statSync(fileOf(env)).mode & 0o777, 0o600);
    assert.equal(statSync(join(env.XDG_CONFIG_HOME!, "warren")).mode & 0o777, 0o700);
    assert.deepEqual(
      readdirSync(join(env.XDG_CONFIG_HOME!, "warren")),
      ["config.json"],
      "no temporary file left",
    );
    assert.equal(readProfiles(env).activeProfile, "mine");
    useProfile("prod", env);
    assert.equal(readProfiles(env).activeProfile, "prod");
    assert.deepEqual(getProfile("prod", env), { url: "https://warren.example", apiKey: KEY });
    removeProfile("prod", env);
    assert.equal(readProfiles(env).activeProfile, null, "removing the active profile clears the choice");
    assert.deepEqual(Object.keys(readProfiles(env).profiles), ["mine"]);
    useProfile(null, env);
    assert.equal(readProfiles(env).activeProfile, null);
  });

  it("keeps the other settings of the config file, which config.ts still reads", () => {
    const env = envWith({ defaultMemoryMiB: 1024 });
    addProfile("prod", { url: "http://127.0.0.1:7377", apiKey: KEY }, { env, activate: true });
    const raw = JSON.parse(readFileSync(fileOf(env), "utf8"));
    assert.equal(raw.defaultMemoryMiB, 1024);
    assert.equal(raw.activeProfile, "prod");
    assert.equal(resolveConfig({}, env).defaultMemoryMiB, 1024, "profiles do not upset the config");
    assert.equal("profiles" in resolveConfig({}, env), false);
  });

  it("rejects bad names, bad profiles, taken names and unknown names with typed errors", () => {
    const env = envWith();
    assert.throws(() => addProfile("../x", { local: true }, { env }), InvalidArgumentError);
    assert.throws(() => addProfile("p", { url: "ftp://x", apiKey: KEY }, { env }), InvalidArgumentError);
    assert.throws(() => addProfile("p", { url: "http://x", apiKey: "" }, { env }), InvalidArgumentError);
    assert.throws(() => addProfile("p", { local: true, stateDir: "rel/dir" }, { env }), InvalidArgumentError);
    addProfile("p", { local: true }, { env });
    assert.throws(() => addProfile("p", { local: true }, { env }), AlreadyExistsError);
    addProfile("p", { url: "http://x", apiKey: KEY }, { env, replace: true });
    assert.throws(() => getProfile("nope", env), NotFoundError);
    assert.throws(() => useProfile("nope", env), NotFoundError);
    assert.throws(() => removeProfile("nope", env), NotFoundError);
    assert.throws(() => getProfile("toString", env), NotFoundError, "no prototype keys");
  });

  it("an invalid profile in the file is an InvalidArgumentError naming the field", () => {
    const env = envWith({ profiles: { bad: { url: "http://x" } } });
    assert.throws(
      () => readProfiles(env),
      (e: unknown) => e instanceof InvalidArgumentError && /profiles\.bad/.test(e.hint ?? ""),
    );
  });

  it("redacts keys: only the last four characters of a long key, nothing of a short one", () => {
    assert.equal(redactKey(KEY), "****WXYZ");
    assert.equal(redactKey("short-key"), "****");
    const shown = redactProfile({ url: "http://x", apiKey: KEY });
    assert.deepEqual(shown, { url: "http://x", apiKey: "****WXYZ" });
    assert.equal(JSON.stringify(shown).includes("0123456789"), false);
    assert.deepEqual(redactProfile({ local: true }), { local: true });
  });
});
