import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { AlreadyExistsError, TimeoutError } from "../errors.js";
import { identityOf, selfIdentity, type ProcessIdentity } from "../proc.js";
import type { Sandbox } from "../types.js";
import { openStore } from "./index.js";

const store = () => openStore(mkdtempSync(join(tmpdir(), "warren-store-")));

function sandbox(id: string, name: string): Sandbox {
  const now = new Date().toISOString();
  return {
    id,
    name,
    driver: "fake",
    environment: "host",
    state: "creating",
    isolation: "none",
    resources: { vcpuCount: 1, memoryMiB: 256, pidsMax: 64 },
    network: "none",
    labels: { team: "a" },
    env: {},
    ttlSeconds: 60,
    onTimeout: "stop",
    workspaceDir: "/tmp/x",
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    expiresAt: null,
    lastError: null,
  };
}

/** Identity of a process that has exited. */
function deadIdentity(): ProcessIdentity {
  const r = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return { pid: Number(r.stdout.trim()), startTime: 1 };
}

describe("store", () => {
  it("keeps names unique among live sandboxes only", () => {
    const s = store();
    s.sandboxes.insert(sandbox("sbx-000000000001", "web"), selfIdentity());
    assert.throws(
      () => s.sandboxes.insert(sandbox("sbx-000000000002", "web"), selfIdentity()),
      AlreadyExistsError,
    );
    s.sandboxes.update("sbx-000000000001", { state: "deleted" });
    s.sandboxes.insert(sandbox("sbx-000000000002", "web"), selfIdentity());
    assert.equal(s.sandboxes.getByName("web")!.id, "sbx-000000000002", "the live one wins");
    assert.deepEqual(s.sandboxes.get("sbx-000000000001")!.labels, { team: "a" });
  });

  it("numbers journal entries per sandbox and completes them", () => {
    const s = store();
    s.sandboxes.insert(sandbox("sbx-000000000001", "a"), selfIdentity());
    s.sandboxes.insert(sandbox("sbx-000000000002", "b"), selfIdentity());
    assert.equal(s.journal.begin("sbx-000000000001", ["echo"], "/workspace", selfIdentity()), 1);
    assert.equal(s.journal.begin("sbx-000000000001", ["echo"], "/workspace", selfIdentity()), 2);
    assert.equal(s.journal.begin("sbx-000000000002", ["echo"], "/workspace", selfIdentity()), 1);
    s.journal.complete("sbx-000000000001", 1, {
      status: "completed",
      exitCode: 0,
      stdout: Buffer.from("hi\n"),
      stderr: Buffer.alloc(0),
      truncated: false,
      timedOut: false,
      durationMs: 3,
    });
    const [first, second] = s.journal.list("sbx-000000000001");
    assert.equal(first.status, "completed");
    assert.equal(first.stdout, "hi\n");
    assert.equal(second.status, "running");
  });

  it("marks entries of dead owners lost, and only those", () => {
    const s = store();
    s.sandboxes.insert(sandbox("sbx-000000000001", "a"), selfIdentity());
    s.journal.begin("sbx-000000000001", ["mine"], "/workspace", selfIdentity());
    s.journal.begin("sbx-000000000001", ["orphan"], "/workspace", deadIdentity());
    // Same pid as a live process but another start time: a reused pid is not the owner.
    s.journal.begin("sbx-000000000001", ["reused"], "/workspace", { pid: process.pid, startTime: 42 });
    const lost = s.journal.markLost();
    assert.deepEqual(lost.map((l) => l.sequence).sort(), [2, 3]);
    assert.deepEqual(
      s.journal.list("sbx-000000000001").map((e) => e.status),
      ["running", "lost", "lost"],
    );
    assert.match(s.journal.get("sbx-000000000001", 2)!.error!, /died/);
  });

  it("serialises holders of a lock and takes over a dead owner's lock", async () => {
    const s = store();
    const order: string[] = [];
    await Promise.all([
      s.locks.with("x", async () => {
        order.push("a-in");
        await new Promise((r) => setTimeout(r, 30));
        order.push("a-out");
      }),
      s.locks.with("x", async () => {
        order.push("b-in");
        order.push("b-out");
      }),
    ]);
    assert.deepEqual(order, ["a-in", "a-out", "b-in", "b-out"]);
    assert.ok(identityOf(process.pid));
  });

  it("times out on a lock held by a live process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warren-store-"));
    const a = openStore(dir);
    const b = openStore(dir);
    // Another live process (pid 1) holds it.
    const init = identityOf(1)!;
    (a as unknown as { locks: { db: { prepare(q: string): { run(...p: unknown[]): void } } } }).locks.db
      .prepare("INSERT INTO locks (name, owner_pid, owner_start, acquired_at) VALUES (?, ?, ?, ?)")
      .run("y", init.pid, init.startTime, Date.now());
    await assert.rejects(
      b.locks.with("y", async () => undefined, 50),
      TimeoutError,
    );
  });
});
