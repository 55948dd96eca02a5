/**
 * How agent runs fail, on bwrap: a non-zero exit and a timeout are failed runs with the reason;
 * a sandbox whose holder is killed, or that is stopped, mid-run fails the run with the reason and
 * is deleted (never handed back for reuse, even when the package says `reuse`); a run whose
 * Warren process is killed is failed by the next process that opens the state directory, and its
 * sandbox removed; a run that cannot start throws the typed error and is recorded as failed.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { NotFoundError } from "../../src/core/errors.js";
import { AgentService, type AgentRun } from "../../src/service/index.js";
import { cliSpawn } from "../helpers/cli.js";
import { bwrapSkipReason, testWarren, type TestWarren } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# agent failures: skipping: ${skip}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` returns a value. */
async function until<T>(what: string, check: () => T | null | undefined, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe("agent run failures (bwrap)", { skip }, () => {
  let t: TestWarren;
  /** Every release the spy service saw. */
  const releases: Array<{ sandboxId: string; reusable: boolean; agent: string }> = [];
  let spied: AgentService;

  /** Writes a package and adds it. */
  const add = async (manifest: Record<string, unknown>) => {
    const dir = join(t.stateDir, `pkg-${manifest.name as string}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "warren-agent.json"), JSON.stringify(manifest));
    return t.warren.agents.add({ dir });
  };

  /** The running sandbox of an agent's run, once its entrypoint wrote `started`. */
  const startedSandbox = (agent: string) =>
    until(`${agent} to start`, () =>
      t.warren.sandboxes
        .list({ labels: { "warren.agent": agent } })
        .find((s) => s.state === "running" && existsSync(join(s.workspaceDir, "started"))),
    );

  before(async () => {
    t = await testWarren();
    const w = t.warren;
    spied = new AgentService({
      config: w.config,
      store: w.store,
      sandboxes: w.sandboxes,
      files: w.files,
      log: w.log,
      release: async (sandboxId, o) => {
        releases.push({ sandboxId, ...o });
        await w.sandboxes.delete(sandboxId);
      },
    });
    await add({ name: "exits", entrypoint: "echo out; echo err >&2; echo kept > kept.txt; exit 3" });
    await add({ name: "slow", entrypoint: "sleep 30", timeoutSeconds: 1 });
    await add({ name: "sleeper", entrypoint: "touch started; exec sleep 60", reuse: true });
    await add({ name: "quick", entrypoint: ["true"], reuse: true });
    await add({ name: "nowhere", entrypoint: ["true"], environment: "no-such-environment" });
  });
  after(async () => {
    spied?.close();
    await t?.dispose();
  });

  it("a non-zero exit is a failed run with its code, output and workspace", async () => {
    const r = await t.warren.agents.run("exits");
    assert.equal(r.status, "failed");
    assert.equal(r.exitCode, 3);
    assert.equal(r.error, "the entrypoint exited with code 3");
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    assert.ok(r.resultDir && existsSync(join(r.resultDir, "kept.txt")));
    assert.equal(t.warren.sandboxes.status(r.sandboxId!).state, "deleted");
  });

  it("a timeout kills the entrypoint and fails the run", async () => {
    const r = await t.warren.agents.run("slow");
    assert.equal(r.status, "failed");
    assert.equal(r.timedOut, true);
    assert.match(r.error ?? "", /timed out after 1 s/);
    assert.ok(r.durationMs! < 15000);
  });

  it("a run that succeeds hands its sandbox back as reusable only when the package says reuse", async () => {
    const r = await spied.run("quick");
    assert.equal(r.status, "succeeded");
    assert.deepEqual(releases.pop(), { sandboxId: r.sandboxId, reusable: true, agent: "quick" });
  });

  it("killing the sandbox's holder mid-run fails the run with the reason; the sandbox is deleted, not reused", async () => {
    const running = spied.run("sleeper");
    const sbx = await startedSandbox("sleeper");
    const holder = t.warren.store.sandboxes.get(sbx.id)!.driverState as { init: { pid: number } };
    process.kill(holder.init.pid, "SIGKILL");
    const r = await running;
    assert.equal(r.status, "failed");
    assert.equal(r.sandboxId, sbx.id);
    assert.match(r.error ?? "", /the sandbox died|not running|holder/, r.error ?? "");
    assert.equal(r.resultDir, null, "a dead sandbox's workspace is not collected");
    assert.deepEqual(releases.pop(), { sandboxId: sbx.id, reusable: false, agent: "sleeper" });
    assert.equal(t.warren.sandboxes.status(sbx.id).state, "deleted");
    assert.deepEqual(t.warren.agents.getRun("sleeper", r.id), r, "the record says so too");
  });

  it("stopping the sandbox mid-run fails the run with the reason; the sandbox is deleted", async () => {
    const running = spied.run("sleeper");
    const sbx = await startedSandbox("sleeper");
    await t.warren.sandboxes.stop(sbx.id, "stopped by the test");
    const r = await running;
    assert.equal(r.status, "failed");
    assert.match(r.error ?? "", /the sandbox was stopped \(stopped by the test\)/);
    assert.equal(releases.pop()?.reusable, false);
    assert.equal(t.warren.sandboxes.status(sbx.id).state, "deleted");
  });

  it("a run whose Warren process is killed is failed at the next open, and its sandbox removed", async () => {
    const child = cliSpawn(t.stateDir, ["agent", "run", "sleeper"]);
    try {
      const sbx = await startedSandbox("sleeper");
      const run = await until("the run row", () =>
        t.warren.agents.listRuns("sleeper").find((r) => r.sandboxId === sbx.id),
      );
      assert.equal(run.status, "running");
      child.kill("SIGKILL");
      await until("the CLI to die", () => child.exitCode !== null || child.signalCode !== null);
      // What every process does when it opens the state directory.
      await t.warren.sandboxes.reconcile();
      const orphans = await t.warren.agents.reconcile();
      assert.deepEqual(
        orphans.map((r) => r.id),
        [run.id],
      );
      const failed = t.warren.agents.getRun("sleeper", run.id);
      assert.equal(failed.status, "failed");
      assert.equal(failed.error, "the Warren process running it died");
      assert.ok(failed.finishedAt);
      assert.equal(t.warren.sandboxes.status(sbx.id).state, "deleted");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("a run that cannot start throws the typed error and is recorded as failed", async () => {
    await assert.rejects(t.warren.agents.run("nowhere"), NotFoundError);
    const [r] = t.warren.agents.listRuns("nowhere") as AgentRun[];
    assert.equal(r.status, "failed");
    assert.match(r.error ?? "", /^the run could not start: .*no-such-environment/);
    assert.deepEqual(t.warren.sandboxes.list({ labels: { "warren.agent": "nowhere" } }), []);
    await assert.rejects(t.warren.agents.run("no-such-agent"), NotFoundError);
  });
});
