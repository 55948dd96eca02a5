import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import type { PoolConfig } from "../core/config.js";
import { InvalidArgumentError } from "../core/errors.js";
import { createBuiltinRegistry } from "../drivers/index.js";
import { AGENT_LABEL } from "./agents-run.js";
import { openWarren, parsePrewarm, parseSpecKey, type Warren } from "./index.js";

const KEY = "fake/host,cpus=1,memory=512,pids=512,network=none";
const opened: Warren[] = [];

async function open(pool: Partial<PoolConfig> = {}): Promise<Warren> {
  const stateDir = mkdtempSync(join(tmpdir(), "warren-pool-"));
  chmodSync(stateDir, 0o711);
  const w = await openWarren({
    config: {
      stateDir,
      defaultDriver: "fake",
      logLevel: "silent",
      pool: { prewarm: {}, maxInstances: 16, idleTimeoutSeconds: 300, ...pool },
    },
    env: { HOME: stateDir },
    registry: createBuiltinRegistry,
  });
  opened.push(w);
  return w;
}

afterEach(async () => {
  for (const w of opened.splice(0)) {
    await w.pool.drain();
    w.close();
    rmSync(w.config.stateDir, { recursive: true, force: true });
  }
});

const keyStats = (w: Warren, key = KEY) => w.pool.stats().keys.find((k) => k.key === key);
const readyIds = (w: Warren, key = KEY): string[] =>
  w.store.pool
    .list()
    .filter((p) => p.specKey === key && p.state === "ready" && p.affinity === null)
    .map((p) => p.id);

/** Opens a Warren whose keeper has filled the pool. */
async function warm(n: number, pool: Partial<PoolConfig> = {}): Promise<Warren> {
  const w = await open({ prewarm: { fake: n }, ...pool });
  w.pool.start();
  await w.pool.tick();
  return w;
}

describe("warm pool (fake driver)", () => {
  it("with no prewarm, every create is a miss on the same path", async () => {
    const w = await open();
    const s = await w.sandboxes.create({ name: "plain" });
    assert.equal(s.state, "running");
    assert.deepEqual(
      { hits: keyStats(w)?.hits, misses: keyStats(w)?.misses, instances: w.pool.stats().instances },
      { hits: 0, misses: 1, instances: 0 },
    );
  });

  it("prewarm keeps N started instances; a create of that spec takes one with its name, labels, env, TTL", async () => {
    const w = await warm(2);
    const ready = readyIds(w);
    assert.equal(ready.length, 2);
    assert.equal(keyStats(w)?.refills, 2);
    assert.equal(keyStats(w)?.refillMs.samples, 2);
    const s = await w.sandboxes.create({
      name: "box",
      labels: { team: "a" },
      env: { FOO: "bar" },
      ttlSeconds: 600,
    });
    assert.ok(ready.includes(s.id), "the sandbox takes the pooled instance's id");
    assert.deepEqual(
      [s.name, s.labels, s.env, s.ttlSeconds, s.state],
      ["box", { team: "a" }, { FOO: "bar" }, 600, "running"],
    );
    assert.ok(Date.parse(s.expiresAt!) - Date.now() > 590_000, "the TTL runs from the checkout");
    const r = await w.sandboxes.exec("box", { argv: ["printenv", "FOO"] });
    assert.equal(r.stdout.trim(), "bar");
    assert.deepEqual([keyStats(w)?.hits, keyStats(w)?.misses, w.pool.stats().hitRate], [1, 0, 1]);
    assert.deepEqual(
      w.sandboxes.list().map((x) => x.id),
      [s.id],
      "pooled instances are not sandboxes",
    );
  });

  it("a create of another spec is a miss and leaves the pool alone", async () => {
    const w = await warm(2);
    await w.sandboxes.create({ memoryMiB: 1024 });
    assert.equal(keyStats(w, KEY.replace("memory=512", "memory=1024"))?.misses, 1);
    assert.equal(readyIds(w).length, 2);
  });

  it("refills in the background after a checkout", async () => {
    const w = await warm(2);
    await w.sandboxes.create({});
    assert.equal(readyIds(w).length, 1);
    await w.pool.tick();
    assert.equal(readyIds(w).length, 2);
    assert.equal(keyStats(w)?.refills, 3);
  });

  it("never holds more than maxInstances, every key together", async () => {
    const w = await open({ prewarm: { fake: 3, "fake/host,memory=256": 3 }, maxInstances: 4 });
    w.pool.start();
    await w.pool.tick();
    assert.equal(w.pool.stats().instances, 4);
    const s = await w.sandboxes.create({ labels: { [AGENT_LABEL]: "a" } });
    await w.pool.tick();
    assert.equal(w.pool.stats().instances, 4);
    assert.equal(
      await w.pool.release(s.id, { reusable: true, agent: "a" }),
      "deleted",
      "no room to check in",
    );
  });

  it("destroys idle instances beyond the prewarm count after idleTimeout, and keeps the count", async () => {
    const w = await warm(3, { idleTimeoutSeconds: 60 });
    w.pool.start({ fake: 1 });
    const before = readyIds(w);
    await w.pool.tick();
    assert.equal(readyIds(w).length, 3, "not idle long enough yet");
    await w.pool.tick(Date.now() + 61_000);
    const after = readyIds(w);
    assert.deepEqual(after, before.slice(0, 1), "the oldest is kept");
    for (const id of before.slice(1))
      assert.equal(existsSync(join(w.config.stateDir, "workspaces", id)), false);
  });

  it("never hands a used instance to another sandbox by default", async () => {
    const w = await warm(1);
    const a = await w.sandboxes.create({});
    assert.equal(await w.pool.release(a.id, { reusable: false, agent: "x" }), "deleted");
    assert.equal(w.sandboxes.status(a.id).state, "deleted");
    const b = await w.sandboxes.create({});
    await w.sandboxes.delete(b.id);
    await w.pool.tick();
    const ids = new Set(w.store.pool.list().map((p) => p.id));
    assert.equal(ids.has(a.id) || ids.has(b.id), false);
    const c = await w.sandboxes.create({ labels: { [AGENT_LABEL]: "x" } });
    assert.notEqual(c.id, a.id);
  });

  it("checks in a clean instance only when reuse is allowed, for the same agent's runs only", async () => {
    const w = await open();
    const first = await w.sandboxes.create({ name: "run-1", labels: { [AGENT_LABEL]: "a" } });
    await w.sandboxes.exec(first.id, { argv: ["echo", "one"] });
    assert.equal(await w.pool.release(first.id, { reusable: true, agent: "a" }), "pooled");
    assert.equal(w.sandboxes.status(first.id).state, "deleted", "the run's sandbox is gone for its caller");
    assert.equal(keyStats(w)?.checkedIn, 1);

    const plain = await w.sandboxes.create({});
    const other = await w.sandboxes.create({ labels: { [AGENT_LABEL]: "b" } });
    assert.ok(![plain.id, other.id].includes(first.id), "no other caller gets it");

    const again = await w.sandboxes.create({
      name: "run-2",
      labels: { [AGENT_LABEL]: "a" },
      env: { N: "2" },
    });
    assert.equal(again.id, first.id, "the same agent's next run does");
    assert.deepEqual([again.name, again.state, again.env], ["run-2", "running", { N: "2" }]);
    assert.equal(keyStats(w)?.reused, 1);
    assert.equal(w.sandboxes.journal(again.id).length, 1, "its journal is kept");

    await w.sandboxes.stop(again.id);
    assert.equal(
      await w.pool.release(again.id, { reusable: true, agent: "a" }),
      "deleted",
      "not running: not clean",
    );
    assert.equal(w.store.pool.list().length, 0);
  });

  it("a dead pooled instance is invalidated and replaced, at checkout and by the keeper", async () => {
    const w = await warm(2);
    const fake = w.registry.get("fake");
    const kill = async (id: string) => {
      const p = w.store.pool.get(id)!;
      const cfg = { workspaceDir: p.workspaceDir, environment: { name: "host", rootfsPath: null } };
      await (await fake.attach(id, cfg as never, {})).stop();
    };
    const [oldest, newer] = readyIds(w);
    await kill(oldest);
    const s = await w.sandboxes.create({ name: "works" });
    assert.equal(s.id, oldest, "checkout starts a new instance under the claimed id");
    assert.equal((await w.sandboxes.exec(s.id, { argv: ["true"] })).exitCode, 0);
    assert.equal(keyStats(w)?.invalidated, 1);

    await kill(newer);
    await w.pool.tick(Date.now() + 10_000);
    assert.equal(keyStats(w)?.invalidated, 2);
    const ready = readyIds(w);
    assert.equal(ready.length, 2);
    assert.ok(!ready.includes(newer));
  });

  it("reconcile keeps live pooled instances and removes those whose process died", async () => {
    const w = await warm(1);
    const [live] = readyIds(w);
    const dead = {
      id: "sbx-00000000dead",
      workspaceDir: join(w.config.stateDir, "workspaces", "sbx-00000000dead"),
    };
    w.store.pool.insert({
      ...dead,
      specKey: KEY,
      spec: w.store.pool.get(live)!.spec,
      state: "ready",
      driverState: {},
      owner: { pid: 999999999, startTime: 1 },
      localOnly: true,
      affinity: null,
    });
    const report = await w.sandboxes.reconcile();
    assert.deepEqual(report.removedResources, [`pooled instance ${dead.id} (its process is gone)`]);
    assert.deepEqual(readyIds(w), [live]);
  });

  it("drain destroys the pool's instances and their workspaces", async () => {
    const w = await warm(3);
    assert.equal(await w.pool.drain(), 3);
    assert.equal(w.store.pool.list().length, 0);
    assert.deepEqual(readdirSync(join(w.config.stateDir, "workspaces")), []);
  });
});

describe("pool spec keys", () => {
  it("parses keys and --prewarm values; bad ones are INVALID_ARGUMENT with a hint", () => {
    assert.deepEqual(parseSpecKey("bwrap"), { driver: "bwrap" });
    assert.deepEqual(parseSpecKey("bwrap/debian-bookworm,memory=1024,network=host"), {
      driver: "bwrap",
      environment: "debian-bookworm",
      memoryMiB: 1024,
      network: "host",
    });
    assert.deepEqual(parsePrewarm(["2", "fake/host,cpus=2=3"], "bwrap"), { bwrap: 2, "fake/host,cpus=2": 3 });
    for (const bad of [
      () => parseSpecKey("Bwrap"),
      () => parseSpecKey("bwrap,disk=1"),
      () => parsePrewarm(["x"], "b"),
    ]) {
      assert.throws(bad, (e: unknown) => e instanceof InvalidArgumentError && Boolean(e.hint));
    }
  });

  it("a key resolves like a create: the canonical key names every part", async () => {
    const w = await open({ prewarm: { "fake/host": 1 } });
    w.pool.start();
    await w.pool.tick();
    assert.deepEqual(
      w.pool.stats().keys.map((k) => [k.key, k.target, k.ready]),
      [[KEY, 1, 1]],
    );
  });
});
