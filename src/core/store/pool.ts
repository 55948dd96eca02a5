/**
 * The warm pool's tables: started, never-used (or checked-in) instances waiting for a sandbox,
 * and per-spec counters. A pooled instance is not a sandbox: it has no row in `sandboxes` (a
 * checked-in one has a `deleted` row, revived when it is handed out again), so `list`, the
 * active-sandbox limit and the reaper never see it. Moving an instance between the pool and the
 * sandbox table happens in one transaction, so a reader of both always sees it in one of them.
 */
import type { PersistedState } from "../driver.js";
import { AlreadyExistsError } from "../errors.js";
import type { ProcessIdentity } from "../proc.js";
import type { NetworkPolicy, Resources } from "../types.js";
import type { Db } from "./database.js";

/** What cannot change once an instance has started: the pool's key. */
export interface PoolSpec {
  driver: string;
  environment: string;
  resources: Resources;
  network: NetworkPolicy;
}

/** `warming` while its start is in progress, `ready` once started. */
export type PooledState = "warming" | "ready";

/** One pooled instance. */
export interface PooledRecord {
  /** The sandbox id it was made for; the sandbox that takes it gets this id. */
  id: string;
  specKey: string;
  spec: PoolSpec;
  workspaceDir: string;
  state: PooledState;
  driverState: PersistedState | null;
  /** The process that made or keeps it (refills, sweeps); null when nobody does. */
  owner: ProcessIdentity | null;
  /** True when the instance lives only in its owner process (drivers without persistent instances). */
  localOnly: boolean;
  /** Agent whose run checked it in (only that agent's runs may take it); null when never used. */
  affinity: string | null;
  createdAt: number;
  /** Since when it has waited unused (ms since the epoch). */
  idleSince: number;
}

interface Row {
  id: string;
  spec_key: string;
  spec: string;
  workspace_dir: string;
  state: PooledState;
  driver_state: string | null;
  owner_pid: number | null;
  owner_start: number | null;
  local_only: number;
  affinity: string | null;
  created_at: number;
  idle_since: number;
}

/** Counters of one spec key, across every process on the state directory. */
export interface PoolCounters {
  specKey: string;
  hits: number;
  misses: number;
  /** Hits served by a checked-in instance of the same agent. */
  reused: number;
  /** Pooled instances found dead (at checkout or by a health check) and thrown away. */
  invalidated: number;
  refills: number;
  refillFailures: number;
  /** Durations of the latest refills (ms), oldest first. */
  refillMs: number[];
}

/** How many refill durations each key keeps. */
export const REFILL_SAMPLES = 50;

const fromRow = (r: Row): PooledRecord => ({
  id: r.id,
  specKey: r.spec_key,
  spec: JSON.parse(r.spec),
  workspaceDir: r.workspace_dir,
  state: r.state,
  driverState: r.driver_state ? JSON.parse(r.driver_state) : null,
  owner:
    r.owner_pid === null || r.owner_start === null ? null : { pid: r.owner_pid, startTime: r.owner_start },
  localOnly: r.local_only === 1,
  affinity: r.affinity,
  createdAt: r.created_at,
  idleSince: r.idle_since,
});

/** A counter that `bump` increments. */
export type PoolCounter = "hits" | "misses" | "reused" | "invalidated" | "refills" | "refill_failures";

/** Reads and writes the pool tables. Callers group calls in `store.transaction` where needed. */
export class PoolTable {
  constructor(private readonly db: Db) {}

  /** Adds an instance (warming or, for a checkin, ready). */
  insert(r: Omit<PooledRecord, "createdAt" | "idleSince"> & { idleSince?: number }): void {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO pool (id, spec_key, spec, workspace_dir, state, driver_state, owner_pid, owner_start,
           local_only, affinity, created_at, idle_since)
         VALUES (@id, @key, @spec, @ws, @state, @ds, @pid, @start, @local, @affinity, @now, @idle)`,
      )
      .run({
        id: r.id,
        key: r.specKey,
        spec: JSON.stringify(r.spec),
        ws: r.workspaceDir,
        state: r.state,
        ds: r.driverState === null ? null : JSON.stringify(r.driverState),
        pid: r.owner?.pid ?? null,
        start: r.owner?.startTime ?? null,
        local: r.localOnly ? 1 : 0,
        affinity: r.affinity,
        now,
        idle: r.idleSince ?? now,
      });
  }

  /** Marks a warming instance started. Returns false when its row is gone (drained meanwhile). */
  markReady(id: string, driverState: PersistedState): boolean {
    const r = this.db
      .prepare(
        `UPDATE pool SET state = 'ready', driver_state = ?, idle_since = ? WHERE id = ? AND state = 'warming'`,
      )
      .run(JSON.stringify(driverState), Date.now(), id);
    return r.changes === 1;
  }

  /** Sets the process that keeps an instance. */
  setOwner(id: string, owner: ProcessIdentity | null): void {
    this.db
      .prepare(`UPDATE pool SET owner_pid = ?, owner_start = ? WHERE id = ?`)
      .run(owner?.pid ?? null, owner?.startTime ?? null, id);
  }

  /**
   * Takes the best ready instance for a key out of the pool: one checked in by `affinity` first,
   * else a never-used one, oldest first; instances that live only in another process are skipped.
   * Returns null when none fits. Call inside a transaction with what uses it.
   */
  claim(specKey: string, affinity: string | null, self: ProcessIdentity): PooledRecord | null {
    const row = this.db
      .prepare(
        `SELECT * FROM pool
         WHERE spec_key = @key AND state = 'ready'
           AND (affinity IS NULL OR affinity = @affinity)
           AND (local_only = 0 OR (owner_pid = @pid AND owner_start = @start))
         ORDER BY affinity IS NULL, created_at LIMIT 1`,
      )
      .get({ key: specKey, affinity, pid: self.pid, start: self.startTime }) as Row | undefined;
    if (!row) return null;
    this.db.prepare(`DELETE FROM pool WHERE id = ?`).run(row.id);
    return fromRow(row);
  }

  /** Removes an instance's row; returns whether it was there (so only one caller destroys it). */
  remove(id: string): boolean {
    return this.db.prepare(`DELETE FROM pool WHERE id = ?`).run(id).changes === 1;
  }

  /** One instance, or null. */
  get(id: string): PooledRecord | null {
    const row = this.db.prepare(`SELECT * FROM pool WHERE id = ?`).get(id) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  /** Every pooled instance, oldest first. */
  list(): PooledRecord[] {
    return (this.db.prepare(`SELECT * FROM pool ORDER BY created_at`).all() as Row[]).map(fromRow);
  }

  /**
   * Ids to keep per driver: every pooled instance and every creating or running sandbox, read
   * in one snapshot (an instance moving from the pool to a sandbox is in one of them).
   */
  liveIds(): Map<string, Set<string>> {
    const rows = this.db
      .prepare(
        `SELECT id, json_extract(spec, '$.driver') AS driver FROM pool
         UNION ALL SELECT id, driver FROM sandboxes WHERE state IN ('creating', 'running')`,
      )
      .all() as Array<{ id: string; driver: string }>;
    const out = new Map<string, Set<string>>();
    for (const r of rows) (out.get(r.driver) ?? out.set(r.driver, new Set()).get(r.driver)!).add(r.id);
    return out;
  }

  /**
   * Gives a checked-in instance's `deleted` sandbox row to a new sandbox: new name, labels, env
   * and TTL, state `creating` owned by `owner`. Call inside the claiming transaction.
   * @throws AlreadyExistsError when a live sandbox has the name
   */
  reviveSandbox(
    id: string,
    s: {
      name: string;
      labels: Record<string, string>;
      env: Record<string, string>;
      ttlSeconds: number;
      onTimeout: string;
    },
    owner: ProcessIdentity,
  ): void {
    const now = Date.now();
    const update = this.db.prepare(
      `UPDATE sandboxes SET name = @name, labels = @labels, env = @env, ttl_seconds = @ttl,
           on_timeout = @onTimeout, state = 'creating', owner_pid = @pid, owner_start = @start,
           created_at = @now, updated_at = @now, started_at = NULL, expires_at = NULL, last_error = NULL
         WHERE id = @id AND state = 'deleted'`,
    );
    try {
      update.run({
        id,
        name: s.name,
        labels: JSON.stringify(s.labels),
        env: JSON.stringify(s.env),
        ttl: s.ttlSeconds,
        onTimeout: s.onTimeout,
        pid: owner.pid,
        start: owner.startTime,
        now,
      });
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") {
        throw new AlreadyExistsError(`a sandbox named "${s.name}" already exists`, {
          hint: `pick another --name, or remove the old one with \`warren rm ${s.name}\``,
          details: { name: s.name },
        });
      }
      throw err;
    }
  }

  /** Adds `n` to one counter of a key. */
  bump(specKey: string, counter: PoolCounter, n = 1): void {
    this.db
      .prepare(
        `INSERT INTO pool_counters (spec_key, ${counter}) VALUES (?, ?)
         ON CONFLICT(spec_key) DO UPDATE SET ${counter} = ${counter} + excluded.${counter}`,
      )
      .run(specKey, n);
  }

  /** Records one refill's duration (keeps the latest REFILL_SAMPLES). */
  recordRefill(specKey: string, ms: number): void {
    this.db.transaction(() => this.addRefill(specKey, ms)).immediate();
  }

  private addRefill(specKey: string, ms: number): void {
    this.bump(specKey, "refills");
    const row = this.db.prepare(`SELECT refill_ms FROM pool_counters WHERE spec_key = ?`).get(specKey) as {
      refill_ms: string;
    };
    const samples = [...(JSON.parse(row.refill_ms) as number[]), Math.round(ms * 10) / 10];
    this.db
      .prepare(`UPDATE pool_counters SET refill_ms = ? WHERE spec_key = ?`)
      .run(JSON.stringify(samples.slice(-REFILL_SAMPLES)), specKey);
  }

  /** Counters of every key seen. */
  counters(): PoolCounters[] {
    const rows = this.db.prepare(`SELECT * FROM pool_counters ORDER BY spec_key`).all() as Array<
      Record<string, number | string>
    >;
    return rows.map((r) => ({
      specKey: r.spec_key as string,
      hits: r.hits as number,
      misses: r.misses as number,
      reused: r.reused as number,
      invalidated: r.invalidated as number,
      refills: r.refills as number,
      refillFailures: r.refill_failures as number,
      refillMs: JSON.parse(r.refill_ms as string),
    }));
  }
}
