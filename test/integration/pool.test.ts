/**
 * The warm pool with real bwrap sandboxes: creates served from the pool work like any sandbox,
 * a separate CLI process takes an instance this process prewarmed, reconcile keeps live pooled
 * instances and cleans dead ones, agent reuse empties the workspace, and nothing leaks.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ExecResult, Sandbox } from "../../src/core/types.js";
import { detectCgroups } from "../../src/drivers/bwrap/cgroups.js";
import { cgroupScope } from "../../src/drivers/bwrap/driver.js";
import { AGENT_LABEL } from "../../src/service/agents-run.js";
import type { PoolStats } from "../../src/service/index.js";
import { cliJson } from "../helpers/cli.js";
import { bwrapSkipReason, leakedCgroups, testWarren, type TestWarren } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# pool test: skipping: ${skip}`);

const KEY = "bwrap/host,cpus=1,memory=512,pids=512,network=none";

/** Whether the bwrap cgroup of a sandbox exists (in the first hierarchy). */
function hasCgroup(t: TestWarren, id: string): boolean {
  const layout = detectCgroups()!;
  return existsSync(join(layout.roots[0], "warren", cgroupScope(t.stateDir), id));
}

describe("warm pool (bwrap)", { skip }, () => {
  let t: TestWarren;
  const ready = (): string[] =>
    t.warren.store.pool
      .list()
      .filter((p) => p.state === "ready" && p.affinity === null)
      .map((p) => p.id);
  const key = () => t.warren.pool.stats().keys.find((k) => k.key === KEY)!;
  const sh = (ref: string, script: string): Promise<ExecResult> =>
    t.warren.sandboxes.exec(ref, { argv: ["sh", "-c", script] });

  before(async () => {
    t = await testWarren({ pool: { prewarm: { bwrap: 2 }, maxInstances: 4, idleTimeoutSeconds: 300 } });
    t.warren.pool.start();
    await t.warren.pool.tick();
  });
  after(async () => {
    const drained = await t.warren.pool.drain();
    assert.equal(t.warren.store.pool.list().length, 0, `drained ${drained}, rows left`);
    const workspaces = readdirSync(join(t.stateDir, "workspaces"));
    const live = new Set(t.warren.sandboxes.list().map((s) => s.id));
    assert.deepEqual(
      workspaces.filter((id) => !live.has(id)),
      [],
      "no workspace without a sandbox",
    );
    await t.dispose(); // deletes sandboxes, then fails on leaked rows or cgroups
  });

  it("a create is served from the pool: the sandbox works, its workspace is empty, its name and labels applied", async () => {
    const pooled = ready();
    assert.equal(pooled.length, 2);
    const s = await t.warren.sandboxes.create({ name: "warm", labels: { team: "a" }, env: { FOO: "bar" } });
    assert.ok(pooled.includes(s.id), `sandbox ${s.id} came from the pool`);
    assert.equal(key().hits, 1);
    assert.deepEqual(
      t.warren.sandboxes.list({ labels: { team: "a" } }).map((x) => x.name),
      ["warm"],
    );
    const r = await sh("warm", 'echo "$FOO $HOSTNAME $(id -u) $(hostname)"; ls -A /workspace | wc -l');
    assert.equal(r.exitCode, 0, r.stderr);
    // $HOSTNAME is the name; the kernel hostname was fixed at prewarm time (the id).
    assert.equal(r.stdout, `bar warm 1000 ${s.id}\n0\n`);
    assert.equal((await sh("warm", "echo hi > /workspace/a && cat /workspace/a")).stdout, "hi\n");
    await t.warren.pool.tick();
    assert.equal(ready().length, 2, "refilled");
  });

  it("a CLI process takes an instance this process prewarmed, and its reconcile keeps the rest", async () => {
    const pooled = ready();
    const s = cliJson<Sandbox>(t.stateDir, ["create", "--name", "from-cli"]);
    assert.equal(s.__status, 0);
    assert.ok(pooled.includes(s.id), `the CLI's sandbox ${s.id} came from the pool`);
    const r = cliJson<ExecResult>(t.stateDir, ["exec", "from-cli", "--", "sh", "-c", "echo ok"]);
    assert.equal(r.stdout, "ok\n");
    const rest = pooled.filter((id) => id !== s.id);
    for (const id of rest) {
      assert.ok(hasCgroup(t, id), `pooled ${id} survived the CLI's reconcile`);
      assert.ok(await poolHealthy(t, id));
    }
    const doctor = cliJson<{ pool: PoolStats }>(t.stateDir, ["doctor"]);
    const k = doctor.pool.keys.find((x) => x.key === KEY)!;
    assert.ok(k.hits >= 2 && k.refills >= 3, JSON.stringify(k));
    await t.warren.sandboxes.delete("from-cli");
    await t.warren.pool.tick();
  });

  it("reconcile keeps live pooled instances and destroys a dead one", async () => {
    const [victim, survivor] = ready();
    const state = t.warren.store.pool.get(victim)!.driverState as {
      bwrap: { pid: number };
      init: { pid: number };
    };
    process.kill(state.init.pid, "SIGKILL");
    process.kill(state.bwrap.pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 100));
    const before = key().invalidated;
    const report = await t.warren.sandboxes.reconcile();
    assert.ok(
      report.removedResources.includes(`pooled instance ${victim} (it died)`),
      JSON.stringify(report),
    );
    assert.equal(key().invalidated, before + 1);
    assert.equal(hasCgroup(t, victim), false);
    assert.equal(existsSync(join(t.stateDir, "workspaces", victim)), false);
    assert.ok(hasCgroup(t, survivor) && (await poolHealthy(t, survivor)));
    await t.warren.pool.tick();
    assert.equal(ready().length, 2, "replaced");
  });

  it("a pooled sandbox stops, starts and deletes like any; deleted, it never returns to the pool", async () => {
    const s = await t.warren.sandboxes.create({ name: "cycle" });
    await sh("cycle", "echo kept > /workspace/f");
    await t.warren.sandboxes.stop("cycle");
    assert.equal(hasCgroup(t, s.id), false);
    await t.warren.sandboxes.start("cycle");
    assert.equal((await sh("cycle", "cat /workspace/f")).stdout, "kept\n");
    await t.warren.sandboxes.delete("cycle");
    assert.equal(hasCgroup(t, s.id), false);
    assert.equal(existsSync(s.workspaceDir), false);
    await t.warren.pool.tick();
    assert.ok(!t.warren.store.pool.list().some((p) => p.id === s.id));
  });

  it("an agent's checked-in sandbox goes back to that agent only, with an empty workspace", async () => {
    const labels = { [AGENT_LABEL]: "hello" };
    const s = await t.warren.sandboxes.create({ name: "run-a", labels });
    await sh(
      "run-a",
      "mkdir -p /workspace/out && echo result > /workspace/out/r && chmod 500 /workspace/out",
    );
    assert.equal(await t.warren.pool.release(s.id, { reusable: true, agent: "hello" }), "pooled");
    assert.ok(hasCgroup(t, s.id), "kept running in the pool");
    const other = await t.warren.sandboxes.create({ name: "other" });
    assert.notEqual(other.id, s.id);
    const again = await t.warren.sandboxes.create({ name: "run-b", labels });
    assert.equal(again.id, s.id);
    assert.equal((await sh("run-b", "ls -A /workspace | wc -l")).stdout, "0\n");
    assert.equal(await t.warren.pool.release(again.id, { reusable: false, agent: "hello" }), "deleted");
    assert.equal(hasCgroup(t, s.id), false);
    await t.warren.sandboxes.delete("other");
    const owned = [...t.warren.store.pool.list(), ...t.warren.sandboxes.list()].map((x) => x.id);
    const strays = leakedCgroups(t.stateDir).filter((cg) => !owned.some((id) => cg.endsWith(`/${id}`)));
    assert.deepEqual(strays, [], "every cgroup belongs to a pooled instance or a live sandbox");
  });
});

/** Whether a pooled instance answers its driver's health check. */
async function poolHealthy(t: TestWarren, id: string): Promise<boolean> {
  const p = t.warren.store.pool.get(id);
  if (!p) return false;
  const driver = t.warren.registry.get("bwrap");
  const cfg = {
    workspaceDir: p.workspaceDir,
    environment: { name: "host", rootfsPath: null },
    hostname: id,
    env: {},
    vcpuCount: 1,
    memoryMiB: 512,
    pidsMax: 512,
    network: "none" as const,
    healthTimeoutMs: 10000,
  };
  return (await driver.attach(id, cfg, p.driverState ?? {})).isHealthy();
}
