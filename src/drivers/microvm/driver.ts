/**
 * The microvm driver: each sandbox is a virtual machine with its own kernel — QEMU `-M microvm`
 * with KVM where a probe VM boots with it, else software emulation (TCG, slow; `doctor` warns),
 * or Firecracker when installed — booted from the `debian-bookworm-vm` environment, with the
 * workspace shared over virtiofs and a guest agent (C, PID 1) that runs commands.
 *
 * Settings (environment variables, read when the driver is made):
 * - `WARREN_QEMU`, `WARREN_VIRTIOFSD`, `WARREN_FIRECRACKER`: binaries (default: found on PATH and
 *   in /usr/lib/qemu, /usr/libexec).
 * - `WARREN_MICROVM_LAUNCHER`: `qemu` or `firecracker` (default: firecracker when usable).
 * - `WARREN_MICROVM_ACCEL`: `kvm` or `tcg` to skip the KVM probe.
 * - `WARREN_MICROVM_ENV_DIR`: VM environment booted for the `host` environment (the default
 *   environment) @default `<stateDir>/environments/debian-bookworm-vm`.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type {
  CleanupContext,
  CleanupReport,
  DriverCapabilities,
  DriverFactory,
  DriverFactoryOptions,
  PersistedState,
  ProbeResult,
  RuntimeConfig,
  RuntimeDriver,
  RuntimeInstance,
} from "../../core/driver.js";
import { DriverUnavailableError, NotSupportedError } from "../../core/errors.js";
import { chooseAcceleration, choiceKey, probeBoot, type AccelerationChoice } from "./accel.js";
import { VM_ENVIRONMENT, artifactsIn, resolveArtifacts, type VmArtifacts } from "./artifacts.js";
import { MicrovmInstance, type MicrovmTools } from "./instance.js";
import { findExecutable, killProcess, processesMentioning } from "./processes.js";
import type { Acceleration } from "./qemu.js";

/**
 * virtio-serial ports per VM: how many Warren processes can talk to one VM at once (calls in
 * one process share a port). Each port costs the guest about 4 MB of kernel memory.
 */
const AGENT_PORTS = 4;

/** Settings read from the environment (see the module comment). */
export interface MicrovmSettings {
  qemu?: string;
  virtiofsd?: string;
  firecracker?: string;
  launcher?: "qemu" | "firecracker";
  acceleration?: Acceleration;
  envDir?: string;
}

/** Reads the WARREN_* settings of the microvm driver. */
export function microvmSettings(env: NodeJS.ProcessEnv = process.env): MicrovmSettings {
  const oneOf = <T extends string>(value: string | undefined, allowed: T[]): T | undefined =>
    allowed.includes(value as T) ? (value as T) : undefined;
  return {
    qemu: env.WARREN_QEMU || undefined,
    virtiofsd: env.WARREN_VIRTIOFSD || undefined,
    firecracker: env.WARREN_FIRECRACKER || undefined,
    launcher: oneOf(env.WARREN_MICROVM_LAUNCHER, ["qemu", "firecracker"]),
    acceleration: oneOf(env.WARREN_MICROVM_ACCEL, ["kvm", "tcg"]),
    envDir: env.WARREN_MICROVM_ENV_DIR || undefined,
  };
}

/** Driver for sandboxes that are virtual machines. */
export class MicrovmDriver implements RuntimeDriver {
  readonly name = "microvm";
  readonly capabilities: DriverCapabilities = {
    isolation: "vm",
    networkPolicies: ["none"],
    limits: { memory: true, pids: true, cpu: true },
    rootfsEnvironments: true,
    persistentInstances: true,
    posixShell: true,
  };
  private readonly dir: string;
  private readonly defaultEnvDir: string;
  private readonly settings: MicrovmSettings;
  private choice: Promise<AccelerationChoice> | null = null;

  constructor(private readonly options: DriverFactoryOptions & { maxOutputBytes?: number }) {
    this.dir = join(options.stateDir, "drivers", "microvm");
    this.settings = microvmSettings();
    this.defaultEnvDir = this.settings.envDir ?? join(options.stateDir, "environments", VM_ENVIRONMENT);
  }

  private tools(): { tools: MicrovmTools | null; missing: string | null } {
    const qemu = findExecutable(this.settings.qemu, ["qemu-system-x86_64"]);
    const qemuImg = findExecutable(undefined, ["qemu-img"]);
    const virtiofsd = findExecutable(this.settings.virtiofsd, [
      "/usr/lib/qemu/virtiofsd",
      "/usr/libexec/virtiofsd",
      "virtiofsd",
    ]);
    const firecracker = findExecutable(this.settings.firecracker, ["firecracker"]);
    const missing = !qemu ? "qemu-system-x86_64" : !qemuImg ? "qemu-img" : !virtiofsd ? "virtiofsd" : null;
    return {
      tools: missing ? null : { qemu: qemu!, qemuImg: qemuImg!, virtiofsd: virtiofsd!, firecracker },
      missing,
    };
  }

  /** Why the driver cannot run here, or null. Cheap: no VM is started. */
  private unusable(): { reason: string; hint: string } | null {
    if (process.platform !== "linux" || process.arch !== "x64")
      return { reason: "the microvm driver runs on x86_64 Linux hosts", hint: "use the bwrap driver" };
    const { missing } = this.tools();
    if (missing) {
      return {
        reason: `${missing} is not installed`,
        hint: "apt-get install qemu-system-x86 qemu-utils (Debian 12 ships virtiofsd in qemu-system-common)",
      };
    }
    if (process.getuid?.() !== 0)
      return { reason: "the microvm driver needs root (uid maps for virtiofsd)", hint: "run warren as root" };
    if (!artifactsIn(this.defaultEnvDir)) {
      return {
        reason: `the ${VM_ENVIRONMENT} environment is not installed`,
        hint: `build it with \`warren env pull ${VM_ENVIRONMENT}\` (about a minute), or set WARREN_MICROVM_ENV_DIR`,
      };
    }
    return null;
  }

  /** The acceleration to use (probed once per driver, cached per host boot in the driver dir). */
  private acceleration(artifacts: VmArtifacts): Promise<AccelerationChoice> {
    if (!this.choice) {
      const { tools } = this.tools();
      mkdirSync(this.dir, { recursive: true });
      this.choice = chooseAcceleration(
        tools!.qemu,
        artifacts.kernel,
        artifacts.initrd,
        join(this.dir, "acceleration.json"),
        this.settings.acceleration,
      ).catch((err) => {
        this.choice = null;
        throw err;
      });
    }
    return this.choice;
  }

  /** Firecracker when configured or found, KVM works and the environment has a vmlinux. */
  private launcher(tools: MicrovmTools, artifacts: VmArtifacts, accel: Acceleration): "qemu" | "firecracker" {
    if (this.settings.launcher === "qemu") return "qemu";
    const usable = tools.firecracker !== null && artifacts.vmlinux !== null && accel === "kvm";
    return usable ? "firecracker" : "qemu";
  }

  async probe(): Promise<ProbeResult> {
    const bad = this.unusable();
    if (bad) return { usable: false, reason: bad.reason, hint: bad.hint };
    const { tools } = this.tools();
    const artifacts = artifactsIn(this.defaultEnvDir)!;
    const details: Record<string, unknown> = { environment: artifacts.version, qemu: tools!.qemu };
    try {
      // The virtiofsd helper runs as an unprivileged uid in a user namespace of its own.
      execFileSync(
        "/usr/bin/setpriv",
        [
          `--reuid=${this.helperUid()}`,
          `--regid=${this.helperUid()}`,
          "--clear-groups",
          "/usr/bin/unshare",
          "--user",
          "/bin/true",
        ],
        { stdio: ["ignore", "ignore", "pipe"], timeout: 10000 },
      );
    } catch (err) {
      return {
        usable: false,
        reason: `cannot create an unprivileged user namespace for virtiofsd: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`,
        hint: "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)",
        details,
      };
    }
    const choice = await this.acceleration(artifacts);
    const launcher = this.launcher(tools!, artifacts, choice.acceleration);
    Object.assign(details, { acceleration: choice.acceleration, launcher, kvmProblem: choice.kvmProblem });
    if (choice.acceleration === "kvm") {
      return {
        usable: true,
        reason: `${launcher} microVMs with KVM (probe VM booted in ${choice.probeMs ?? "?"} ms)`,
        details,
      };
    }
    const boot = await this.cachedTcgProbe(tools!.qemu, artifacts);
    details.tcgProbeMs = boot.durationMs;
    if (!boot.ok) {
      return {
        usable: false,
        reason: `a probe VM does not boot under software emulation: ${boot.detail}`,
        hint: `rebuild the environment: warren env pull ${VM_ENVIRONMENT} --force`,
        details,
      };
    }
    return {
      usable: true,
      reason:
        `WARNING: no usable KVM (${choice.kvmProblem}); QEMU runs VMs in software emulation (TCG): ` +
        `a probe VM booted in ${boot.durationMs} ms, and commands run many times slower than on KVM`,
      hint: "for speed, run on a host whose /dev/kvm works (bare metal or a VM with nested virtualisation)",
      details,
    };
  }

  /** A TCG probe boot, cached like the acceleration choice. */
  private async cachedTcgProbe(
    qemu: string,
    a: VmArtifacts,
  ): Promise<{ ok: boolean; detail: string; durationMs: number }> {
    const file = join(this.dir, "tcg-probe.json");
    const key = choiceKey(qemu, a.kernel);
    try {
      const cached = JSON.parse(readFileSync(file, "utf8"));
      if (cached.key === key) return cached;
    } catch {
      /* not probed yet */
    }
    const boot = await probeBoot(qemu, a.kernel, a.initrd, "tcg", 60000);
    if (boot.ok) writeFileSync(file, JSON.stringify({ key, ...boot }));
    return boot;
  }

  private helperUid(): number {
    return this.options.sandboxUid + 1;
  }

  private async instance(
    id: string,
    config: RuntimeConfig,
    state: PersistedState | null,
  ): Promise<MicrovmInstance> {
    if (!this.capabilities.networkPolicies.includes(config.network)) {
      throw new NotSupportedError(
        `microvm sandboxes have no network device; policy "${config.network}" is not supported`,
      );
    }
    const { tools, missing } = this.tools();
    if (!tools && state === null) {
      throw new DriverUnavailableError(`microvm driver unavailable: ${missing} is not installed`, {
        hint: "apt-get install qemu-system-x86 qemu-utils",
      });
    }
    return new MicrovmInstance(
      id,
      config,
      {
        dir: join(this.dir, id),
        // Resolved only to start: a VM whose environment is gone can still be stopped and removed.
        artifacts: () => resolveArtifacts(config.environment, this.defaultEnvDir),
        tools: tools ?? { qemu: "", qemuImg: "", virtiofsd: "", firecracker: null },
        launcher: (accel, artifacts) => this.launcher(tools!, artifacts, accel),
        acceleration: (artifacts) => this.acceleration(artifacts),
        sandboxUid: this.options.sandboxUid,
        helperUid: this.helperUid(),
        ports: AGENT_PORTS,
        defaultMaxOutputBytes: this.options.maxOutputBytes ?? 1048576,
        tcgBootFloorMs: 30000,
      },
      state,
    );
  }

  async createInstance(id: string, config: RuntimeConfig): Promise<RuntimeInstance> {
    return this.instance(id, config, null);
  }

  async attach(id: string, config: RuntimeConfig, state: PersistedState): Promise<RuntimeInstance> {
    return this.instance(id, config, state);
  }

  /** Kills VMMs and virtiofsd processes of sandboxes nobody keeps, and removes their directories. */
  async cleanupStaleResources(context: CleanupContext): Promise<CleanupReport> {
    const removed: string[] = [];
    const prefix = `${this.dir}/`;
    for (const p of processesMentioning(prefix)) {
      const id = /^(sbx-[0-9a-f]+)\//.exec(p.cmdline.slice(p.cmdline.indexOf(prefix) + prefix.length))?.[1];
      if (!id || context.keepSandboxIds.has(id)) continue;
      await killProcess(p);
      removed.push(`process ${p.pid} of ${id} (${p.cmdline.split(" ")[0]})`);
    }
    if (existsSync(this.dir)) {
      for (const name of readdirSync(this.dir)) {
        if (!name.startsWith("sbx-") || context.keepSandboxIds.has(name)) continue;
        rmSync(join(this.dir, name), { recursive: true, force: true });
        removed.push(`directory of ${name}`);
      }
    }
    return { removed };
  }
}

/** Registers the microvm driver. */
export const microvmDriverFactory: DriverFactory = {
  name: "microvm",
  description: "a virtual machine per sandbox (QEMU microvm, KVM or software emulation; Firecracker)",
  requiresOptIn: false,
  create: (options) => new MicrovmDriver(options),
};
