import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  AlreadyExistsError,
  DriverUnavailableError,
  InvalidArgumentError,
  InvalidStateError,
  LimitExceededError,
  NotFoundError,
  NotSupportedError,
  WarrenError,
} from "../core/errors.js";
import { createBuiltinRegistry } from "../drivers/index.js";
import { openWarren, type Warren } from "./index.js";

async function open(config = {}): Promise<Warren> {
  const stateDir = mkdtempSync(join(tmpdir(), "warren-svc-"));
  chmodSync(stateDir, 0o711);
  return openWarren({
    config: { stateDir, defaultDriver: "fake", logLevel: "silent", ...config },
    env: { HOME: stateDir },
    registry: createBuiltinRegistry,
  });
}

/** Rows and workspace directories: what "nothing changed on disk" compares. */
const snapshot = (w: Warren) => ({
  rows: w.sandboxes.list({ all: true }).length,
  workspaces: readdirSync(join(w.config.stateDir, "workspaces")).length,
});

describe("sandbox service (fake driver)", () => {
  it("bad input is a typed error with a hint and changes nothing on disk", async () => {
    const w = await open();
    const before = snapshot(w);
    const cases: Array<[object, new (...a: never[]) => WarrenError]> = [
      [{ name: "-bad" }, InvalidArgumentError],
      [{ vcpuCount: 9 }, InvalidArgumentError],
      [{ memoryMiB: 64 }, InvalidArgumentError],
      [{ memoryMiB: 40000 }, InvalidArgumentError],
      [{ ttlSeconds: 59 }, InvalidArgumentError],
      [{ ttlSeconds: 86401 }, InvalidArgumentError],
      [{ labels: { "bad key": "v" } }, InvalidArgumentError],
      [{ driver: "nope" }, NotFoundError],
      [{ environment: "nope" }, NotFoundError],
      [{ environment: "debian-bookworm" }, InvalidStateError],
      [{ driver: "host" }, DriverUnavailableError],
      [{ driver: "host", allowHost: true, network: "none" }, NotSupportedError],
    ];
    for (const [options, type] of cases) {
      await assert.rejects(w.sandboxes.create(options), (e: unknown) => {
        assert.ok(e instanceof type, `${JSON.stringify(options)} gave ${String(e)}`);
        assert.ok((e as WarrenError).hint, `${JSON.stringify(options)} has a hint`);
        return true;
      });
    }
    assert.deepEqual(snapshot(w), before);
    w.close();
  });

  it("names are unique among live sandboxes and resolve like ids", async () => {
    const w = await open();
    const a = await w.sandboxes.create({ name: "web" });
    await assert.rejects(w.sandboxes.create({ name: "web" }), AlreadyExistsError);
    assert.equal(w.sandboxes.status("web").id, a.id);
    assert.equal((await w.sandboxes.exec("web", { argv: ["echo", "x"] })).sandboxId, a.id);
    await w.sandboxes.delete("web");
    const b = await w.sandboxes.create({ name: "web" });
    assert.notEqual(b.id, a.id);
    assert.equal(w.sandboxes.status("web").id, b.id);
    w.close();
  });

  it("enforces the most active sandboxes", async () => {
    const w = await open({ maxActiveSandboxes: 2 });
    await w.sandboxes.create();
    const second = await w.sandboxes.create();
    await assert.rejects(w.sandboxes.create(), LimitExceededError);
    await w.sandboxes.stop(second.id);
    await w.sandboxes.create();
    w.close();
  });

  it("the host driver is refused unless opted in, and results say isolation none", async () => {
    const w = await open();
    await assert.rejects(w.sandboxes.create({ driver: "host" }), /no isolation/);
    const s = await w.sandboxes.create({ driver: "host", allowHost: true });
    assert.equal(s.isolation, "none");
    assert.equal(s.network, "host");
    const r = await w.sandboxes.exec(s.id, { argv: ["sh", "-c", "pwd"] });
    assert.equal(r.isolation, "none");
    assert.equal(r.stdout.trim(), s.workspaceDir);
    await w.sandboxes.delete(s.id);
    w.close();
  });

  it("list filters by label and hides deleted unless --all", async () => {
    const w = await open();
    const a = await w.sandboxes.create({ labels: { team: "a" } });
    await w.sandboxes.create({ labels: { team: "b" } });
    assert.deepEqual(
      w.sandboxes.list({ labels: { team: "a" } }).map((s) => s.id),
      [a.id],
    );
    await w.sandboxes.delete(a.id);
    assert.equal(w.sandboxes.list().length, 1);
    assert.equal(w.sandboxes.list({ all: true }).length, 2);
    w.close();
  });

  it("run deletes its sandbox whether the command succeeds or fails", async () => {
    const w = await open();
    const r = await w.sandboxes.run({}, { argv: ["sh", "-c", "exit 7"] });
    assert.equal(r.exitCode, 7);
    await assert.rejects(w.sandboxes.run({}, { argv: ["true"], cwd: "relative" }), InvalidArgumentError);
    assert.deepEqual(
      w.sandboxes.list({ all: true }).map((s) => s.state),
      ["deleted", "deleted"],
    );
    assert.equal(readdirSync(join(w.config.stateDir, "workspaces")).length, 0);
    w.close();
  });

  it("reap stops or deletes sandboxes past their TTL per onTimeout", async () => {
    const w = await open();
    const keep = await w.sandboxes.create({ ttlSeconds: 60, onTimeout: "stop" });
    const drop = await w.sandboxes.create({ ttlSeconds: 60, onTimeout: "delete" });
    const young = await w.sandboxes.create({ ttlSeconds: 3600 });
    assert.deepEqual(await w.sandboxes.reap(), []);
    const actions = await w.sandboxes.reap(Date.now() + 61000);
    assert.deepEqual(
      actions.map((a) => [a.sandboxId, a.action]).sort(),
      [
        [keep.id, "stopped"],
        [drop.id, "deleted"],
      ].sort(),
    );
    assert.equal(w.sandboxes.status(keep.id).state, "stopped");
    assert.match(w.sandboxes.status(keep.id).lastError!, /TTL/);
    assert.ok(existsSync(keep.workspaceDir), "a stopped sandbox keeps its workspace");
    assert.equal(w.sandboxes.status(drop.id).state, "deleted");
    assert.equal(w.sandboxes.status(young.id).state, "running");
    const again = await w.sandboxes.start(keep.id);
    assert.equal(again.state, "running");
    assert.ok(Date.parse(again.expiresAt!) > Date.now() + 50000, "a restart gets a fresh TTL");
    w.close();
  });

  it("reconcile marks a sandbox whose instance died as stopped with lastError", async () => {
    const w = await open();
    const s = await w.sandboxes.create({ driver: "host", allowHost: true });
    // A fresh process would not know the fake's in-memory instances; the host driver's persisted
    // state says started, so make it say otherwise, as after a reboot.
    w.store.sandboxes.update(s.id, { driverState: { started: false } });
    const report = await w.sandboxes.reconcile();
    assert.deepEqual(report.stoppedSandboxes, [s.id]);
    assert.equal(w.sandboxes.status(s.id).state, "stopped");
    assert.match(w.sandboxes.status(s.id).lastError!, /died/);
    w.close();
  });

  it("unknown sandboxes are NotFound with a hint", async () => {
    const w = await open();
    await assert.rejects(
      w.sandboxes.exec("ghost", { argv: ["true"] }),
      (e: unknown) => e instanceof NotFoundError && /warren ls/.test(e.hint!),
    );
    assert.throws(() => w.sandboxes.journal("ghost"), NotFoundError);
    w.close();
  });
});
