/** Timing helpers for the benchmark: run a step many times, summarise with percentiles. */

/** p50/p95 and friends of one measured step, in milliseconds. */
export interface Summary {
  n: number;
  p50: number;
  p95: number;
  min: number;
  max: number;
}

/** The q-quantile (0..1) of sorted samples, nearest-rank. */
function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** Summarises samples in milliseconds. */
export function summarise(samples: number[]): Summary {
  if (samples.length === 0) throw new Error("no samples");
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p95: quantile(s, 0.95), min: s[0]!, max: s[s.length - 1]! };
}

/** Milliseconds one call of `fn` took. */
export async function timeOnce(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Runs `fn` `warmup` times unmeasured, then `n` times measured; returns the samples. */
export async function sample(n: number, fn: (i: number) => Promise<unknown>, warmup = 3): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn(-1 - i);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await timeOnce(() => fn(i)));
  return out;
}
