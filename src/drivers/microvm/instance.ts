/**
 * One microVM sandbox: a detached VMM (QEMU, or Firecracker) and, with QEMU, a detached virtiofsd;
 * both known by pid and start time in the persisted state, so any later Warren process can reach
 * the VM's agent, stop it or kill it. Commands go to the guest agent (channel.ts).
 */
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import type {
  CallOptions,
  ExecOutcome,
  ExecSpec,
  PersistedState,
  RuntimeConfig,
  RuntimeInstance,
} from "../../core/driver.js";
import { InternalError, InvalidStateError } from "../../core/errors.js";
import { isAlive, type ProcessIdentity } from "../../core/proc.js";
import type { AccelerationChoice } from "./accel.js";
import type { VmArtifacts } from "./artifacts.js";
import { portSocket, withAgent, type ChannelAddress } from "./channel.js";
import { AGENT_VSOCK_PORT, launchFirecracker, prepareFirecrackerDisks, vsockSocket } from "./firecracker.js";
import {
  childIdentity,
  killProcess,
  processesMentioning,
  spawnDetached,
  tailOf,
  waitGone,
} from "./processes.js";
import { consoleLog, createOverlay, kernelCmdline, qemuArgs, type Acceleration } from "./qemu.js";
import { startVirtiofsd } from "./virtiofsd.js";

/** Host binaries the driver runs. */
export interface MicrovmTools {
  qemu: string;
  qemuImg: string;
  virtiofsd: string;
  firecracker: string | null;
}

/** What an instance needs from its driver. */
export interface MicrovmInstanceContext {
  /** The VM's directory: overlay, sockets, logs. */
  dir: string;
  /** The environment's files. @throws when it is not installed (only start needs them) */
  artifacts: () => VmArtifacts;
  tools: MicrovmTools;
  /** The launcher to boot with under this acceleration. */
  launcher: (acceleration: Acceleration, artifacts: VmArtifacts) => "qemu" | "firecracker";
  acceleration: (artifacts: VmArtifacts) => Promise<AccelerationChoice>;
  /** Host uid of the guest's user (owner of the workspace directory). */
  sandboxUid: number;
  /** Unprivileged host uid QEMU and virtiofsd run as. */
  helperUid: number;
  ports: number;
  defaultMaxOutputBytes: number;
  /** Least time a boot is given under software emulation, whatever the health timeout. */
  tcgBootFloorMs: number;
}

/** What is persisted to reach the VM from another process. */
export interface VmState {
  launcher: "qemu" | "firecracker";
  acceleration: Acceleration;
  vmm: ProcessIdentity;
  virtiofsd: ProcessIdentity | null;
  channel: ChannelAddress;
  /** Milliseconds from launch until the agent answered. */
  bootMs: number;
}

/** Longest Unix socket path Linux accepts. */
const MAX_SOCKET_PATH = 107;

/** The environment every command starts with (the sandbox's and the command's go over it). */
export function baseEnv(hostname: string): Record<string, string> {
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/workspace",
    USER: "user",
    LOGNAME: "user",
    HOSTNAME: hostname,
    LANG: "C.UTF-8",
  };
}

/** A sandbox that is a microVM. */
export class MicrovmInstance implements RuntimeInstance {
  readonly driver = "microvm";
  private state: VmState | null;

  constructor(
    readonly id: string,
    private readonly config: RuntimeConfig,
    private readonly ctx: MicrovmInstanceContext,
    persisted: PersistedState | null,
  ) {
    this.state = persisted && persisted.vmm ? (persisted as unknown as VmState) : null;
  }

  persistedState(): PersistedState {
    return this.state ? { ...this.state } : {};
  }

  private alive(): boolean {
    return this.state !== null && isAlive(this.state.vmm);
  }

  private log(line: string): void {
    try {
      appendFileSync(join(this.ctx.dir, "microvm.log"), `${new Date().toISOString()} ${line}\n`);
    } catch {
      /* the directory is gone: nothing to log to */
    }
  }

  /** Kills any VMM, virtiofsd or launch helper of this sandbox that is still running. */
  private async killLeftovers(): Promise<void> {
    const tools = new Set([
      "qemu-system-x86_64",
      "virtiofsd",
      "firecracker",
      "setpriv",
      "unshare",
      "sh",
      "dash",
    ]);
    for (const p of processesMentioning(`${this.ctx.dir}/`)) {
      let exe = "";
      try {
        exe = basename(readlinkSync(`/proc/${p.pid}/exe`));
      } catch {
        continue;
      }
      if (tools.has(exe)) await killProcess(p);
    }
  }

  /** Removes sockets and channel claims of an earlier boot. */
  private clearRuntimeFiles(): void {
    if (!existsSync(this.ctx.dir)) return;
    for (const f of readdirSync(this.ctx.dir)) {
      if (/^port-\d+\.(sock|claim)$/.test(f) || f === "vsock.sock")
        rmSync(join(this.ctx.dir, f), { force: true });
    }
    rmSync(join(this.ctx.dir, "vfs"), { recursive: true, force: true });
  }

  async start(options: CallOptions = {}): Promise<void> {
    if (this.alive()) return;
    const { dir } = this.ctx;
    await this.killLeftovers();
    this.clearRuntimeFiles();
    const artifacts = this.ctx.artifacts();
    const choice = await this.ctx.acceleration(artifacts);
    const launcher = this.ctx.launcher(choice.acceleration, artifacts);
    const acceleration = launcher === "firecracker" ? "kvm" : choice.acceleration;
    const budget = Math.max(
      options.timeoutMs ?? this.config.healthTimeoutMs,
      acceleration === "tcg" ? this.ctx.tcgBootFloorMs : 0,
    );
    const deadline = Date.now() + budget;
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (portSocket(dir, this.ctx.ports - 1).length > MAX_SOCKET_PATH) {
      throw new InvalidStateError(`the VM's socket paths under ${dir} are too long for Unix sockets`, {
        hint: "use a shorter state directory (WARREN_HOME)",
      });
    }
    mkdirSync(this.config.workspaceDir, { recursive: true });
    chownSync(this.config.workspaceDir, this.ctx.sandboxUid, this.ctx.sandboxUid);
    const launched = performance.now();
    let vmm: ProcessIdentity | null = null;
    let virtiofsd: ProcessIdentity | null = null;
    try {
      let channel: ChannelAddress;
      if (launcher === "firecracker") ({ vmm, channel } = await this.bootFirecracker(artifacts));
      else ({ vmm, virtiofsd, channel } = await this.bootQemu(artifacts, acceleration, deadline));
      const vmmId = vmm;
      const facts = await withAgent(
        channel,
        deadline,
        () => isAlive(vmmId),
        (c) => c.ping(Math.max(deadline - Date.now(), 1000)),
      );
      const bootMs = Math.round(performance.now() - launched);
      this.state = { launcher, acceleration, vmm, virtiofsd, channel, bootMs };
      this.log(
        `booted ${artifacts.version} with ${launcher}, acceleration ${acceleration}` +
          `${choice.kvmProblem ? ` (no KVM: ${choice.kvmProblem})` : ""}; agent answered after ${bootMs} ms` +
          ` (agent rss ${facts.rss_kib} KiB, cgroups ${facts.cgroups === "1" ? "on" : "off"})`,
      );
    } catch (err) {
      await killProcess(vmm);
      await killProcess(virtiofsd);
      await this.killLeftovers();
      this.state = null;
      const console = tailOf(consoleLog(dir), 4000).trim().split("\n").slice(-4).join(" | ");
      const vmmSaid = tailOf(join(dir, "vmm.log"), 2000).trim().split("\n").slice(-2).join(" | ");
      this.log(`boot failed: ${(err as Error).message}`);
      if (err instanceof Error) {
        if (vmmSaid) err.message += `; the VMM said: ${vmmSaid}`;
        if (console) err.message += `; guest console: ${console}`;
      }
      throw err;
    }
  }

  private async bootQemu(
    artifacts: VmArtifacts,
    acceleration: Acceleration,
    deadline: number,
  ): Promise<{ vmm: ProcessIdentity; virtiofsd: ProcessIdentity; channel: ChannelAddress }> {
    const { dir, tools } = this.ctx;
    const overlay = join(dir, "root.qcow2");
    const baseMark = join(dir, "root.base");
    const base = existsSync(baseMark) ? readFileSync(baseMark, "utf8") : "";
    if (!existsSync(overlay) || base !== artifacts.checksum) {
      // A new build of the environment: an overlay of the old one would read garbage.
      rmSync(overlay, { force: true });
      await createOverlay(tools.qemuImg, artifacts.rootImage, overlay);
      writeFileSync(baseMark, artifacts.checksum);
    }
    const vfsDir = join(dir, "vfs");
    mkdirSync(vfsDir, { mode: 0o700 });
    chownSync(vfsDir, this.ctx.helperUid, this.ctx.helperUid);
    const virtiofsSocket = join(vfsDir, "vfs.sock");
    const virtiofsd = await startVirtiofsd({
      binary: tools.virtiofsd,
      socketPath: virtiofsSocket,
      sourceDir: this.config.workspaceDir,
      logPath: join(dir, "virtiofsd.log"),
      helperUid: this.ctx.helperUid,
      sandboxUid: this.ctx.sandboxUid,
      deadline,
    });
    const cmdline = kernelCmdline({
      hostname: this.config.hostname,
      pidsMax: this.config.pidsMax,
      acceleration,
      workspace: "virtiofs",
      channel: "serial",
      ports: this.ctx.ports,
    });
    const child = spawnDetached(
      tools.qemu,
      qemuArgs({
        name: this.id,
        dir,
        kernel: artifacts.kernel,
        initrd: artifacts.initrd,
        rootDisk: overlay,
        cmdline,
        acceleration,
        vcpus: this.config.vcpuCount,
        memoryMiB: this.config.memoryMiB,
        ports: this.ctx.ports,
        virtiofsSocket,
        runAs: this.ctx.helperUid,
      }),
      join(dir, "vmm.log"),
    );
    const vmm = childIdentity(child);
    if (!vmm) {
      await killProcess(virtiofsd);
      throw new InternalError("QEMU exited at once");
    }
    return { vmm, virtiofsd, channel: { kind: "ports", dir, count: this.ctx.ports } };
  }

  private async bootFirecracker(
    artifacts: VmArtifacts,
  ): Promise<{ vmm: ProcessIdentity; channel: ChannelAddress }> {
    const { dir, tools } = this.ctx;
    if (!tools.firecracker || !artifacts.vmlinux) throw new InternalError("Firecracker is not set up");
    const spec = {
      name: this.id,
      dir,
      vmlinux: artifacts.vmlinux,
      initrd: artifacts.initrd,
      rootDisk: join(dir, "root.ext4"),
      workspaceDisk: join(dir, "workspace.ext4"),
      cmdline: kernelCmdline({
        hostname: this.config.hostname,
        pidsMax: this.config.pidsMax,
        acceleration: "kvm",
        workspace: "block",
        channel: "vsock",
      }),
      vcpus: this.config.vcpuCount,
      memoryMiB: this.config.memoryMiB,
    };
    await prepareFirecrackerDisks(artifacts.rootImage, spec, this.config.workspaceDir);
    const vmm = childIdentity(launchFirecracker(tools.firecracker, spec, join(dir, "vmm.log")));
    if (!vmm) throw new InternalError("Firecracker exited at once");
    return { vmm, channel: { kind: "vsock", socket: vsockSocket(dir), port: AGENT_VSOCK_PORT } };
  }

  async exec(spec: ExecSpec, options: CallOptions = {}): Promise<ExecOutcome> {
    if (!this.alive()) {
      throw new InvalidStateError(`sandbox ${this.id} is not running (its VM is gone)`, {
        hint: `start it with \`warren start ${this.id}\``,
      });
    }
    const vmm = this.state!.vmm;
    return withAgent(
      this.state!.channel,
      Date.now() + 30000,
      () => isAlive(vmm),
      (client) =>
        client.exec(
          {
            argv: spec.argv,
            cwd: spec.cwd ?? "/workspace",
            env: { ...baseEnv(this.config.hostname), ...this.config.env, ...spec.env },
            timeoutMs: spec.timeoutMs ?? options.timeoutMs,
            detach: spec.detach,
          },
          {
            stdin: spec.stdin,
            maxOutputBytes: spec.maxOutputBytes ?? this.ctx.defaultMaxOutputBytes,
            onStdout: spec.onStdout,
            onStderr: spec.onStderr,
            signal: options.signal,
          },
        ),
    );
  }

  async isHealthy(): Promise<boolean> {
    return this.alive() && (this.state!.virtiofsd === null || isAlive(this.state!.virtiofsd));
  }

  /** Asks the guest to shut down cleanly (sync, unmount, power off); kills the VM after `graceMs`. */
  async stop(options: CallOptions & { graceMs?: number } = {}): Promise<void> {
    const graceMs = options.graceMs ?? 10000;
    const state = this.state;
    if (state && this.alive() && graceMs > 0) {
      const deadline = Date.now() + graceMs;
      try {
        await withAgent(
          state.channel,
          Math.min(deadline, Date.now() + 5000),
          () => isAlive(state.vmm),
          (c) => c.shutdown(Math.max(deadline - Date.now(), 1)),
        );
        if (await waitGone(state.vmm, Math.max(deadline - Date.now(), 0)))
          this.log("guest shut down cleanly");
        else this.log(`guest did not power off within ${graceMs} ms: killed`);
      } catch (err) {
        this.log(`clean shutdown failed (${(err as Error).message}): killed`);
      }
    }
    if (state) {
      await killProcess(state.vmm);
      await killProcess(state.virtiofsd);
    }
    await this.killLeftovers();
    this.clearRuntimeFiles();
    this.state = null;
  }

  async destroy(): Promise<void> {
    await this.stop({ graceMs: 0 });
    rmSync(this.ctx.dir, { recursive: true, force: true });
  }

  async logs(): Promise<string> {
    const { dir } = this.ctx;
    const parts = [
      tailOf(join(dir, "microvm.log")),
      `--- guest console ---\n${tailOf(consoleLog(dir))}`,
      `--- vmm ---\n${tailOf(join(dir, "vmm.log"), 8192)}`,
      `--- virtiofsd ---\n${tailOf(join(dir, "virtiofsd.log"), 8192)}`,
    ];
    return parts.join("\n");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
