/**
 * Driver protocol v1 end to end: the bootstrap handshake and its version check, a partial
 * third-party driver (unimplemented calls are NotSupported), a driver killed mid-exec (typed
 * error, sandbox failed, the service goes on), a restarted driver re-attaching live instances,
 * and a driver someone else serves on a socket, used from the CLI with --driver-socket.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { DriverUnavailableError, NotSupportedError } from "../../src/core/errors.js";
import {
  builtinDriverCommand,
  createExternalDriver,
  type ExternalDriver,
} from "../../src/drivers/external/driver.js";
import { openWarren } from "../../src/service/index.js";
import { readLine, spawnDriver } from "../../src/protocol/v1/bootstrap.js";
import { capabilitiesToWire, driverService, probeToWire } from "../../src/protocol/v1/wire.js";
import { CLI, cli, cliEnv, cliJson } from "../helpers/cli.js";
import { bwrapSkipReason, leakedCgroups } from "../helpers/warren.js";
import { createBuiltinRegistry } from "../../src/drivers/index.js";
import { externalWarren, pidAlive, waitFor } from "./driver-protocol-fixture.js";

const bwrapSkip = await bwrapSkipReason();
if (bwrapSkip) console.log(`# driver-protocol: bwrap tests skipped: ${bwrapSkip}`);
/** The driver the crash tests run out-of-process: bwrap where it works, else fake. */
const crashDriver = bwrapSkip ? "fake" : "bwrap";

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "warren-proto-"));
  dirs.push(d);
  return d;
};
const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts `warren driver serve NAME --socket PATH` as a separate process and waits until it serves. */
async function serveOnSocket(name: string, socket: string, stateDir: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, [CLI, "driver", "serve", name, "--socket", socket], {
    env: cliEnv(stateDir),
    stdio: ["ignore", "pipe", "inherit"],
  });
  procs.push(p);
  const ready = JSON.parse(await readLine(p.stdout!, 15000, "the ready line"));
  assert.equal(ready.socket, socket);
  return p;
}

async function stopProcess(p: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill(signal);
  await exited;
}

/** A gRPC server implementing only some methods, as a partial third-party driver would. */
async function partialDriver(socket: string, protocolVersion: number): Promise<grpc.Server> {
  const caps = capabilitiesToWire({
    isolation: "container",
    networkPolicies: ["none"],
    limits: { memory: false, pids: false, cpu: false },
    rootfsEnvironments: false,
    persistentInstances: true,
    posixShell: false,
  });
  const server = new grpc.Server();
  server.addService(driverService(), {
    Handshake: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { protocolVersion, driverName: "acme", capabilities: caps, pid: process.pid }),
    Probe: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, probeToWire({ usable: true, reason: "acme is fine" })),
  });
  await new Promise<void>((res, rej) =>
    server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
  return server;
}

describe("driver protocol: bootstrap handshake", () => {
  it("a spawned driver answers version, socket and capabilities; closing it leaves nothing", async () => {
    const stateDir = tempDir();
    const d = await spawnDriver("fake", builtinDriverCommand("fake"), {
      protocolVersion: 1,
      stateDir,
      logLevel: "silent",
    });
    assert.equal(d.capabilities.isolation, "none");
    assert.equal(statSync(d.socket).mode & 0o777, 0o600);
    assert.ok(pidAlive(d.pid));
    await d.close();
    assert.equal(pidAlive(d.pid), false);
    await waitFor("the socket to go", () => !existsSync(d.socket));
  });

  it("a driver that speaks another protocol version is refused with a typed error", async () => {
    const answer = JSON.stringify({ protocolVersion: 2, socket: "/nonexistent.sock" });
    const command = [
      process.execPath,
      "-e",
      `process.stdout.write(${JSON.stringify(answer + "\n")}); setInterval(() => {}, 1000)`,
    ];
    await assert.rejects(
      spawnDriver("future", command, { protocolVersion: 1, stateDir: tempDir(), logLevel: "silent" }),
      (e: unknown) =>
        e instanceof DriverUnavailableError &&
        /speaks driver protocol version 2, but this Warren speaks version 1/.test(e.message) &&
        !!e.hint,
    );
  });

  it("`warren driver serve` refuses a hello of another version, saying why", async () => {
    const p = spawn(process.execPath, [CLI, "driver", "serve", "fake"], {
      env: cliEnv(tempDir()),
      stdio: ["pipe", "pipe", "pipe"],
    });
    procs.push(p);
    p.stdin!.write(JSON.stringify({ protocolVersion: 99, stateDir: "/tmp", logLevel: "silent" }) + "\n");
    const answer = JSON.parse(await readLine(p.stdout!, 15000, "the answer"));
    assert.equal(answer.protocolVersion, 1);
    assert.equal(answer.error.code, "INVALID_ARGUMENT");
    assert.match(answer.error.message, /version 99/);
    const code = await new Promise((r) => p.once("exit", r));
    assert.equal(code, 2);
  });

  it("a driver on a socket that answers another version in Handshake is refused", async () => {
    const socket = join(tempDir(), "future.sock");
    const server = await partialDriver(socket, 7);
    try {
      const d = createExternalDriver("future", { socket }, { stateDir: tempDir() });
      await assert.rejects(
        d.handshake(),
        (e: unknown) => e instanceof DriverUnavailableError && /version 7/.test(e.message),
      );
      const probe = await d.probe();
      assert.equal(probe.usable, false);
      assert.match(probe.reason, /version 7/);
    } finally {
      server.forceShutdown();
    }
  });
});

describe("driver protocol: a partial third-party driver", () => {
  it("answers NotSupported for every call it does not implement, never a silent success", async () => {
    const socket = join(tempDir(), "acme.sock");
    const server = await partialDriver(socket, 1);
    const d = createExternalDriver("acme", { socket }, { stateDir: tempDir() });
    try {
      assert.equal((await d.handshake()).driverName, "acme");
      assert.deepEqual(await d.probe(), { usable: true, reason: "acme is fine" });
      assert.equal(d.capabilities.isolation, "container");
      const config = {
        workspaceDir: tempDir(),
        environment: { name: "host", rootfsPath: null },
        hostname: "x",
        env: {},
        vcpuCount: 1,
        memoryMiB: 256,
        pidsMax: 64,
        network: "none" as const,
        healthTimeoutMs: 1000,
      };
      const notSupported = (e: unknown): boolean =>
        e instanceof NotSupportedError && /does not implement/.test(e.message);
      await assert.rejects(d.createInstance("sbx-0000000000aa", config), notSupported);
      await assert.rejects(d.attach("sbx-0000000000aa", config, {}), notSupported);
      await assert.rejects(d.cleanupStaleResources({ keepSandboxIds: new Set() }), notSupported);
    } finally {
      await d.close();
      server.forceShutdown();
    }
  });
});

describe(`driver protocol: a crashing driver (${crashDriver} out-of-process)`, () => {
  it("killed mid-exec: a typed error, the sandbox failed with the reason, other sandboxes served", async () => {
    const t = await externalWarren("crashy", { builtin: crashDriver });
    try {
      const { sandboxes } = t.warren;
      const a = await sandboxes.create({ driver: "crashy", name: "victim" });
      const b = await sandboxes.create({ driver: "crashy", name: "bystander" });
      const { pid } = await t.driver().handshake();
      const running = sandboxes.exec(a.id, { argv: ["sleep", "30"] });
      setTimeout(() => process.kill(pid, "SIGKILL"), 300);
      await assert.rejects(
        running,
        (e: unknown) =>
          e instanceof DriverUnavailableError && /killed by SIGKILL/.test(e.message) && !!e.hint,
      );
      const failed = sandboxes.status(a.id);
      assert.equal(failed.state, "failed");
      assert.match(failed.lastError ?? "", /killed by SIGKILL/);
      assert.equal(sandboxes.journal(a.id).at(-1)!.status, "failed");
      // The service goes on: the next call restarts the driver, another sandbox works.
      assert.equal((await sandboxes.exec(b.id, { argv: ["echo", "still here"] })).stdout, "still here\n");
      assert.notEqual((await t.driver().handshake()).pid, pid);
      assert.equal(pidAlive(pid), false);
    } finally {
      await t.dispose();
    }
  });

  it(
    "restarted, the driver re-attaches the live instance of a failed sandbox",
    { skip: bwrapSkip },
    async () => {
      const t = await externalWarren("crashy", { builtin: "bwrap" });
      try {
        const { sandboxes, store } = t.warren;
        const a = await sandboxes.create({ driver: "crashy" });
        await sandboxes.exec(a.id, { argv: ["sh", "-c", "echo before > note.txt"] });
        const holder = store.sandboxes.get(a.id)!.driverState;
        const { pid } = await t.driver().handshake();
        const running = sandboxes.exec(a.id, { argv: ["sleep", "30"] });
        setTimeout(() => process.kill(pid, "SIGKILL"), 300);
        await assert.rejects(running, DriverUnavailableError);
        assert.equal(sandboxes.status(a.id).state, "failed");
        // Starting it again goes through a new driver process, which attaches the same holder.
        assert.equal((await sandboxes.start(a.id)).state, "running");
        assert.deepEqual(store.sandboxes.get(a.id)!.driverState, holder);
        assert.equal((await sandboxes.exec(a.id, { argv: ["cat", "note.txt"] })).stdout, "before\n");
      } finally {
        await t.dispose();
      }
    },
  );

  it(
    "a driver on a socket restarted by its owner: the instance proxy re-attaches by itself",
    { skip: bwrapSkip },
    async () => {
      const stateDir = tempDir();
      chmodSync(stateDir, 0o711); // the sandbox uid passes through to its workspace
      const socket = join(stateDir, "bwrap.sock");
      let server = await serveOnSocket("bwrap", socket, stateDir);
      const d = createExternalDriver("bwrap-sock", { socket }, { stateDir });
      const workspaceDir = join(stateDir, "workspaces", "sbx-00000000aaaa");
      const config = {
        workspaceDir,
        environment: { name: "host", rootfsPath: null },
        hostname: "proxy",
        env: {},
        vcpuCount: 1,
        memoryMiB: 256,
        pidsMax: 64,
        network: "none" as const,
        healthTimeoutMs: 5000,
      };
      const inst = await d.createInstance("sbx-00000000aaaa", config);
      try {
        await inst.start();
        await stopProcess(server);
        await assert.rejects(inst.exec({ argv: ["true"] }), DriverUnavailableError);
        server = await serveOnSocket("bwrap", socket, stateDir);
        assert.equal(await inst.isHealthy(), true);
        assert.equal((await inst.exec({ argv: ["hostname"] })).stdout.toString(), "proxy\n");
      } finally {
        // If the driver cannot be reached, destroy through the same driver in this process.
        await inst.destroy().catch(async () => {
          const local = createBuiltinRegistry({ stateDir, sandboxUid: 61000 }).get("bwrap");
          await (await local.attach(inst.id, config, inst.persistedState())).destroy();
        });
        await d.close();
        await stopProcess(server);
      }
      assert.deepEqual(leakedCgroups(stateDir), []);
    },
  );
});

describe("driver protocol: bwrap in-process and out-of-process on one state dir", () => {
  it(
    "reconcile in another process keeps the out-of-process driver's sandboxes",
    { skip: bwrapSkip },
    async () => {
      const t = await externalWarren("bwrap-oop", { builtin: "bwrap" });
      try {
        const s = await t.warren.sandboxes.create({ driver: "bwrap-oop" });
        const other = await openWarren({
          config: { logLevel: "silent", stateDir: t.stateDir },
          env: { HOME: t.stateDir },
          registry: createBuiltinRegistry,
        });
        try {
          assert.deepEqual(other.startup.reconcile.removedResources, []);
          assert.equal(other.sandboxes.status(s.id).state, "running");
        } finally {
          await (other.registry.get("bwrap-oop") as ExternalDriver).close();
          other.close();
        }
        assert.equal((await t.warren.sandboxes.exec(s.id, { argv: ["echo", "alive"] })).stdout, "alive\n");
      } finally {
        await t.dispose();
      }
    },
  );
});

describe("driver protocol: a driver someone else serves (--driver-socket)", () => {
  it("the CLI creates with it, finds it again in later calls, and lists it", async () => {
    const stateDir = tempDir();
    const socket = join(stateDir, "third-party.sock");
    const server = await serveOnSocket("fake", socket, stateDir);
    try {
      const refused = cli(stateDir, ["create", "--driver-socket", socket]);
      assert.equal(refused.status, 4, refused.stderr);
      assert.match(refused.stderr, /built-in driver[\s\S]*--driver NAME/);
      const s = cliJson<{ id: string; driver: string }>(stateDir, [
        "create",
        "--driver-socket",
        socket,
        "--driver",
        "acme",
      ]);
      assert.equal(s.__status, 0);
      assert.equal(s.driver, "acme");
      const r = cli(stateDir, ["exec", s.id, "--", "echo", "from", "acme"]);
      assert.equal(r.stdout, "from acme\n", r.stderr);
      const ls = cliJson<Array<{ name: string; where: string }>>(stateDir, ["driver", "ls"]);
      assert.ok(ls.some((d) => d.name === "acme" && d.where === `socket ${socket}`));
      assert.equal(cli(stateDir, ["rm", s.id]).status, 0);
      assert.equal(cli(stateDir, ["driver", "rm", "acme"]).status, 0);
    } finally {
      await stopProcess(server);
    }
    assert.equal(existsSync(socket), false);
  });
});
