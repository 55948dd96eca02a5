/**
 * The warm pool: every sandbox creation goes through `checkout`. It takes a started, never-used
 * instance of the same spec (driver, environment, resources, network) from the pool when there is
 * one (a hit: the sandbox takes the instance's id, its name, labels, env and TTL are applied), and
 * otherwise starts one (a miss: a plain create). With no prewarm configured every create is a
 * miss, on the same path.
 *
 * Pooled instances live in the store (pool table), so a short-lived CLI process can check out an
 * instance that `warren serve` prewarmed; the keeper (pool-keeper.ts) refills and sweeps in the
 * process that runs the pool. What a pooled sandbox gets that a cold one does not: its kernel
 * hostname and /etc/hostname are its id, not its name (`$HOSTNAME` is its name), until it is
 * restarted.
 *
 * A used instance is never handed to another sandbox by default: `release` deletes it. Only
 * `checkin` — for a run of an agent whose package says `reuse: true` — puts a still-clean one back,
 * reserved for that agent's later runs (a create labelled `warren.agent=<name>`); it keeps its id,
 * its /tmp and its journal, and its /workspace is emptied.
 */
import { mkdirSync, rmSync } from "node:fs";
import type { RuntimeInstance } from "../core/driver.js";
import { LimitExceededError, toWarrenError } from "../core/errors.js";
import { newSandboxId } from "../core/names.js";
import { isAlive } from "../core/proc.js";
import type { PooledRecord, SandboxRecord } from "../core/store/index.js";
import type { Sandbox } from "../core/types.js";
import { AGENT_LABEL } from "./agents-run.js";
import type { CreateOptions } from "./options.js";
import { SELF, discardPooled, emptyWorkspace, pooledHealthy, workspaceOf } from "./pool-instances.js";
import type { PoolContext } from "./pool-instances.js";
import { PoolKeeper, keptHere, type KeeperTiming } from "./pool-keeper.js";
import { parseSpecKey, resolveSpec, runtimeConfigOf, specKey, type ResolvedSpec } from "./pool-spec.js";
import { poolStats, type PoolStats } from "./pool-stats.js";

export type { PoolStats, PoolKeyStats } from "./pool-stats.js";
export { parsePrewarm, parseSpecKey, specKey, type PoolSpec } from "./pool-spec.js";

/** What the pool calls back into the sandbox service for. */
export interface PoolHost {
  /** Deletes a sandbox (a used instance's end). */
  delete(sandboxId: string): Promise<unknown>;
  /** Hooks run before a sandbox leaves its running state (settle background processes). */
  readonly beforeStop: ReadonlyArray<(sandbox: Sandbox) => Promise<void>>;
}

/** How a caller gives a used sandbox back. */
export interface ReleaseOptions {
  /** The caller allows reuse (an agent whose package says `reuse: true`, after a good run). */
  reusable: boolean;
  /** The agent whose later runs may take it. */
  agent: string;
}

/** What the pool needs. */
export interface WarmPoolDeps extends PoolContext {
  host: PoolHost;
  /** Keeper timing (tests shorten it). */
  timing?: Partial<KeeperTiming>;
}

/** How long after a hit the keeper refills. */
const REFILL_DELAY_MS = 100;

const strip = (r: SandboxRecord): Sandbox => {
  const { driverState: _d, owner: _o, ...rest } = r;
  return rest;
};

/** The warm pool of one state directory, seen from this process. */
export class WarmPool {
  private readonly keeper: PoolKeeper;

  constructor(private readonly deps: WarmPoolDeps) {
    this.keeper = new PoolKeeper(deps, {
      tickMs: 500,
      healthIntervalMs: 5000,
      concurrency: 4,
      ...deps.timing,
    });
  }

  /**
   * Creates a running sandbox: from the pool when an instance of its spec is ready, else started
   * now. A pooled instance found dead is counted as invalidated and replaced by a new start under
   * the same id.
   * @throws InvalidArgumentError, NotFoundError (driver/environment), DriverUnavailableError,
   *   NotSupportedError, AlreadyExistsError, LimitExceededError; a failed start leaves the
   *   sandbox `failed` with `lastError` and throws the cause.
   */
  async checkout(options: CreateOptions = {}): Promise<SandboxRecord> {
    const { store, environments, log } = this.deps;
    const r = resolveSpec(options, this.deps);
    const { rec, pooled } = this.claim(r);
    log.debug("sandbox creating", { sandboxId: rec.id, driver: rec.driver, pooled: pooled !== null });
    const { healthTimeoutMs } = r.options;
    const config = runtimeConfigOf(rec, environments, healthTimeoutMs);
    let instance: RuntimeInstance | null = null;
    try {
      if (pooled) {
        instance = await r.driver.attach(rec.id, config, pooled.driverState ?? {});
        if (!(await instance.isHealthy().catch(() => false))) {
          store.pool.bump(r.key, "invalidated");
          log.warn("pool: a pooled instance was dead; starting a new one in its place", {
            sandboxId: rec.id,
          });
          await instance.destroy().catch(() => undefined);
          emptyWorkspace(rec.workspaceDir);
          instance = null;
        }
        // Refill once the caller's first command is likely done, not competing with it.
        this.keeper.wake(REFILL_DELAY_MS);
      }
      if (!instance) {
        mkdirSync(rec.workspaceDir, { recursive: true, mode: 0o755 });
        instance = await r.driver.createInstance(rec.id, config);
        await instance.start({ timeoutMs: healthTimeoutMs });
      }
      const started = Date.now();
      const updated = store.sandboxes.update(rec.id, {
        state: "running",
        driverState: instance.persistedState(),
        startedAt: started,
        expiresAt: started + rec.ttlSeconds * 1000,
        owner: null,
      })!;
      log.info("sandbox running", { sandboxId: rec.id, driver: rec.driver, pooled: pooled !== null });
      return updated;
    } catch (err) {
      const e = toWarrenError(err);
      await instance?.destroy().catch(() => undefined);
      rmSync(rec.workspaceDir, { recursive: true, force: true });
      store.sandboxes.update(rec.id, { state: "failed", lastError: e.message, owner: null });
      log.warn("sandbox failed to start", { sandboxId: rec.id, driver: rec.driver, error: e.message });
      throw e;
    }
  }

  /**
   * In one transaction: checks the active-sandbox limit, takes a pooled instance (one this
   * agent checked in, else a fresh one) and writes the sandbox's row as `creating`.
   */
  private claim(r: ResolvedSpec): { rec: SandboxRecord; pooled: PooledRecord | null } {
    const { store, config } = this.deps;
    const o = r.options;
    return store.transaction(() => {
      const active = store.sandboxes.countActive();
      if (active >= config.maxActiveSandboxes) {
        throw new LimitExceededError(
          `${active} sandboxes are active, the most allowed is ${config.maxActiveSandboxes}`,
          { hint: "stop or remove sandboxes (`warren ls`), or raise WARREN_MAX_SANDBOXES" },
        );
      }
      const pooled = store.pool.claim(r.key, o.labels[AGENT_LABEL] ?? null, SELF);
      const id = pooled?.id ?? newSandboxId();
      const name = o.name ?? id;
      if (pooled?.affinity) {
        const fields = {
          name,
          labels: o.labels,
          env: o.env,
          ttlSeconds: o.ttlSeconds,
          onTimeout: o.onTimeout,
        };
        store.pool.reviveSandbox(id, fields, SELF);
        store.pool.bump(r.key, "reused");
      } else {
        const now = new Date().toISOString();
        store.sandboxes.insert(
          {
            id,
            name,
            driver: r.spec.driver,
            environment: r.spec.environment,
            state: "creating",
            isolation: r.driver.capabilities.isolation,
            resources: r.spec.resources,
            network: r.spec.network,
            labels: o.labels,
            env: o.env,
            ttlSeconds: o.ttlSeconds,
            onTimeout: o.onTimeout,
            workspaceDir: pooled?.workspaceDir ?? workspaceOf(this.deps, id),
            createdAt: now,
            updatedAt: now,
            startedAt: null,
            expiresAt: null,
            lastError: null,
          },
          SELF,
        );
      }
      store.pool.bump(r.key, pooled ? "hits" : "misses");
      return { rec: store.sandboxes.get(id)!, pooled };
    });
  }

  /**
   * Puts a used sandbox's instance back, reserved for `agent`'s later runs, if it is still clean:
   * running and healthy, nothing running in it (commands, background processes), and the pool
   * has room. Its /workspace is emptied and its sandbox row becomes `deleted` (journal kept).
   * Call it only when reuse is allowed (an agent package with `reuse: true`).
   * @returns whether it went back to the pool (if not, the caller deletes the sandbox)
   */
  async checkin(sandboxId: string, o: { agent: string }): Promise<boolean> {
    const { store, registry, environments, config } = this.deps;
    return store.locks.with(`sandbox:${sandboxId}`, async () => {
      const rec = store.sandboxes.get(sandboxId);
      if (!rec || rec.state !== "running" || rec.lastError || !registry.has(rec.driver)) return false;
      if (store.pool.list().length >= config.pool.maxInstances) return false;
      const driver = registry.get(rec.driver);
      const instance = await driver.attach(rec.id, runtimeConfigOf(rec, environments), rec.driverState ?? {});
      if (!(await instance.isHealthy().catch(() => false))) return false;
      for (const hook of this.deps.host.beforeStop) await hook(strip(rec)).catch(() => undefined);
      if (store.journal.list(rec.id).some((e) => e.status === "running")) return false;
      emptyWorkspace(rec.workspaceDir);
      const spec = {
        driver: rec.driver,
        environment: rec.environment,
        resources: rec.resources,
        network: rec.network,
      };
      store.transaction(() => {
        store.sandboxes.update(rec.id, { state: "deleted", driverState: null, expiresAt: null });
        store.pool.insert({
          id: rec.id,
          specKey: specKey(spec),
          spec,
          workspaceDir: rec.workspaceDir,
          state: "ready",
          driverState: instance.persistedState(),
          owner: SELF,
          localOnly: !driver.capabilities.persistentInstances,
          affinity: o.agent,
        });
      });
      this.deps.log.info("pool: sandbox checked in for reuse", { sandboxId, agent: o.agent });
      return true;
    });
  }

  /**
   * Gives a used sandbox back: checked in when `reusable` and still clean, else deleted. This is
   * what agent runs call when they end.
   * @returns what became of it
   */
  async release(sandboxId: string, o: ReleaseOptions): Promise<"pooled" | "deleted"> {
    if (o.reusable) {
      const pooled = await this.checkin(sandboxId, { agent: o.agent }).catch((err) => {
        this.deps.log.warn("pool: checkin failed; deleting", { sandboxId, error: String(err) });
        return false;
      });
      if (pooled) return "pooled";
    }
    await this.deps.host.delete(sandboxId);
    return "deleted";
  }

  /**
   * Starts keeping the pool in this process: prewarm counts from the config, overridden per key
   * by `prewarm` (keys as in the config; see parseSpecKey).
   * @throws InvalidArgumentError, NotFoundError and the errors a create of a key's spec would throw
   */
  start(prewarm: Record<string, number> = {}): void {
    this.keeper.start(prewarm);
  }

  /** Stops keeping the pool; resolves when in-flight refills are done. Instances stay. */
  stop(): Promise<void> {
    return this.keeper.stop();
  }

  /** One keeper round now (adopt, health, sweep, refill), at `now` for idle ages. */
  tick(now = Date.now()): Promise<void> {
    return this.keeper.tick(now);
  }

  /**
   * Stops keeping the pool and destroys every instance this process keeps (and those nobody
   * keeps). `warren serve` does this when it shuts down.
   * @returns how many were destroyed
   */
  async drain(): Promise<number> {
    await this.keeper.stop();
    let n = 0;
    for (const p of this.deps.store.pool.list()) {
      if (keptHere(p) && (await discardPooled(this.deps, p, "drained"))) n++;
    }
    return n;
  }

  /** Pool figures for doctor and `GET /v1/pool`. */
  stats(): PoolStats {
    const { store, config } = this.deps;
    const targets = new Map<string, number>();
    if (this.keeper.running) for (const [k, t] of this.keeper.targets) targets.set(k, t.count);
    else {
      for (const [key, count] of Object.entries(config.pool.prewarm)) {
        try {
          targets.set(resolveSpec(parseSpecKey(key), this.deps).key, count);
        } catch {
          targets.set(key, count);
        }
      }
    }
    return poolStats({
      keeper: this.keeper.running,
      maxInstances: config.pool.maxInstances,
      idleTimeoutSeconds: config.pool.idleTimeoutSeconds,
      targets,
      rows: store.pool.list(),
      counters: store.pool.counters(),
    });
  }

  /**
   * After a crash: destroys pooled instances whose start was cut off, that died, that lived only
   * in a process now gone, or that nobody keeps and sat idle past the timeout.
   * @returns what was removed, and per driver the ids whose resources must be kept (pooled
   *   instances and live sandboxes, read in one snapshot)
   */
  async reconcile(now = Date.now()): Promise<{ removed: string[]; keep: Map<string, Set<string>> }> {
    const { store, registry, config } = this.deps;
    const removed: string[] = [];
    for (const p of store.pool.list()) {
      const kept = p.owner !== null && isAlive(p.owner);
      let why: string | null = null;
      if (p.state === "warming") why = kept ? null : "its start was cut off";
      else if (p.localOnly) why = kept ? null : "its process is gone";
      else if (!registry.has(p.spec.driver)) why = null;
      else if (!(await pooledHealthy(this.deps, p))) why = "it died";
      else if (!kept && now - p.idleSince >= config.pool.idleTimeoutSeconds * 1000)
        why = "idle, kept by nobody";
      if (!why) continue;
      if (p.localOnly && !kept) {
        if (store.pool.remove(p.id)) rmSync(p.workspaceDir, { recursive: true, force: true });
      } else if (await discardPooled(this.deps, p, why)) {
        if (why === "it died") store.pool.bump(p.specKey, "invalidated");
      } else continue;
      removed.push(`pooled instance ${p.id} (${why})`);
    }
    return { removed, keep: store.pool.liveIds() };
  }
}
