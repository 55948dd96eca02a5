/** The warm pool's figures: what is ready per spec key, hits and misses, refill times. */
import { z } from "zod/v4";
import type { PoolStats } from "../../service/index.js";
import type { Api, RouteContext } from "../route.js";
import { doc, named } from "../schemas.js";

const ms = z.number().nullable();

/** One spec key of the pool. */
export const PoolKeyStatsSchema = named(
  "PoolKeyStats",
  z.object({
    key: doc(z.string(), "spec key: DRIVER/ENV,cpus=N,memory=MiB,pids=N,network=P"),
    target: doc(z.number(), "instances kept ready (prewarm count); 0 when not pooled"),
    ready: z.number(),
    warming: z.number(),
    checkedIn: doc(z.number(), "used instances kept for their agent's next run"),
    hits: z.number(),
    misses: z.number(),
    reused: z.number(),
    invalidated: doc(z.number(), "pooled instances found dead and replaced"),
    refills: z.number(),
    refillFailures: z.number(),
    refillMs: z.object({ last: ms, p50: ms, p95: ms, samples: z.number() }),
  }),
);

/** The whole pool. */
export const PoolStatsSchema = named(
  "PoolStats",
  z.object({
    keeper: doc(z.boolean(), "whether the server keeps the pool (prewarms, refills, sweeps)"),
    maxInstances: z.number(),
    idleTimeoutSeconds: z.number(),
    instances: z.number(),
    hitRate: z.number().nullable(),
    keys: z.array(PoolKeyStatsSchema),
  }),
  "The warm pool: per spec key, what is ready, hits and misses, refill times",
);

// Compile-time check: the schema is exactly the service's type.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same: Same<z.output<typeof PoolStatsSchema>, PoolStats> = true;
void same;

/** GET /v1/pool. */
export function poolRoutes(api: Api, { backend }: RouteContext): void {
  api.add({
    method: "GET",
    path: "/v1/pool",
    operationId: "getPool",
    summary: "The warm pool: instances ready per spec key, hits and misses, refill times",
    tag: "pool",
    responses: { 200: { description: "pool figures", schema: PoolStatsSchema } },
    handler: () => backend.pool(),
  });
}
