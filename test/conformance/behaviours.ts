/**
 * The conformance manifest: behaviours every driver must show, by id, each with the capability it
 * needs. The runner (conformance.test.ts) registers every behaviour for every driver; a behaviour
 * whose capability a driver lacks is skipped with that reason.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { DriverCapabilities } from "../../src/core/driver.js";
import { InvalidStateError } from "../../src/core/errors.js";
import type { Sandbox } from "../../src/core/types.js";
import type { CreateOptions, Warren } from "../../src/service/index.js";

/** What a behaviour gets. */
export interface BehaviourContext {
  warren: Warren;
  driver: string;
  capabilities: DriverCapabilities;
  /** Creates a sandbox with this driver (ids are recorded for failure messages). */
  create(options?: CreateOptions): Promise<Sandbox>;
}

/** One behaviour of the manifest. */
export interface Behaviour {
  id: string;
  description: string;
  /** Returns why the driver cannot be held to this behaviour, or null. */
  needs?: (caps: DriverCapabilities) => string | null;
  run(ctx: BehaviourContext): Promise<void>;
}

const isolated = (c: DriverCapabilities): string | null =>
  c.isolation === "none" ? "driver gives no isolation" : null;

const run = async (ctx: BehaviourContext, id: string, argv: string[], extra = {}) =>
  ctx.warren.sandboxes.exec(id, { argv, ...extra });

/** Every behaviour, in order. */
export const BEHAVIOURS: Behaviour[] = [
  {
    id: "create:running",
    description: "a created sandbox is running and reports the driver's isolation",
    async run(ctx) {
      const s = await ctx.create();
      assert.equal(s.state, "running");
      assert.equal(s.driver, ctx.driver);
      assert.equal(s.isolation, ctx.capabilities.isolation);
      assert.ok(s.expiresAt, "a running sandbox has an expiry");
    },
  },
  {
    id: "exec:stdout",
    description: "stdout comes back in the result and through the streaming callback",
    async run(ctx) {
      const s = await ctx.create();
      const chunks: Buffer[] = [];
      const r = await run(ctx, s.id, ["echo", "hello", "world"], { onStdout: (c: Buffer) => chunks.push(c) });
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout, "hello world\n");
      assert.equal(Buffer.concat(chunks).toString(), "hello world\n");
      assert.equal(r.isolation, ctx.capabilities.isolation);
    },
  },
  {
    id: "exec:exit-code",
    description: "a non-zero exit code is a result, not an error",
    async run(ctx) {
      const s = await ctx.create();
      assert.equal((await run(ctx, s.id, ["sh", "-c", "exit 3"])).exitCode, 3);
      assert.equal((await run(ctx, s.id, ["false"])).exitCode, 1);
    },
  },
  {
    id: "exec:stderr",
    description: "stderr is kept apart from stdout",
    async run(ctx) {
      const s = await ctx.create();
      const r = await run(ctx, s.id, ["sh", "-c", "echo out; echo err >&2"]);
      assert.equal(r.stdout, "out\n");
      assert.equal(r.stderr, "err\n");
    },
  },
  {
    id: "exec:stdin",
    description: "stdin is delivered and closed",
    async run(ctx) {
      const s = await ctx.create();
      const r = await run(ctx, s.id, ["cat"], { stdin: "line one\nline two\n" });
      assert.equal(r.stdout, "line one\nline two\n");
    },
  },
  {
    id: "exec:env",
    description: "sandbox-wide and per-command environment variables reach the command",
    async run(ctx) {
      const s = await ctx.create({ env: { SANDBOX_VAR: "from-sandbox" } });
      assert.equal((await run(ctx, s.id, ["printenv", "SANDBOX_VAR"])).stdout, "from-sandbox\n");
      const r = await run(ctx, s.id, ["printenv", "CMD_VAR"], { env: { CMD_VAR: "from-command" } });
      assert.equal(r.stdout, "from-command\n");
    },
  },
  {
    id: "exec:cwd-workspace",
    description: "commands start in /workspace unless told otherwise",
    needs: isolated,
    async run(ctx) {
      const s = await ctx.create();
      assert.equal((await run(ctx, s.id, ["pwd"])).stdout, "/workspace\n");
      assert.equal((await run(ctx, s.id, ["pwd"], { cwd: "/tmp" })).stdout, "/tmp\n");
    },
  },
  {
    id: "exec:timeout",
    description: "a command past its timeout is killed and marked timed out; the sandbox lives on",
    async run(ctx) {
      const s = await ctx.create();
      const r = await run(ctx, s.id, ["sleep", "30"], { timeoutMs: 300 });
      assert.equal(r.timedOut, true);
      assert.equal(r.exitCode, 124);
      assert.ok(r.durationMs < 10000, `took ${r.durationMs} ms`);
      assert.equal((await run(ctx, s.id, ["echo", "alive"])).stdout, "alive\n");
      const entry = ctx.warren.sandboxes.journal(s.id).at(-2)!;
      assert.equal(entry.status, "timed_out");
    },
  },
  {
    id: "exec:output-cap",
    description: "output past the cap is cut and flagged as truncated",
    async run(ctx) {
      const s = await ctx.create();
      const long = "x".repeat(3000);
      const r = await run(ctx, s.id, ["echo", long]);
      const cap = ctx.warren.config.maxOutputBytes;
      assert.equal(r.truncated, true);
      assert.equal(r.stdout.length, cap);
      assert.equal(ctx.warren.sandboxes.journal(s.id)[0].truncated, true);
    },
  },
  {
    id: "exec:requires-running",
    description: "exec in a stopped sandbox is an InvalidState error with a hint",
    async run(ctx) {
      const s = await ctx.create();
      await ctx.warren.sandboxes.stop(s.id);
      await assert.rejects(
        run(ctx, s.id, ["true"]),
        (e: unknown) => e instanceof InvalidStateError && /warren start/.test(e.hint ?? ""),
      );
    },
  },
  {
    id: "workspace:persists-across-restart",
    description: "files in /workspace survive stop and start",
    async run(ctx) {
      const s = await ctx.create();
      await run(ctx, s.id, ["sh", "-c", "echo kept > note.txt"]);
      await ctx.warren.sandboxes.stop(s.id);
      assert.equal(ctx.warren.sandboxes.status(s.id).state, "stopped");
      await ctx.warren.sandboxes.start(s.id);
      assert.equal((await run(ctx, s.id, ["cat", "note.txt"])).stdout, "kept\n");
    },
  },
  {
    id: "journal:every-command",
    description: "every command gets the next sequence number and a completed journal entry",
    async run(ctx) {
      const s = await ctx.create();
      const a = await run(ctx, s.id, ["echo", "one"]);
      const b = await run(ctx, s.id, ["sh", "-c", "exit 2"]);
      assert.deepEqual([a.sequence, b.sequence], [1, 2]);
      const j = ctx.warren.sandboxes.journal(s.id);
      assert.deepEqual(
        j.map((e) => [e.sequence, e.status, e.exitCode, e.argv[0]]),
        [
          [1, "completed", 0, "echo"],
          [2, "completed", 2, "sh"],
        ],
      );
      assert.equal(j[0].stdout, "one\n");
    },
  },
  {
    id: "stop:idempotent",
    description: "stopping a stopped sandbox changes nothing",
    async run(ctx) {
      const s = await ctx.create();
      await ctx.warren.sandboxes.stop(s.id);
      assert.equal((await ctx.warren.sandboxes.stop(s.id)).state, "stopped");
    },
  },
  {
    id: "destroy:idempotent",
    description: "deleting removes the workspace; deleting again is not an error",
    async run(ctx) {
      const s = await ctx.create();
      await ctx.warren.sandboxes.delete(s.id);
      assert.equal(existsSync(s.workspaceDir), false);
      assert.equal((await ctx.warren.sandboxes.delete(s.id)).state, "deleted");
      assert.equal(ctx.warren.sandboxes.journal(s.id).length, 0);
    },
  },
  {
    id: "network:none-by-default",
    description: "a sandbox has only the loopback interface unless asked",
    needs: (c) =>
      isolated(c) ?? (c.networkPolicies.includes("none") ? null : "driver cannot enforce network none"),
    async run(ctx) {
      const s = await ctx.create();
      assert.equal(s.network, "none");
      const r = await run(ctx, s.id, ["cat", "/proc/net/dev"]);
      const ifaces = r.stdout
        .split("\n")
        .slice(2)
        .filter(Boolean)
        .map((l) => l.split(":")[0].trim());
      assert.deepEqual(ifaces, ["lo"]);
    },
  },
  {
    id: "limits:memory",
    description: "a command over the memory limit is OOM-killed (137) and the sandbox survives",
    needs: (c) => (c.limits.memory ? null : "driver does not enforce memory limits"),
    async run(ctx) {
      const s = await ctx.create({ memoryMiB: 128 });
      // tail -n 1 keeps the whole newline-free stream in memory.
      const r = await run(ctx, s.id, ["sh", "-c", "head -c 400M /dev/zero | tail -n 1 > /dev/null"]);
      assert.equal(r.exitCode, 137, `exit ${r.exitCode}: ${r.stderr}`);
      assert.equal((await run(ctx, s.id, ["echo", "ok"])).stdout, "ok\n");
    },
  },
  {
    id: "limits:pids",
    description: "forking past the process limit fails inside the sandbox",
    needs: (c) => (c.limits.pids ? null : "driver does not enforce process limits"),
    async run(ctx) {
      const s = await ctx.create({ pidsMax: 32 });
      const r = await run(
        ctx,
        s.id,
        ["sh", "-c", "for i in $(seq 64); do sleep 5 & done 2>&1; echo spawned"],
        { timeoutMs: 20000 },
      );
      assert.match(r.stdout + r.stderr, /fork|Resource temporarily unavailable|Cannot/i);
      assert.equal((await run(ctx, s.id, ["echo", "ok"])).stdout, "ok\n");
    },
  },
];
