/**
 * The public SDK (`Sandbox`, `commands`, `files`) on real bwrap sandboxes, every test against
 * every backend in sdk-backends.ts (local, and remote over `warren serve`), then a check that
 * both threw the very same error classes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AlreadyExistsError,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  TimeoutError,
  WarrenError,
} from "../../src/core/errors.js";
import type { Backend } from "../../src/sdk/backend.js";
import { Sandbox, type SandboxCreateOptions } from "../../src/sdk/sandbox.js";
import { bwrapSkipReason } from "../helpers/warren.js";
import { backendFactories, type BackendFixture } from "./sdk-backends.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# sdk: skipping: ${skip}`);

/** Per backend, per failing operation: the error class and code it threw. */
const errorsSeen = new Map<string, Record<string, string>>();

/** Runs `fn`; prints the sandbox id when it fails. */
async function on(sbx: Sandbox, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    console.log(`# failed on sandbox ${sbx.id} (${sbx.name})`);
    throw err;
  }
}

/** Waits until `check` holds (polling), or fails after `ms`. */
async function until(check: () => boolean, what: string, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const factory of backendFactories) {
  describe(`SDK over the ${factory.name} backend (bwrap)`, { skip }, () => {
    let fx: BackendFixture;
    let backend: Backend;
    const create = (o: SandboxCreateOptions = {}) =>
      Sandbox.create({ backend, driver: "bwrap", ...o, labels: { suite: "sdk", ...o.labels } });
    /** Expects `promise` to reject with `cls`, and records what it threw for the cross-backend check. */
    const expectError = async (
      op: string,
      promise: Promise<unknown>,
      cls: new (...args: never[]) => WarrenError,
    ) => {
      const err = await promise.then(
        () => assert.fail(`${op}: resolved, expected ${cls.name}`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof cls, `${op}: expected ${cls.name}, got ${String(err)}`);
      assert.ok(err instanceof WarrenError);
      const seen = errorsSeen.get(factory.name) ?? {};
      seen[op] = `${err.constructor.name} ${err.code}${err.hint ? " +hint" : ""}`;
      errorsSeen.set(factory.name, seen);
    };

    before(async () => {
      fx = await factory.open();
      backend = fx.backend;
    });
    after(async () => {
      await fx?.dispose();
    });

    describe("one running sandbox", () => {
      let sbx: Sandbox;
      before(async () => {
        sbx = await create({ name: `sdk-${factory.name}`, envs: { FROM_CREATE: "yes" } });
      });
      after(async () => {
        await sbx?.[Symbol.asyncDispose]();
      });

      it("create returns a running sandbox with its info", async () => {
        assert.match(sbx.id, /^sbx-[0-9a-f]{12}$/);
        assert.equal(sbx.name, `sdk-${factory.name}`);
        assert.equal(sbx.state, "running");
        assert.equal(sbx.info.driver, "bwrap");
        assert.equal(sbx.info.labels.suite, "sdk");
        assert.equal((await sbx.refresh()).state, "running");
        assert.equal(sbx.backendSource, "option");
      });

      it("commands.run: a string through sh -c, an array as argv, a non-zero exit as a result", async () =>
        on(sbx, async () => {
          const r = await sbx.commands.run("echo hi > a.txt && cat a.txt && echo $FROM_CREATE");
          assert.deepEqual([r.exitCode, r.stdout, r.stderr, r.timedOut], [0, "hi\nyes\n", "", false]);
          assert.ok(r.sequence >= 1 && r.durationMs >= 0);
          const argv = await sbx.commands.run(["printf", "%s|", "a b", "$HOME"]);
          assert.equal(argv.stdout, "a b|$HOME|", "no shell in between");
          const failed = await sbx.commands.run("echo oops >&2; exit 3");
          assert.deepEqual([failed.exitCode, failed.stderr], [3, "oops\n"]);
          const opts = await sbx.commands.run("pwd; echo $X; cat", {
            cwd: "/tmp",
            envs: { X: "from-envs" },
            stdin: "from-stdin",
          });
          assert.equal(opts.stdout, "/tmp\nfrom-envs\nfrom-stdin");
          const journal = await sbx.journal();
          const entry = journal.find((j) => j.sequence === r.sequence);
          assert.deepEqual(entry?.argv.slice(0, 2), ["/bin/sh", "-c"]);
          assert.equal(entry?.status, "completed");
        }));

      it("commands.run streams output through onStdout/onStderr as it comes", async () =>
        on(sbx, async () => {
          const chunks: Array<[number, string]> = [];
          let err = "";
          const started = Date.now();
          const r = await sbx.commands.run("echo one; sleep 0.3; echo two; echo e >&2", {
            onStdout: (d) => chunks.push([Date.now() - started, d]),
            onStderr: (d) => (err += d),
          });
          assert.equal(chunks.map(([, d]) => d).join(""), "one\ntwo\n");
          assert.equal(r.stdout, "one\ntwo\n");
          assert.equal(err, "e\n");
          assert.ok(chunks.length >= 2, "output came in one piece, not as produced");
          assert.ok(chunks[0][0] + 200 < chunks[chunks.length - 1][0], "the first line came first");
        }));

      it("timeoutMs kills the command and reports timedOut instead of throwing", async () =>
        on(sbx, async () => {
          const started = Date.now();
          const r = await sbx.commands.run("echo before; sleep 20", { timeoutMs: 400 });
          assert.equal(r.timedOut, true);
          assert.notEqual(r.exitCode, 0);
          assert.equal(r.stdout, "before\n");
          assert.ok(Date.now() - started < 10000);
        }));

      it("background: start, stream, stdin, kill, wait with the exit code", async () =>
        on(sbx, async () => {
          let seen = "";
          const p = await sbx.commands.run("read line; echo got:$line; sleep 30", {
            background: true,
            onStdout: (d) => (seen += d),
          });
          assert.match(p.processId, /^p\d+$/);
          assert.equal(p.info.state, "running");
          await p.sendStdin("hello\n");
          await until(() => seen.includes("got:hello"), "the background output");
          assert.ok((await sbx.commands.list()).some((x) => x.processId === p.processId));
          const killed = await p.kill();
          assert.equal(killed.state, "exited");
          assert.equal(killed.exitCode, 137);
          const done = await p.wait();
          assert.deepEqual([done.exitCode, done.stdout], [137, "got:hello\n"]);
        }));

      it("background: attach replays output, closeStdin ends input, connect finds a process", async () =>
        on(sbx, async () => {
          const p = await sbx.commands.run(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done"], {
            background: true,
          });
          let out = "";
          const end = await p.attach({ onStdout: (d) => (out += d) });
          assert.deepEqual([end.state, end.exitCode, out], ["exited", 0, "1\n2\n3\n"]);
          const rest = await p.output({ stdoutOffset: 2 });
          assert.equal(rest.stdout.toString(), "2\n3\n");

          const cat = await sbx.commands.run("cat; exit 5", { background: true });
          await cat.sendStdin("abc");
          await cat.closeStdin();
          const again = await sbx.commands.connect(cat.processId);
          const result = await again.wait({ timeoutMs: 10000 });
          assert.deepEqual([result.state, result.exitCode, result.stdout], ["exited", 5, "abc"]);
        }));

      it("files: write and read text and bytes, list, stat, exists, rename, remove, tar", async () =>
        on(sbx, async () => {
          const { files } = sbx;
          const written = await files.write("/workspace/x.py", "print(1)\n");
          assert.deepEqual([written.path, written.type, written.sizeBytes], ["/workspace/x.py", "file", 9]);
          assert.equal(await files.read("/workspace/x.py"), "print(1)\n");
          const bytes = Buffer.from([0, 255, 10, 13, 128]);
          await files.write("bin/data", bytes);
          const back = await files.read("/workspace/bin/data", { format: "bytes" });
          assert.ok(Buffer.isBuffer(back));
          assert.deepEqual(back, bytes);
          assert.equal((await sbx.commands.run("python3 x.py 2>/dev/null || cat x.py")).exitCode, 0);

          assert.equal(await files.exists("x.py"), true);
          assert.equal(await files.exists("nope.txt"), false);
          await files.makeDir("/workspace/d/e");
          assert.equal((await files.stat("/workspace/d/e")).type, "directory");
          const names = (await files.list("/workspace")).map((e) => e.name);
          for (const n of ["x.py", "bin", "d"]) assert.ok(names.includes(n), `${n} in ${names}`);
          assert.ok((await files.list("/workspace", { depth: 2 })).some((e) => e.path === "/workspace/d/e"));

          const moved = await files.rename("/workspace/x.py", "/workspace/d/y.py");
          assert.equal(moved.path, "/workspace/d/y.py");
          assert.equal(await files.exists("/workspace/x.py"), false);
          const tar = await files.downloadTar("/workspace/d");
          await files.uploadTar("/workspace/copy", tar);
          assert.equal(await files.read("/workspace/copy/y.py"), "print(1)\n");

          await files.remove("/workspace/copy", { recursive: true });
          await files.remove("/workspace/bin/data");
          assert.equal(await files.exists("/workspace/copy"), false);
          assert.equal(await files.exists("/workspace/bin/data"), false);
        }));

      it("errors are the core's typed classes", async () =>
        on(sbx, async () => {
          await expectError("files.read missing", sbx.files.read("/workspace/missing.txt"), NotFoundError);
          await expectError("files.stat missing", sbx.files.stat("missing"), NotFoundError);
          await expectError("files.remove missing", sbx.files.remove("missing"), NotFoundError);
          await expectError("files.read directory", sbx.files.read("/workspace"), InvalidArgumentError);
          await sbx.files.write("full/f", "x");
          await expectError("files.remove non-empty", sbx.files.remove("full"), InvalidStateError);
          await expectError("connect unknown", Sandbox.connect("no-such-box", { backend }), NotFoundError);
          await expectError("create name taken", create({ name: sbx.name }), AlreadyExistsError);
          await expectError("create bad memory", create({ memoryMiB: 1 }), InvalidArgumentError);
          await expectError("create unknown driver", create({ driver: "nope" }), NotFoundError);
          await expectError("run empty argv", sbx.commands.run([]), InvalidArgumentError);
          await expectError(
            "run bad env name",
            sbx.commands.run("true", { envs: { "1X": "y" } }),
            InvalidArgumentError,
          );
          await expectError(
            "background with timeoutMs",
            sbx.commands.run("true", { background: true, timeoutMs: 5 }),
            InvalidArgumentError,
          );
          await expectError("connect unknown process", sbx.commands.connect("p999999"), NotFoundError);
          const p = await sbx.commands.run("sleep 30", { background: true });
          await expectError("wait timeout", p.wait({ timeoutMs: 100 }), TimeoutError);
          await expectError("unknown signal", p.signal("SIGNOPE"), InvalidArgumentError);
          await p.kill();
          await expectError("stdin after exit", p.sendStdin("x"), InvalidStateError);
        }));
    });

    it("stop and start keep the workspace; a stopped sandbox refuses commands", async () => {
      const sbx = await create();
      try {
        await on(sbx, async () => {
          await sbx.files.write("keep.txt", "kept");
          assert.equal((await sbx.stop()).state, "stopped");
          assert.equal(sbx.state, "stopped");
          await expectError("run on stopped", sbx.commands.run("true"), InvalidStateError);
          assert.equal((await sbx.start()).state, "running");
          assert.equal(await sbx.files.read("keep.txt"), "kept");
          assert.equal((await sbx.commands.run("cat keep.txt")).stdout, "kept");
        });
      } finally {
        await sbx.kill();
        await sbx.close();
      }
    });

    it("connect by name or id; list by labels", async () => {
      const a = await create({ name: `conn-${factory.name}`, labels: { team: "a" } });
      const b = await create({ labels: { team: "b" } });
      try {
        const byName = await Sandbox.connect(`conn-${factory.name}`, { backend });
        assert.equal(byName.id, a.id);
        assert.equal((await byName.commands.run("echo $((6*7))")).stdout, "42\n");
        await byName.close();
        await assert.rejects(byName.commands.run("true"), InvalidStateError, "a closed handle refuses calls");
        assert.equal((await Sandbox.connect(b.id, { backend })).name, b.name);
        const teamA = await Sandbox.list({ backend, labels: { suite: "sdk", team: "a" } });
        assert.deepEqual(
          teamA.map((s) => s.id),
          [a.id],
        );
        const both = (await Sandbox.list({ backend, labels: { suite: "sdk" } })).map((s) => s.id);
        assert.ok(both.includes(a.id) && both.includes(b.id));
      } finally {
        await a.kill();
        await b.kill();
      }
      const deleted = await Sandbox.list({ backend, all: true, labels: { team: "a" } });
      assert.equal(deleted.find((s) => s.id === a.id)?.state, "deleted");
    });

    it("await using deletes the sandbox at the end of the scope, and kill is idempotent", async () => {
      let id = "";
      {
        await using sbx = await create();
        id = sbx.id;
        assert.equal((await sbx.commands.run("true")).exitCode, 0);
      }
      assert.equal((await backend.getSandbox(id)).state, "deleted");
      const again = await Sandbox.connect(id, { backend });
      assert.equal((await again.kill()).state, "deleted");
      await again[Symbol.asyncDispose]();
    });
  });
}

describe("typed errors are identical across backends", { skip }, () => {
  it("every backend threw the same class and code for every failing operation", (t) => {
    const [first, ...rest] = [...errorsSeen.entries()];
    if (!first || rest.length === 0) {
      t.skip(`only ${errorsSeen.size} backend ran`);
      return;
    }
    for (const [name, seen] of rest) assert.deepEqual(seen, first[1], `${name} vs ${first[0]}`);
  });
});
