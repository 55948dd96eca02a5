/** The bwrap driver: Linux namespaces through bubblewrap, limits through cgroups (v1 or v2). */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
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
import { isAlive } from "../../core/proc.js";
import { Cgroups, detectCgroups } from "./cgroups.js";
import { BwrapInstance, execCgroupOwner } from "./instance.js";

/** The cgroup directory level of one state directory (a short hash of its path). */
export function cgroupScope(stateDir: string): string {
  return createHash("sha256").update(stateDir).digest("hex").slice(0, 12);
}

const TOOLS = ["/usr/bin/bwrap", "/usr/bin/nsenter", "/usr/bin/setpriv"];

/** Driver for sandboxes made of namespaces (bubblewrap) and cgroups. */
export class BwrapDriver implements RuntimeDriver {
  readonly name = "bwrap";
  readonly capabilities: DriverCapabilities = {
    isolation: "namespace",
    networkPolicies: ["none", "host"],
    limits: { memory: true, pids: true, cpu: true },
    rootfsEnvironments: true,
    persistentInstances: true,
    posixShell: true,
  };
  private cgroups: Cgroups | null = null;
  private readonly dir: string;

  constructor(private readonly options: DriverFactoryOptions & { maxOutputBytes?: number }) {
    this.dir = join(options.stateDir, "drivers", "bwrap");
  }

  /** Why the driver cannot run here, or null. Cheap: no process is started. */
  private unusable(): { reason: string; hint: string } | null {
    for (const tool of TOOLS) {
      if (!existsSync(tool)) {
        return {
          reason: `${tool} is missing`,
          hint: "install it: apt-get install bubblewrap util-linux (or run `make demo`)",
        };
      }
    }
    if (process.getuid?.() !== 0) {
      return {
        reason: "the bwrap driver needs root to manage cgroups and enter namespaces",
        hint: "run warren as root, or use --driver host --allow-host for no isolation",
      };
    }
    const layout = detectCgroups();
    if (!layout) {
      return {
        reason: "no cgroup v1 (memory, pids, cpu) or v2 hierarchy is mounted",
        hint: "mount cgroupfs at /sys/fs/cgroup",
      };
    }
    try {
      for (const r of layout.roots) accessSync(r, constants.W_OK);
    } catch {
      return {
        reason: "cgroup hierarchy is not writable",
        hint: "run warren as root on the host (not in an unprivileged container)",
      };
    }
    return null;
  }

  private cg(): Cgroups {
    if (!this.cgroups) {
      const bad = this.unusable();
      if (bad)
        throw new DriverUnavailableError(`bwrap driver unavailable: ${bad.reason}`, { hint: bad.hint });
      this.cgroups = new Cgroups(detectCgroups()!, cgroupScope(this.options.stateDir));
    }
    return this.cgroups;
  }

  async probe(): Promise<ProbeResult> {
    const bad = this.unusable();
    if (bad) return { usable: false, reason: bad.reason, hint: bad.hint };
    const layout = detectCgroups()!;
    const details: Record<string, unknown> = { cgroups: layout.mode };
    try {
      details.bwrapVersion = execFileSync("/usr/bin/bwrap", ["--version"], { encoding: "utf8" }).trim();
      // A real user-namespace sandbox as the unprivileged sandbox uid, as every sandbox will run.
      execFileSync(
        "/usr/bin/setpriv",
        [
          `--reuid=${this.options.sandboxUid}`,
          `--regid=${this.options.sandboxUid}`,
          "--clear-groups",
          "/usr/bin/bwrap",
          "--unshare-all",
          "--ro-bind",
          "/",
          "/",
          "--",
          "/bin/true",
        ],
        { stdio: ["ignore", "ignore", "pipe"], timeout: 10000 },
      );
    } catch (err) {
      const stderr = String((err as { stderr?: Buffer }).stderr ?? err).trim();
      return {
        usable: false,
        reason: `bubblewrap cannot create an unprivileged user namespace: ${stderr}`,
        hint: "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0)",
        details,
      };
    }
    return { usable: true, reason: `bubblewrap works; cgroups ${layout.mode}`, details };
  }

  private instance(id: string, config: RuntimeConfig, state: PersistedState | null): BwrapInstance {
    if (!this.capabilities.networkPolicies.includes(config.network)) {
      throw new NotSupportedError(`bwrap does not support network policy "${config.network}"`);
    }
    return new BwrapInstance(
      id,
      config,
      {
        cgroups: this.cg(),
        dir: join(this.dir, id),
        sandboxUid: this.options.sandboxUid,
        defaultMaxOutputBytes: this.options.maxOutputBytes ?? 1048576,
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

  async cleanupStaleResources(context: CleanupContext): Promise<CleanupReport> {
    const removed: string[] = [];
    if (this.unusable()) return { removed };
    const cg = this.cg();
    for (const id of cg.sandboxIds()) {
      if (!context.keepSandboxIds.has(id)) {
        await cg.killAll(id).catch(() => undefined);
        cg.removeSandbox(id);
        removed.push(`cgroup and processes of ${id}`);
        continue;
      }
      for (const child of cg.children(id)) {
        const owner = execCgroupOwner(child);
        if (owner && !isAlive(owner)) {
          await cg.killAll(id, child).catch(() => undefined);
          cg.removeChild(id, child);
          removed.push(`orphaned command ${child} of ${id}`);
        }
      }
    }
    if (existsSync(this.dir)) {
      for (const id of readdirSync(this.dir)) {
        if (!context.keepSandboxIds.has(id)) {
          rmSync(join(this.dir, id), { recursive: true, force: true });
        }
      }
    }
    mkdirSync(this.dir, { recursive: true });
    return { removed };
  }
}

/** Registers the bwrap driver. */
export const bwrapDriverFactory: DriverFactory = {
  name: "bwrap",
  description: "Linux namespaces (bubblewrap) + cgroups; the default",
  requiresOptIn: false,
  create: (options) => new BwrapDriver(options),
};
