/** What the pool reports (`warren doctor --json`, `GET /v1/pool`): per key, what is ready and how it went. */
import type { PoolCounters, PooledRecord } from "../core/store/index.js";

/** One spec key of the pool. */
export interface PoolKeyStats {
  /** The spec key, e.g. `bwrap/host,cpus=1,memory=512,pids=512,network=none`. */
  key: string;
  /** Instances the pool keeps ready for this key (prewarm count; 0 when not pooled). */
  target: number;
  /** Started, never-used instances waiting. */
  ready: number;
  /** Instances being started. */
  warming: number;
  /** Used instances checked in for their agent's next run. */
  checkedIn: number;
  /** Creates served from the pool, on this state directory since it was made. */
  hits: number;
  /** Creates that started an instance (no ready one). */
  misses: number;
  /** Hits served by an instance checked in by the same agent. */
  reused: number;
  /** Pooled instances found dead and replaced. */
  invalidated: number;
  /** Instances started to refill the pool, and failed attempts. */
  refills: number;
  refillFailures: number;
  /** Time to start one pooled instance (ms) over the latest refills; null before any. */
  refillMs: { last: number | null; p50: number | null; p95: number | null; samples: number };
}

/** The whole pool. */
export interface PoolStats {
  /** Whether this process keeps the pool (prewarms, refills, sweeps): `warren serve` does. */
  keeper: boolean;
  maxInstances: number;
  idleTimeoutSeconds: number;
  /** Instances in the pool, every key together. */
  instances: number;
  /** Hits / (hits + misses) over every key; null before any create. */
  hitRate: number | null;
  keys: PoolKeyStats[];
}

const percentile = (sorted: number[], p: number): number | null =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null;

/** Builds the report from the store's rows and counters and the keeper's targets. */
export function poolStats(o: {
  keeper: boolean;
  maxInstances: number;
  idleTimeoutSeconds: number;
  targets: Map<string, number>;
  rows: PooledRecord[];
  counters: PoolCounters[];
}): PoolStats {
  const keys = new Set([
    ...o.targets.keys(),
    ...o.rows.map((r) => r.specKey),
    ...o.counters.map((c) => c.specKey),
  ]);
  const stats = [...keys].sort().map((key): PoolKeyStats => {
    const rows = o.rows.filter((r) => r.specKey === key);
    const c = o.counters.find((x) => x.specKey === key);
    const sorted = [...(c?.refillMs ?? [])].sort((a, b) => a - b);
    return {
      key,
      target: o.targets.get(key) ?? 0,
      ready: rows.filter((r) => r.state === "ready" && r.affinity === null).length,
      warming: rows.filter((r) => r.state === "warming").length,
      checkedIn: rows.filter((r) => r.affinity !== null).length,
      hits: c?.hits ?? 0,
      misses: c?.misses ?? 0,
      reused: c?.reused ?? 0,
      invalidated: c?.invalidated ?? 0,
      refills: c?.refills ?? 0,
      refillFailures: c?.refillFailures ?? 0,
      refillMs: {
        last: c?.refillMs.at(-1) ?? null,
        p50: percentile(sorted, 50),
        p95: percentile(sorted, 95),
        samples: sorted.length,
      },
    };
  });
  const hits = stats.reduce((n, k) => n + k.hits, 0);
  const total = hits + stats.reduce((n, k) => n + k.misses, 0);
  return {
    keeper: o.keeper,
    maxInstances: o.maxInstances,
    idleTimeoutSeconds: o.idleTimeoutSeconds,
    instances: o.rows.length,
    hitRate: total ? Math.round((hits / total) * 1000) / 1000 : null,
    keys: stats,
  };
}
