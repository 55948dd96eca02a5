/**
 * Warm-pool figures for `npm run bench`: a create served from the pool (one instance prewarmed for
 * the default spec and refilled, unmeasured, between runs), then its first exec.
 */
import type { Warren } from "../src/service/index.js";
import { timeOnce } from "./stats.js";

/** Samples (ms) of "warm checkout→first exec" and of the checkout alone. */
export async function warmLatency(w: Warren, n: number): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = { "warm checkout→first exec": [], "warm checkout": [] };
  w.pool.start({ [w.config.defaultDriver]: 1 });
  try {
    for (let i = -3; i < n; i++) {
      await w.pool.tick();
      let checkout = 0;
      let id = "";
      const total = await timeOnce(async () => {
        checkout = await timeOnce(async () => {
          id = (await w.sandboxes.create({ labels: { bench: "warm" } })).id;
        });
        await w.sandboxes.exec(id, { argv: ["true"] });
      });
      if (i >= 0) {
        out["warm checkout→first exec"].push(total);
        out["warm checkout"].push(checkout);
      }
      await w.sandboxes.delete(id);
    }
    const k = w.pool.stats().keys.find((x) => x.target > 0);
    if (!k || k.hits < n) throw new Error(`warm runs were not all pool hits (${k?.hits ?? 0} of ${n + 3})`);
  } finally {
    await w.pool.drain();
  }
  return out;
}
