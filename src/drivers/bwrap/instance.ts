/** One bwrap sandbox: a detached holder process, its cgroups, and commands run through nsenter. */
import { chownSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type {
  CallOptions,
  ExecOutcome,
  ExecSpec,
  PersistedState,
  RuntimeConfig,
  RuntimeInstance,
} from "../../core/driver.js";
import { InvalidStateError } from "../../core/errors.js";
import { isAlive, selfIdentity, type ProcessIdentity } from "../../core/proc.js";
import { runProcess } from "../../core/spawn.js";
import { JOIN_CGROUPS_SCRIPT, baseEnv, holderArgs, nsenterArgs } from "./args.js";
import type { Cgroups } from "./cgroups.js";
import { assertReachable, hostRootLinks, writeEtc } from "./etc.js";
import { spawnHolder, type HolderProcesses } from "./holder.js";

const HOST_PATH = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };

/** What a bwrap instance needs from its driver. */
export interface BwrapInstanceContext {
  cgroups: Cgroups;
  /** The driver's directory for this sandbox (generated /etc, holder log). */
  dir: string;
  sandboxUid: number;
  defaultMaxOutputBytes: number;
}

/** Child cgroup of processes started with `detach`: kept until the sandbox stops. */
export const BACKGROUND_CGROUP = "bg";

/** Name of the cgroup of one command: carries the owner so cleanup can tell orphans. */
export function execCgroupName(sequence: number | undefined, owner: ProcessIdentity): string {
  const seq = sequence ?? `r${Math.floor(Math.random() * 1e9)}`;
  return `x${seq}-${owner.pid}-${owner.startTime}`;
}

/** Owner of a command cgroup, parsed from its name; null for `holder` or foreign names. */
export function execCgroupOwner(name: string): ProcessIdentity | null {
  const m = /^x[^-]+-(\d+)-(\d+)$/.exec(name);
  return m ? { pid: Number(m[1]), startTime: Number(m[2]) } : null;
}

/** A sandbox run by bubblewrap. */
export class BwrapInstance implements RuntimeInstance {
  readonly driver = "bwrap";
  private holder: HolderProcesses | null;
  private readonly self = selfIdentity();

  constructor(
    readonly id: string,
    private readonly config: RuntimeConfig,
    private readonly ctx: BwrapInstanceContext,
    state: PersistedState | null,
  ) {
    this.holder = state && state.init ? (state as unknown as HolderProcesses) : null;
  }

  persistedState(): PersistedState {
    return this.holder ? { ...this.holder } : {};
  }

  private alive(): boolean {
    return this.holder !== null && isAlive(this.holder.init);
  }

  async start(): Promise<void> {
    if (this.alive()) return;
    const { cgroups, dir, sandboxUid } = this.ctx;
    const etcDir = join(dir, "etc");
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    writeEtc(etcDir, this.config.hostname);
    mkdirSync(this.config.workspaceDir, { recursive: true });
    chownSync(this.config.workspaceDir, sandboxUid, sandboxUid);
    for (const p of [this.config.workspaceDir, etcDir, this.config.environment.rootfsPath]) {
      if (p) assertReachable(p, sandboxUid);
    }
    // Start clean: a holder left from a crash would share the cgroup.
    await cgroups.killAll(this.id).catch(() => undefined);
    cgroups.removeSandbox(this.id);
    cgroups.createSandbox(this.id, this.config);
    try {
      this.holder = await spawnHolder({
        procsFiles: cgroups.procsFiles(this.id, "holder"),
        sandboxUid,
        bwrapArgs: holderArgs(this.config, etcDir, hostRootLinks()),
        logPath: join(dir, "holder.log"),
        healthTimeoutMs: this.config.healthTimeoutMs,
      });
    } catch (err) {
      await cgroups.killAll(this.id).catch(() => undefined);
      cgroups.removeSandbox(this.id);
      this.holder = null;
      const log = await this.logs().catch(() => "");
      if (err instanceof Error && log)
        err.message += `; bubblewrap said: ${log.trim().split("\n").slice(-3).join(" | ")}`;
      throw err;
    }
  }

  async exec(spec: ExecSpec, options: CallOptions = {}): Promise<ExecOutcome> {
    if (!this.alive()) {
      throw new InvalidStateError(`sandbox ${this.id} is not running (its holder process is gone)`, {
        hint: `start it with \`warren start ${this.id}\``,
      });
    }
    const { cgroups } = this.ctx;
    // Detached commands share the `bg` cgroup, which lives as long as the sandbox.
    const child = spec.detach ? BACKGROUND_CGROUP : execCgroupName(spec.sequence, this.self);
    cgroups.createChild(this.id, child);
    const env = { ...baseEnv(this.config.hostname), ...this.config.env, ...spec.env };
    try {
      return await runProcess({
        command: "/bin/sh",
        args: [
          "-c",
          JOIN_CGROUPS_SCRIPT,
          "warren-exec",
          ...cgroups.procsFiles(this.id, child),
          "--",
          ...nsenterArgs(this.holder!.init.pid, spec.cwd ?? "/workspace", env, spec.argv),
        ],
        env: HOST_PATH,
        stdin: spec.stdin,
        timeoutMs: spec.timeoutMs ?? options.timeoutMs,
        maxOutputBytes: spec.maxOutputBytes ?? this.ctx.defaultMaxOutputBytes,
        signal: options.signal,
        onStdout: spec.onStdout,
        onStderr: spec.onStderr,
        killTree: () => (spec.detach ? Promise.resolve() : cgroups.killAll(this.id, child)),
      });
    } finally {
      // A command's leftovers (`cmd &`) end with it; long-running work belongs in background processes.
      if (!spec.detach) {
        await cgroups.killAll(this.id, child).catch(() => undefined);
        cgroups.removeChild(this.id, child);
      }
    }
  }

  async isHealthy(): Promise<boolean> {
    return this.alive() && isAlive(this.holder!.bwrap);
  }

  async stop(options: CallOptions & { graceMs?: number } = {}): Promise<void> {
    const { cgroups } = this.ctx;
    const graceMs = options.graceMs ?? 2000;
    if (cgroups.signal(this.id, "SIGTERM") > 0 && graceMs > 0) {
      const deadline = Date.now() + graceMs;
      while (cgroups.pids(this.id).length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    await cgroups.killAll(this.id);
    cgroups.removeSandbox(this.id);
    this.holder = null;
  }

  async destroy(): Promise<void> {
    await this.stop({ graceMs: 0 });
    rmSync(this.ctx.dir, { recursive: true, force: true });
  }

  async logs(): Promise<string> {
    try {
      return readFileSync(join(this.ctx.dir, "holder.log"), "utf8");
    } catch {
      return "";
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
