/**
 * The microvm driver with real VMs (under software emulation on machines without usable KVM, so
 * the VM count is kept small): its own kernel, the CLI across processes (create, exec from
 * another process, clean stop, restart with the workspace), files and background processes
 * through the agent, leftovers and abandoned commands killed, orphaned VMs cleaned up.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Sandbox } from "../../src/core/types.js";
import { AgentClient, type ChannelAddress } from "../../src/drivers/microvm/channel.js";
import { processesMentioning } from "../../src/drivers/microvm/processes.js";
import { cli, cliJson } from "../helpers/cli.js";
import { testWarren, type TestWarren } from "../helpers/warren.js";
import { ensureVmEnvironment } from "./microvm-fixture.js";

const envDir = await ensureVmEnvironment();
async function skipReason(): Promise<string | false> {
  const t = await testWarren();
  try {
    const p = await t.warren.registry.get("microvm").probe();
    return p.usable ? false : `microvm unusable here: ${p.reason}${p.hint ? ` (fix: ${p.hint})` : ""}`;
  } finally {
    await t.dispose();
  }
}
const skip = await skipReason();
if (skip) console.log(`# microvm integration: skipping: ${skip}`);

/** VMM and virtiofsd processes of a state directory. */
const vmProcesses = (stateDir: string) => processesMentioning(join(stateDir, "drivers", "microvm") + "/");

describe("microvm driver (real VMs)", { skip }, () => {
  let t: TestWarren;
  let s: Sandbox;
  const sh = async (script: string, extra: { detach?: boolean } = {}) => {
    const { outcome } = await t.warren.sandboxes.execInternal(s.id, { argv: ["sh", "-c", script], ...extra });
    return outcome.stdout.toString();
  };
  /** "alive" or "gone" (a zombie waiting to be reaped counts as gone). */
  const status = async (pid: string) =>
    (await sh(`grep -qs '^State:[[:space:]]*[^Z]' /proc/${pid}/status && echo alive || echo gone`)).trim();
  before(async () => {
    t = await testWarren();
    s = await t.warren.sandboxes.create({ driver: "microvm", name: "vm1" });
  });
  after(async () => {
    await t.dispose();
    assert.deepEqual(vmProcesses(t.stateDir), [], "no VMM or virtiofsd is left running");
  });

  it("runs commands under the guest's own kernel, as the sandbox user, with only loopback", async () => {
    const r = await t.warren.sandboxes.exec(s.id, { argv: ["sh", "-c", "uname -r; id -u; hostname"] });
    const [kernel, uid, hostname] = r.stdout.trim().split("\n");
    assert.match(kernel, /-cloud-amd64$/);
    assert.notEqual(kernel, execFileSync("uname", ["-r"], { encoding: "utf8" }).trim());
    assert.deepEqual([uid, hostname], ["1000", "vm1"]);
    assert.equal(r.isolation, "vm");
  });

  it("records the acceleration and how the VM booted in its log", async () => {
    const log = await t.warren.sandboxes.driverLog(s.id);
    assert.match(log, /booted .* with qemu, acceleration (kvm|tcg)/);
    assert.match(log, /warren-agent: ready/);
  });

  it("serves the file and background-process services (posixShell)", async () => {
    await t.warren.files.write(s.id, "/workspace/dir/hello.txt", "from the host\n");
    assert.equal((await t.warren.files.read(s.id, "dir/hello.txt")).toString(), "from the host\n");
    assert.deepEqual(
      (await t.warren.files.list(s.id, "/workspace/dir")).map((e) => e.name),
      ["hello.txt"],
    );
    const p = await t.warren.processes.start(s.id, { argv: ["sh", "-c", "echo started; sleep 0.2; exit 4"] });
    const done = await t.warren.processes.wait(s.id, p.processId, { timeoutMs: 20000 });
    assert.equal(done.exitCode, 4);
    assert.equal((await t.warren.processes.output(s.id, p.processId)).stdout.toString(), "started\n");
  });

  it("kills what a command leaves behind, unless it was started detached", async () => {
    const left = (await sh("sleep 300 >/dev/null 2>&1 & echo $!")).trim();
    assert.equal(await status(left), "gone");
    const kept = (
      await sh("setsid sleep 300 >/dev/null 2>&1 < /dev/null & echo $!", { detach: true })
    ).trim();
    assert.equal(await status(kept), "alive");
    await sh(`kill ${kept}`);
  });

  it("kills the command of a caller that went away", async () => {
    const state = t.warren.store.sandboxes.get(s.id)!.driverState as { channel: ChannelAddress };
    const client = await AgentClient.connect(state.channel, Date.now() + 20000);
    const running = client
      .exec(
        { argv: ["sh", "-c", "echo $$ > /tmp/abandoned; exec sleep 300"], cwd: "/", env: {} },
        { maxOutputBytes: 1024 },
      )
      .catch(() => null);
    let pid = "";
    for (let i = 0; i < 200 && !pid; i++) {
      pid = (await sh("cat /tmp/abandoned 2>/dev/null || true")).trim();
      if (!pid) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(pid, "the command started");
    client.close();
    await running;
    let state2 = "alive";
    for (let i = 0; i < 100 && state2 === "alive"; i++) {
      state2 = await status(pid);
      if (state2 === "alive") await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(state2, "gone");
  });

  it("cleanup kills the VM of a sandbox nobody keeps and removes its files", async () => {
    const driver = t.warren.registry.get("microvm");
    const ws = join(t.stateDir, "orphan-ws");
    mkdirSync(ws);
    const id = "sbx-0000000000aa";
    const inst = await driver.createInstance(id, {
      workspaceDir: ws,
      environment: { name: "host", rootfsPath: null },
      hostname: "orphan",
      env: {},
      vcpuCount: 1,
      memoryMiB: 256,
      pidsMax: 64,
      network: "none",
      healthTimeoutMs: 30000,
    });
    await inst.start();
    assert.ok(vmProcesses(t.stateDir).some((p) => p.cmdline.includes(`/${id}/`)));
    const report = await driver.cleanupStaleResources({ keepSandboxIds: new Set([s.id]) });
    assert.ok(
      report.removed.some((r) => r.includes(id)),
      report.removed.join("; "),
    );
    assert.deepEqual(
      vmProcesses(t.stateDir).filter((p) => p.cmdline.includes(`/${id}/`)),
      [],
    );
    assert.equal(existsSync(join(t.stateDir, "drivers", "microvm", id)), false);
    assert.equal(t.warren.sandboxes.status(s.id).state, "running");
    assert.equal(await sh("echo still here"), "still here\n");
  });
});

describe("microvm driver through the CLI", { skip }, () => {
  let home: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), "warren-cli-vm-"));
    chmodSync(home, 0o711);
    // The VM environment as `warren env pull debian-bookworm-vm` would leave it, from the cache.
    mkdirSync(join(home, "environments"));
    symlinkSync(envDir!, join(home, "environments", "debian-bookworm-vm"));
  });
  after(() => {
    for (const s of cliJson<Array<{ id: string }>>(home, ["ls"])) cli(home, ["rm", s.id]);
    const left = vmProcesses(home);
    rmSync(home, { recursive: true, force: true });
    assert.deepEqual(left, [], "no VMM or virtiofsd is left running");
  });

  it("create boots a guest, exec runs in it from another process, stop is clean, start keeps the workspace", () => {
    const envs = cliJson<Array<{ name: string; installed: boolean }>>(home, ["env", "ls"]);
    assert.equal(envs.find((e) => e.name === "debian-bookworm-vm")?.installed, true);
    const created = cliJson<{ id: string; state: string; isolation: string }>(home, [
      "create",
      "--driver",
      "microvm",
      "--name",
      "clivm",
    ]);
    assert.deepEqual([created.state, created.isolation], ["running", "vm"]);
    const uname = cliJson<{ stdout: string; exitCode: number }>(home, ["exec", "clivm", "--", "uname", "-r"]);
    assert.match(uname.stdout, /-cloud-amd64\n$/);
    cliJson(home, ["exec", "clivm", "--", "sh", "-c", "echo kept > note.txt"]);
    assert.equal(cliJson<{ state: string }>(home, ["stop", "clivm"]).state, "stopped");
    const vmDir = join(home, "drivers", "microvm", created.id);
    assert.match(readFileSync(join(vmDir, "console.log"), "utf8"), /warren-agent: powering off/);
    assert.match(readFileSync(join(vmDir, "microvm.log"), "utf8"), /guest shut down cleanly/);
    assert.deepEqual(vmProcesses(home), []);
    assert.equal(cliJson<{ state: string }>(home, ["start", "clivm"]).state, "running");
    assert.equal(
      cliJson<{ stdout: string }>(home, ["exec", "clivm", "--", "cat", "note.txt"]).stdout,
      "kept\n",
    );
    assert.equal(cli(home, ["rm", "clivm"]).status, 0);
    assert.equal(existsSync(vmDir), false);
  });
});
