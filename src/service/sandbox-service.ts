/**
 * The sandbox service: the one place that holds sandbox logic. Every front end calls it; it talks
 * to drivers only through the contract and the registry, and persists everything in the store.
 */
import { rmSync } from "node:fs";
import type { WarrenConfig } from "../core/config.js";
import type { ExecOutcome, ExecSpec, RuntimeConfig, RuntimeDriver, RuntimeInstance } from "../core/driver.js";
import { DriverUnavailableError, InvalidStateError, NotFoundError, toWarrenError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import {
  isSandboxId,
  validateArgv,
  validateEnv,
  validateSandboxPath,
  validateTimeoutMs,
} from "../core/names.js";
import { isAlive, selfIdentity } from "../core/proc.js";
import type { DriverRegistry } from "../core/registry.js";
import type { SandboxRecord, Store } from "../core/store/index.js";
import type { ExecResult, JournalEntry, Sandbox, SandboxState } from "../core/types.js";
import type { Environments } from "./environments.js";
import type { CreateOptions } from "./options.js";
import { WarmPool } from "./pool.js";
import { runtimeConfigOf } from "./pool-spec.js";

/** A command to run in a sandbox. */
export interface ExecOptions {
  argv: string[];
  /** @default "/workspace" */
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string | Uint8Array;
  /** Per-command timeout, separate from the sandbox's TTL. */
  timeoutMs?: number;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

/** Filters for `list`. */
export interface ListOptions {
  /** Include deleted sandboxes. @default false */
  all?: boolean;
  states?: SandboxState[];
  /** Every label given must match. */
  labels?: Record<string, string>;
}

/** What reap did to one sandbox. */
export interface ReapAction {
  sandboxId: string;
  name: string;
  action: "stopped" | "deleted";
}

/** What reconcile found and fixed. */
export interface ReconcileReport {
  lostCommands: Array<{ sandboxId: string; sequence: number }>;
  stoppedSandboxes: string[];
  failedCreations: string[];
  removedResources: string[];
}

/** What the service needs. */
export interface SandboxServiceDeps {
  config: Readonly<WarrenConfig>;
  store: Store;
  registry: DriverRegistry;
  environments: Environments;
  log: Logger;
}

const stripInternal = (r: SandboxRecord): Sandbox => {
  const { driverState: _d, owner: _o, ...rest } = r;
  return rest;
};

/** Orchestrates sandboxes over drivers and the store. */
export class SandboxService {
  private readonly self = selfIdentity();
  /** Called (inside the sandbox's lock) before a running sandbox is stopped or deleted. */
  readonly beforeStop: Array<(sandbox: Sandbox) => Promise<void>> = [];
  /** The warm pool every creation goes through. */
  readonly pool: WarmPool;
  constructor(private readonly deps: SandboxServiceDeps) {
    this.pool = new WarmPool({
      ...deps,
      host: { delete: (id) => this.delete(id), beforeStop: this.beforeStop },
    });
  }

  /** Runs the beforeStop hooks (errors are logged: a stop must not fail because of them). */
  private async stopping(rec: SandboxRecord): Promise<void> {
    if (rec.state !== "running") return;
    for (const hook of this.beforeStop) {
      await hook(stripInternal(rec)).catch((err) =>
        this.deps.log.warn("before-stop hook failed", { sandboxId: rec.id, error: String(err) }),
      );
    }
  }

  /**
   * Runs a command for the service itself (files, background processes): not journaled, and the
   * sandbox must be running.
   * @throws NotFoundError, InvalidStateError
   */
  async execInternal(ref: string, spec: ExecSpec): Promise<{ sandbox: Sandbox; outcome: ExecOutcome }> {
    const rec = this.find(ref);
    this.assertRunning(rec);
    const outcome = await (await this.instanceOf(rec)).exec(spec);
    return { sandbox: stripInternal(rec), outcome };
  }

  /** @throws InvalidStateError when the sandbox is not running */
  private assertRunning(rec: SandboxRecord): void {
    if (rec.state !== "running") {
      throw new InvalidStateError(`sandbox ${rec.name} is ${rec.state}, not running`, {
        hint: rec.state === "stopped" ? `start it with \`warren start ${rec.name}\`` : "create a new sandbox",
        details: { sandboxId: rec.id, state: rec.state },
      });
    }
  }

  /** The store's sandbox record for an id or a name. @throws NotFoundError */
  private find(ref: string): SandboxRecord {
    const { sandboxes } = this.deps.store;
    const rec = (isSandboxId(ref) ? sandboxes.get(ref) : null) ?? sandboxes.getByName(ref);
    if (!rec) {
      throw new NotFoundError(`no sandbox "${ref}"`, {
        hint: "list sandboxes with `warren ls --all`",
        details: { sandbox: ref },
      });
    }
    return rec;
  }

  private driverOf(name: string): RuntimeDriver {
    return this.deps.registry.get(name);
  }

  private runtimeConfig(rec: SandboxRecord, healthTimeoutMs = 10000): RuntimeConfig {
    return runtimeConfigOf(rec, this.deps.environments, healthTimeoutMs);
  }

  private instanceOf(rec: SandboxRecord): Promise<RuntimeInstance> {
    return this.driverOf(rec.driver).attach(rec.id, this.runtimeConfig(rec), rec.driverState ?? {});
  }

  private lock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.deps.store.locks.with(`sandbox:${id}`, fn);
  }

  /**
   * Creates and starts a sandbox, through the warm pool (pool.ts): a started instance of the same
   * spec when one is ready, else a new one — one path either way.
   * @throws InvalidArgumentError, NotFoundError (driver/environment), DriverUnavailableError,
   *   NotSupportedError, AlreadyExistsError, LimitExceededError; a failed start leaves the
   *   sandbox `failed` with `lastError` and throws the cause.
   */
  async create(options: CreateOptions = {}): Promise<Sandbox> {
    return stripInternal(await this.pool.checkout(options));
  }

  /** Starts a stopped (or failed) sandbox again; a running one is left as it is. */
  async start(ref: string): Promise<Sandbox> {
    const id = this.find(ref).id;
    return this.lock(id, async () => {
      const rec = this.deps.store.sandboxes.get(id)!;
      if (rec.state === "running") return stripInternal(rec);
      if (rec.state === "deleted" || rec.state === "creating") {
        throw new InvalidStateError(`sandbox ${rec.name} is ${rec.state} and cannot be started`, {
          hint:
            rec.state === "deleted"
              ? "create a new sandbox with `warren create`"
              : "wait for its creation to finish",
        });
      }
      const instance = await this.instanceOf(rec);
      try {
        await instance.start();
      } catch (err) {
        const e = toWarrenError(err);
        this.deps.store.sandboxes.update(id, { state: "failed", lastError: e.message });
        throw e;
      }
      const started = Date.now();
      return stripInternal(
        this.deps.store.sandboxes.update(id, {
          state: "running",
          driverState: instance.persistedState(),
          startedAt: started,
          expiresAt: started + rec.ttlSeconds * 1000,
          lastError: null,
        })!,
      );
    });
  }

  /** Stops a running sandbox; the workspace is kept. A stopped one is left as it is. */
  async stop(ref: string, reason: string | null = null): Promise<Sandbox> {
    const id = this.find(ref).id;
    return this.lock(id, async () => {
      const rec = this.deps.store.sandboxes.get(id)!;
      if (rec.state === "stopped") return stripInternal(rec);
      if (rec.state !== "running" && rec.state !== "failed") {
        throw new InvalidStateError(`sandbox ${rec.name} is ${rec.state} and cannot be stopped`);
      }
      await this.stopping(rec);
      await (await this.instanceOf(rec)).stop();
      this.deps.store.journal.loseProcesses(id, "the sandbox was stopped");
      return stripInternal(
        this.deps.store.sandboxes.update(id, {
          state: "stopped",
          driverState: {},
          expiresAt: null,
          lastError: reason ?? rec.lastError,
        })!,
      );
    });
  }

  /** Deletes a sandbox and its workspace. Deleting a deleted sandbox changes nothing. */
  async delete(ref: string): Promise<Sandbox> {
    const id = this.find(ref).id;
    return this.lock(id, async () => {
      const rec = this.deps.store.sandboxes.get(id)!;
      if (rec.state === "deleted") return stripInternal(rec);
      await this.stopping(rec);
      const driver = this.driverOf(rec.driver);
      let instance: RuntimeInstance;
      try {
        instance = await this.instanceOf(rec);
      } catch {
        // The environment may be gone; destroy with the host view so resources still go.
        instance = await driver.attach(
          rec.id,
          { ...this.runtimeConfig({ ...rec, environment: "host" }) },
          rec.driverState ?? {},
        );
      }
      await instance.destroy();
      rmSync(rec.workspaceDir, { recursive: true, force: true });
      this.deps.store.journal.loseProcesses(id, "the sandbox was deleted");
      return stripInternal(
        this.deps.store.sandboxes.update(id, { state: "deleted", driverState: null, expiresAt: null })!,
      );
    });
  }

  /** One sandbox by id or name. @throws NotFoundError */
  status(ref: string): Sandbox {
    return stripInternal(this.find(ref));
  }

  /** Sandboxes, newest first. */
  list(options: ListOptions = {}): Sandbox[] {
    const states =
      options.states ??
      (options.all ? undefined : (["creating", "running", "stopped", "failed"] as SandboxState[]));
    const wanted = Object.entries(options.labels ?? {});
    return this.deps.store.sandboxes
      .list(states)
      .filter((s) => wanted.every(([k, v]) => s.labels[k] === v))
      .map(stripInternal);
  }

  /**
   * Runs a command in a running sandbox and journals it. A non-zero exit is a result.
   * @throws NotFoundError, InvalidStateError (not running), InvalidArgumentError
   */
  async exec(ref: string, o: ExecOptions): Promise<ExecResult> {
    const argv = validateArgv(o.argv);
    const cwd = validateSandboxPath(o.cwd ?? "/workspace", "cwd");
    const env = validateEnv(o.env ?? {});
    const timeoutMs = validateTimeoutMs(o.timeoutMs);
    const rec = this.find(ref);
    this.assertRunning(rec);
    const instance = await this.instanceOf(rec);
    const { journal } = this.deps.store;
    const sequence = journal.begin(rec.id, argv, cwd, this.self);
    try {
      const out = await instance.exec(
        {
          argv,
          cwd,
          env,
          stdin: o.stdin,
          timeoutMs,
          sequence,
          maxOutputBytes: this.deps.config.maxOutputBytes,
          onStdout: o.onStdout,
          onStderr: o.onStderr,
        },
        { signal: o.signal },
      );
      journal.complete(rec.id, sequence, {
        status: out.timedOut ? "timed_out" : "completed",
        exitCode: out.exitCode,
        stdout: out.stdout,
        stderr: out.stderr,
        truncated: out.truncated,
        timedOut: out.timedOut,
        durationMs: Math.round(out.durationMs),
      });
      return {
        sandboxId: rec.id,
        sequence,
        exitCode: out.exitCode,
        stdout: out.stdout.toString("utf8"),
        stderr: out.stderr.toString("utf8"),
        durationMs: out.durationMs,
        timedOut: out.timedOut,
        truncated: out.truncated,
        isolation: rec.isolation,
      };
    } catch (err) {
      const e = toWarrenError(err);
      journal.fail(rec.id, sequence, e.message);
      // The driver went away mid-call (an out-of-process driver crashed): the instance's fate is unknown.
      if (e instanceof DriverUnavailableError)
        this.deps.store.sandboxes.update(rec.id, { state: "failed", lastError: e.message });
      throw e;
    }
  }

  /** Journal entries of a sandbox (deleted sandboxes keep theirs). */
  journal(ref: string, options: { sinceSequence?: number; limit?: number } = {}): JournalEntry[] {
    return this.deps.store.journal.list(this.find(ref).id, options);
  }

  /** The driver's own log of a sandbox (holder output), not command output. */
  async driverLog(ref: string): Promise<string> {
    const rec = this.find(ref);
    if (rec.state === "deleted") return "";
    return (await this.instanceOf(rec)).logs();
  }

  /** One-shot: create, run one command, delete — the sandbox is removed whatever happens. */
  async run(create: CreateOptions, exec: ExecOptions): Promise<ExecResult> {
    validateArgv(exec.argv);
    const sandbox = await this.create(create);
    try {
      return await this.exec(sandbox.id, exec);
    } finally {
      await this.delete(sandbox.id).catch((err) =>
        this.deps.log.error("could not delete one-shot sandbox", {
          sandboxId: sandbox.id,
          error: String(err),
        }),
      );
    }
  }

  /** Stops or deletes every running sandbox past its TTL, per its `onTimeout`. */
  async reap(now = Date.now()): Promise<ReapAction[]> {
    const actions: ReapAction[] = [];
    for (const s of this.deps.store.sandboxes.list(["running"])) {
      if (s.expiresAt === null || Date.parse(s.expiresAt) > now) continue;
      try {
        if (s.onTimeout === "delete") await this.delete(s.id);
        else await this.stop(s.id, `TTL of ${s.ttlSeconds} s ran out`);
        actions.push({
          sandboxId: s.id,
          name: s.name,
          action: s.onTimeout === "delete" ? "deleted" : "stopped",
        });
      } catch (err) {
        this.deps.log.warn("reap failed", { sandboxId: s.id, error: String(err) });
      }
    }
    return actions;
  }

  /**
   * Brings the store in line with reality after a crash: journal entries of dead processes become
   * `lost`, sandboxes whose instance died become `stopped` (with `lastError`), creations abandoned
   * by a dead process become `failed`, and each driver removes resources nobody owns.
   */
  async reconcile(): Promise<ReconcileReport> {
    const { store, registry, log } = this.deps;
    const report: ReconcileReport = {
      lostCommands: store.journal.markLost(),
      stoppedSandboxes: [],
      failedCreations: [],
      removedResources: [],
    };
    const keep = new Map<string, Set<string>>();
    const keepFor = (driver: string): Set<string> =>
      keep.get(driver) ?? keep.set(driver, new Set()).get(driver)!;
    for (const s of store.sandboxes.list(["creating", "running"])) {
      if (!registry.has(s.driver)) continue;
      if (s.state === "creating") {
        if (s.owner && isAlive(s.owner)) keepFor(s.driver).add(s.id);
        else {
          store.sandboxes.update(s.id, {
            state: "failed",
            lastError: "the process creating this sandbox died",
            owner: null,
          });
          rmSync(s.workspaceDir, { recursive: true, force: true });
          report.failedCreations.push(s.id);
        }
        continue;
      }
      let healthy = false;
      try {
        healthy = await (await this.instanceOf(s)).isHealthy();
      } catch {
        healthy = false;
      }
      if (healthy) keepFor(s.driver).add(s.id);
      else {
        const cur = store.sandboxes.get(s.id)!;
        if (cur.state === "running") {
          store.sandboxes.update(s.id, {
            state: "stopped",
            driverState: {},
            expiresAt: null,
            lastError: "the sandbox's processes died (host reboot or crash)",
          });
          store.journal.loseProcesses(s.id, "the sandbox's processes died (host reboot or crash)");
          report.stoppedSandboxes.push(s.id);
        }
      }
    }
    // Pooled instances are kept (dead ones go), with sandboxes that went live meanwhile.
    const pooled = await this.pool.reconcile();
    report.removedResources.push(...pooled.removed);
    for (const [driver, ids] of pooled.keep) for (const id of ids) keepFor(driver).add(id);
    // Every driver keeps every live sandbox: drivers may share resources (bwrap in-process and
    // out-of-process use one cgroup scope), and sandbox ids are unique across drivers.
    const keepAll = new Set([...keep.values()].flatMap((ids) => [...ids]));
    for (const factory of registry.factoriesList()) {
      try {
        const r = await registry.get(factory.name).cleanupStaleResources({ keepSandboxIds: keepAll });
        report.removedResources.push(...r.removed);
      } catch (err) {
        log.debug("cleanup skipped", { driver: factory.name, error: String(err) });
      }
    }
    if (report.lostCommands.length || report.stoppedSandboxes.length || report.removedResources.length) {
      log.info("reconciled", { ...report });
    }
    return report;
  }
}
