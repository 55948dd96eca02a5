/**
 * The pool's keeper: in a process that runs the pool (`warren serve`, or `pool.start()`), a timer
 * that keeps each spec key at its prewarm count (refills run in the background, a few at a time),
 * destroys instances beyond it once idle for `idleTimeoutSeconds`, checks pooled instances'
 * health and replaces dead ones, and adopts instances whose keeper died. It never lets the pool
 * hold more than `maxInstances`.
 */
import { rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { toWarrenError } from "../core/errors.js";
import { newSandboxId } from "../core/names.js";
import { isAlive } from "../core/proc.js";
import type { PooledRecord } from "../core/store/index.js";
import {
  SELF,
  discardPooled,
  pooledConfig,
  pooledHealthy,
  startInstance,
  workspaceOf,
  type PoolContext,
} from "./pool-instances.js";
import { parseSpecKey, resolveSpec, type ResolvedSpec } from "./pool-spec.js";

/** Timing of the keeper; tests shorten it. */
export interface KeeperTiming {
  /** How often the keeper looks at the pool. @default 500 */
  tickMs: number;
  /** How often pooled instances' health is checked. @default 5000 */
  healthIntervalMs: number;
  /** Most instances started at once. @default 4 */
  concurrency: number;
}

/** One key the keeper fills. */
export interface KeeperTarget {
  resolved: ResolvedSpec;
  count: number;
}

const same = (a: { pid: number; startTime: number } | null, b: { pid: number; startTime: number }): boolean =>
  a !== null && a.pid === b.pid && a.startTime === b.startTime;

/** Whether nobody else keeps this instance (it is ours, or its keeper is gone). */
export const keptHere = (p: PooledRecord): boolean =>
  same(p.owner, SELF) || (!p.localOnly && (p.owner === null || !isAlive(p.owner)));

/** Keeps the pool filled and swept. */
export class PoolKeeper {
  readonly targets = new Map<string, KeeperTarget>();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private lastHealth = 0;
  private closed = false;
  /** Per key: no refill before this time (after failures), and the current back-off. */
  private readonly backoff = new Map<string, { until: number; ms: number }>();

  constructor(
    private readonly ctx: PoolContext,
    private readonly timing: KeeperTiming,
  ) {}

  /** Whether the keeper runs in this process. */
  get running(): boolean {
    return this.timer !== null;
  }

  /**
   * Resolves the prewarm counts (config keys, then `overrides`) and starts the timer.
   * @throws InvalidArgumentError (bad key), NotFoundError (unknown driver or environment), and
   *   the other errors a create with that spec would throw
   */
  start(overrides: Record<string, number> = {}): void {
    const counts = { ...this.ctx.config.pool.prewarm, ...overrides };
    this.targets.clear();
    for (const [key, count] of Object.entries(counts)) {
      const resolved = resolveSpec(parseSpecKey(key), this.ctx);
      this.targets.set(resolved.key, { resolved, count });
    }
    const wanted = [...this.targets.values()].reduce((n, t) => n + t.count, 0);
    if (wanted > this.ctx.config.pool.maxInstances) {
      this.ctx.log.warn("pool: prewarm counts exceed maxInstances; the pool stops at maxInstances", {
        wanted,
        maxInstances: this.ctx.config.pool.maxInstances,
      });
    }
    this.closed = false;
    this.timer ??= setInterval(() => this.wake(), this.timing.tickMs);
    this.timer.unref();
    this.wake();
  }

  /** Stops the timer; resolves once in-flight refills have finished. */
  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
  }

  /** Runs a tick (after `delayMs`) if the keeper runs here, unless one is under way. */
  wake(delayMs = 0): void {
    if (!this.running) return;
    if (delayMs > 0) {
      setTimeout(() => this.wake(), delayMs).unref();
      return;
    }
    if (this.closed || this.ticking) return;
    void this.tick().catch((err) => this.ctx.log.warn("pool tick failed", { error: String(err) }));
  }

  /** One round: adopt, check health, sweep idle extras, refill. Single-flight. */
  tick(now = Date.now()): Promise<void> {
    this.ticking ??= this.round(now).finally(() => (this.ticking = null));
    return this.ticking;
  }

  private async round(now: number): Promise<void> {
    const { store } = this.ctx;
    for (const p of store.pool.list()) {
      if (p.state === "ready" && !same(p.owner, SELF) && keptHere(p)) store.pool.setOwner(p.id, SELF);
    }
    if (now - this.lastHealth >= this.timing.healthIntervalMs) {
      this.lastHealth = now;
      for (const p of store.pool.list()) {
        if (this.closed) return;
        if (p.state !== "ready" || !keptHere(p) || !this.ctx.registry.has(p.spec.driver)) continue;
        if (!(await pooledHealthy(this.ctx, p)) && (await discardPooled(this.ctx, p, "dead"))) {
          store.pool.bump(p.specKey, "invalidated");
          this.ctx.log.warn("pool: a pooled instance died; it is replaced", { sandboxId: p.id });
        }
      }
    }
    await this.sweep(now);
    await this.refill(now);
  }

  /** Destroys instances beyond their key's count (and checked-in ones) idle past the timeout. */
  private async sweep(now: number): Promise<void> {
    const idleMs = this.ctx.config.pool.idleTimeoutSeconds * 1000;
    const kept = new Map<string, number>();
    for (const p of this.ctx.store.pool.list()) {
      if (p.state !== "ready" || !keptHere(p)) continue;
      if (p.affinity === null) {
        const n = kept.get(p.specKey) ?? 0;
        if (n < (this.targets.get(p.specKey)?.count ?? 0)) {
          kept.set(p.specKey, n + 1);
          continue;
        }
      }
      if (now - p.idleSince >= idleMs) await discardPooled(this.ctx, p, "idle");
    }
  }

  /** Starts instances for every key below its count, within maxInstances. */
  private async refill(now: number): Promise<void> {
    for (;;) {
      const rows = this.ctx.store.pool.list();
      let room = this.ctx.config.pool.maxInstances - rows.length;
      const batch: Array<Promise<boolean>> = [];
      for (const [key, t] of this.targets) {
        const b = this.backoff.get(key);
        if (b && now < b.until) continue;
        const have = rows.filter(
          (p) => p.specKey === key && p.affinity === null && (!p.localOnly || same(p.owner, SELF)),
        ).length;
        const n = Math.min(t.count - have, room, this.timing.concurrency - batch.length);
        for (let i = 0; i < n; i++) batch.push(this.startOne(t.resolved));
        room -= Math.max(0, n);
      }
      if (batch.length === 0 || this.closed) return;
      const results = await Promise.all(batch);
      if (results.includes(false) || this.closed) return;
      now = Date.now();
    }
  }

  /** Starts one pooled instance; false (logged, counted, backed off) when it could not. */
  private async startOne(r: ResolvedSpec): Promise<boolean> {
    const { store, log } = this.ctx;
    const id = newSandboxId();
    const workspaceDir = workspaceOf(this.ctx, id);
    store.pool.insert({
      id,
      specKey: r.key,
      spec: r.spec,
      workspaceDir,
      state: "warming",
      driverState: null,
      owner: SELF,
      localOnly: !r.driver.capabilities.persistentInstances,
      affinity: null,
    });
    const t0 = performance.now();
    try {
      const config = pooledConfig(id, r.spec, workspaceDir, this.ctx);
      const instance = await startInstance(this.ctx, id, config, r.spec.driver);
      if (this.closed || !store.pool.markReady(id, instance.persistedState())) {
        // Drained or closed meanwhile: nobody will hand it out.
        await instance.destroy().catch(() => undefined);
        rmSync(workspaceDir, { recursive: true, force: true });
        if (!this.closed) store.pool.remove(id);
        return false;
      }
      store.pool.recordRefill(r.key, performance.now() - t0);
      this.backoff.delete(r.key);
      log.debug("pool: instance ready", { sandboxId: id, key: r.key });
      return true;
    } catch (err) {
      if (this.closed) return false;
      store.pool.remove(id);
      store.pool.bump(r.key, "refill_failures");
      const ms = Math.min((this.backoff.get(r.key)?.ms ?? 500) * 2, 60000);
      this.backoff.set(r.key, { until: Date.now() + ms, ms });
      log.warn("pool: could not start an instance", {
        key: r.key,
        error: toWarrenError(err).message,
        retryInMs: ms,
      });
      return false;
    }
  }
}
