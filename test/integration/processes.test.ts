/**
 * Background processes on real sandboxes: start, output from offsets, attach, stdin, signals,
 * wait, the journal, and what survives a restart of the service and of the sandbox.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  TimeoutError,
} from "../../src/core/errors.js";
import type { Sandbox } from "../../src/core/types.js";
import { createBuiltinRegistry } from "../../src/drivers/index.js";
import { openWarren } from "../../src/service/index.js";
import { bwrapSkipReason, testWarren, type TestWarren } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# processes: skipping: ${skip}`);

describe("background processes (bwrap)", { skip }, () => {
  let t: TestWarren;
  let s: Sandbox;
  before(async () => {
    t = await testWarren();
    s = await t.warren.sandboxes.create({ driver: "bwrap" });
  });
  after(async () => {
    await t.dispose();
  });

  it("start returns while the command runs; output is readable from any offset", async () => {
    const { processes } = t.warren;
    const p = await processes.start(s.id, {
      argv: ["sh", "-c", "echo one; echo err >&2; sleep 0.3; echo two; exit 7"],
    });
    assert.equal(p.state, "running");
    assert.match(p.processId, /^p\d+$/);
    const done = await processes.wait(s.id, p.processId, { timeoutMs: 10000 });
    assert.equal(done.state, "exited");
    assert.equal(done.exitCode, 7);
    const all = await processes.output(s.id, p.processId);
    assert.equal(all.stdout.toString(), "one\ntwo\n");
    assert.equal(all.stderr.toString(), "err\n");
    assert.equal(all.stdoutOffset, 8);
    const rest = await processes.output(s.id, p.processId, { stdoutOffset: 4, stderrOffset: 4 });
    assert.equal(rest.stdout.toString(), "two\n");
    assert.equal(rest.stderr.length, 0);
    await assert.rejects(processes.output(s.id, p.processId, { stdoutOffset: -1 }), InvalidArgumentError);
    // The journal has it, completed, with its output.
    const entry = t.warren.sandboxes.journal(s.id).find((j) => j.processId === p.processId);
    assert.ok(entry);
    assert.equal(entry.status, "completed");
    assert.equal(entry.exitCode, 7);
    assert.equal(entry.stdout, "one\ntwo\n");
  });

  it("attach streams output as produced and returns the final state", async () => {
    const { processes } = t.warren;
    const p = await processes.start(s.id, {
      argv: ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.15; done"],
    });
    const seen: Array<[number, string]> = [];
    const started = Date.now();
    const end = await processes.attach(s.id, p.processId, {
      onStdout: (c) => seen.push([Date.now() - started, c.toString()]),
    });
    assert.equal(end.state, "exited");
    assert.equal(end.exitCode, 0);
    assert.equal(seen.map(([, c]) => c).join(""), "line1\nline2\nline3\n");
    assert.ok(seen.length >= 2, `output came in ${seen.length} chunk(s), not as produced`);
    assert.ok(seen[0][0] < seen[seen.length - 1][0], "the first line arrived before the last");
    // Attaching again from an offset replays only what follows it.
    let again = "";
    await processes.attach(s.id, p.processId, { stdoutOffset: 6, onStdout: (c) => (again += c) });
    assert.equal(again, "line2\nline3\n");
  });

  it("stdin can be written and closed; the command sees end-of-file", async () => {
    const { processes } = t.warren;
    const p = await processes.start(s.id, {
      argv: ["sh", "-c", "while read l; do echo got:$l; done; echo eof"],
    });
    assert.equal(p.stdinOpen, true);
    await processes.writeStdin(s.id, p.processId, "a\nb\n");
    await processes.closeStdin(s.id, p.processId);
    const end = await processes.wait(s.id, p.processId, { timeoutMs: 10000 });
    assert.equal(end.exitCode, 0);
    assert.equal((await processes.output(s.id, p.processId)).stdout.toString(), "got:a\ngot:b\neof\n");
    await assert.rejects(processes.writeStdin(s.id, p.processId, "late"), InvalidStateError);
  });

  it("a signal reaches the whole process group; wait times out with a typed error", async () => {
    const { processes, sandboxes } = t.warren;
    const p = await processes.start(s.id, { argv: ["sh", "-c", "sleep 300 & sleep 301; wait"] });
    await assert.rejects(processes.wait(s.id, p.processId, { timeoutMs: 200 }), TimeoutError);
    await assert.rejects(processes.signal(s.id, p.processId, "SIGBOGUS"), InvalidArgumentError);
    const r = await processes.signal(s.id, p.processId, "SIGTERM");
    assert.ok(["running", "exited"].includes(r.state));
    const end = await processes.wait(s.id, p.processId, { timeoutMs: 10000 });
    assert.equal(end.exitCode, 143);
    const left = await sandboxes.exec(s.id, {
      argv: [
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done 2>/dev/null | grep -c '^sleep 30[01]'; true",
      ],
    });
    assert.equal(left.stdout.trim(), "0", "a child of the signalled process survived");
    await assert.rejects(processes.signal(s.id, p.processId), InvalidStateError);
    await assert.rejects(processes.get(s.id, "p99999"), NotFoundError);
  });

  it("survives a restart of the service: another Warren on the same state dir sees and reads it", async () => {
    const p = await t.warren.processes.start(s.id, {
      argv: ["sh", "-c", "echo before; sleep 0.5; echo after"],
    });
    const second = await openWarren({
      config: { logLevel: "silent", stateDir: t.stateDir },
      env: { HOME: t.stateDir },
      registry: createBuiltinRegistry,
    });
    try {
      assert.equal(second.startup.reconcile.lostCommands.length, 0, "reconcile took the process for lost");
      const listed = await second.processes.list(s.id);
      assert.equal(listed.find((x) => x.processId === p.processId)?.state, "running");
      let out = "";
      const end = await second.processes.attach(s.id, p.processId, { onStdout: (c) => (out += c) });
      assert.equal(end.exitCode, 0);
      assert.equal(out, "before\nafter\n");
    } finally {
      second.close();
    }
  });

  it("stopping the sandbox records finished processes and marks running ones lost; output stays", async () => {
    const { processes, sandboxes } = t.warren;
    const other = await sandboxes.create({ driver: "bwrap" });
    const quick = await processes.start(other.id, { argv: ["sh", "-c", "echo quick"] });
    const slow = await processes.start(other.id, { argv: ["sh", "-c", "echo slow; sleep 300"] });
    await new Promise((r) => setTimeout(r, 300));
    await sandboxes.stop(other.id);
    const byId = new Map((await processes.list(other.id)).map((x) => [x.processId, x]));
    assert.equal(byId.get(quick.processId)?.state, "exited");
    assert.equal(byId.get(quick.processId)?.exitCode, 0);
    assert.equal(byId.get(slow.processId)?.state, "lost");
    await assert.rejects(processes.output(other.id, slow.processId), InvalidStateError);
    await sandboxes.start(other.id);
    assert.equal(
      (await processes.get(other.id, slow.processId)).state,
      "lost",
      "a restart does not revive it",
    );
    assert.equal((await processes.output(other.id, slow.processId)).stdout.toString(), "slow\n");
  });
});
