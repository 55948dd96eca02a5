/**
 * `npm run bench`: latency of the bwrap driver through the whole service (store, journal, cgroups,
 * nsenter), beside the raw floor of spawning bubblewrap directly, and the host memory an idle
 * sandbox costs. Prints a table (or `--json`) with p50/p95, ratios to the floor and the targets.
 *
 *   node dist/bench/run.js [--iterations N] [--density N] [--json]
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createBuiltinRegistry } from "../src/drivers/index.js";
import { openWarren, type Warren } from "../src/service/index.js";
import { memAvailableKiB, treePssKiB } from "./density.js";
import { floorArgs, rawBwrapTrue } from "./floor.js";
import { microvmBench, printMicrovm } from "./microvm.js";
import { warmLatency } from "./pool.js";
import { sample, summarise, timeOnce, type Summary } from "./stats.js";

interface Figure {
  name: string;
  summary: Summary;
  /** p50 divided by the floor's p50. */
  ratio: number | null;
  /** Target for p50 in ms, and whether it was met. */
  targetMs: number | null;
  verdict: "PASS" | "MISS" | null;
}

interface Density {
  sandboxes: number;
  startSeconds: number;
  memAvailableDropMiBPerSandbox: number;
  holderPssKiBPerSandbox: number;
}

const TARGETS: Record<string, number> = {
  "create→first exec": 15,
  "warm checkout→first exec": 5,
  "exec round trip (true)": 3,
};
const MAX_RATIO = 2.5;

function options() {
  const { values } = parseArgs({
    options: {
      iterations: { type: "string", default: "30" },
      density: { type: "string", default: "200" },
      json: { type: "boolean", default: false },
    },
  });
  const iterations = Number(values.iterations);
  const density = Number(values.density);
  if (!Number.isInteger(iterations) || iterations < 1)
    throw new Error("--iterations must be a positive integer");
  if (!Number.isInteger(density) || density < 0) throw new Error("--density must be a non-negative integer");
  return { iterations, density, json: values.json };
}

function progress(json: boolean, text: string): void {
  if (!json) process.stderr.write(`bench: ${text}\n`);
}

async function latency(w: Warren, n: number, json: boolean): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  const args = floorArgs();
  progress(json, `raw floor: bwrap --unshare-all ... true ×${n}`);
  out["raw bwrap true (floor)"] = await sample(n, () => rawBwrapTrue(args));

  progress(json, `create→first exec ×${n}, then delete`);
  const created: string[] = [];
  out["create→first exec"] = await sample(n, async () => {
    const s = await w.sandboxes.create({ labels: { bench: "latency" } });
    created.push(s.id);
    await w.sandboxes.exec(s.id, { argv: ["true"] });
  });
  out["delete"] = [];
  for (const id of created) out["delete"].push(await timeOnce(() => w.sandboxes.delete(id)));

  progress(json, `warm checkout→first exec ×${n} (pool of 1, refilled between runs)`);
  Object.assign(out, await warmLatency(w, n));

  progress(json, `exec round trip ×${n}`);
  const s = await w.sandboxes.create();
  out["exec round trip (true)"] = await sample(n, () => w.sandboxes.exec(s.id, { argv: ["true"] }));
  await w.sandboxes.delete(s.id);

  progress(json, `one-shot run ×${n}`);
  out["one-shot run (true)"] = await sample(n, () => w.sandboxes.run({}, { argv: ["true"] }));
  return out;
}

async function density(w: Warren, n: number, json: boolean): Promise<Density> {
  const before = memAvailableKiB();
  const t0 = Date.now();
  const ids: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      ids.push((await w.sandboxes.create({ labels: { bench: "density" } })).id);
      if ((i + 1) % 50 === 0 || i + 1 === n) progress(json, `density: ${i + 1}/${n} idle sandboxes`);
    }
    const startSeconds = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
    const after = memAvailableKiB();
    let pss = 0;
    for (const id of ids) {
      const state = w.store.sandboxes.get(id)?.driverState as { bwrap?: { pid: number } } | null;
      if (state?.bwrap) pss += treePssKiB(state.bwrap.pid);
    }
    return {
      sandboxes: n,
      startSeconds,
      memAvailableDropMiBPerSandbox: (before - after) / 1024 / n,
      holderPssKiBPerSandbox: pss / n,
    };
  } finally {
    progress(json, `density: deleting ${ids.length} sandboxes`);
    for (const id of ids) await w.sandboxes.delete(id).catch(() => undefined);
  }
}

function figures(samples: Record<string, number[]>): Figure[] {
  const floor = summarise(samples["raw bwrap true (floor)"]!).p50;
  return Object.entries(samples).map(([name, xs]) => {
    const summary = summarise(xs);
    const isFloor = name.includes("(floor)");
    const targetMs = TARGETS[name] ?? null;
    const ratio = isFloor ? null : summary.p50 / floor;
    let verdict: Figure["verdict"] = null;
    if (targetMs !== null) verdict = summary.p50 <= targetMs && (ratio ?? 0) <= MAX_RATIO ? "PASS" : "MISS";
    return { name, summary, ratio, targetMs, verdict };
  });
}

function print(fs: Figure[], d: Density | null, iterations: number): void {
  const f = (x: number) => x.toFixed(2).padStart(8);
  console.log(`Warren benchmark — bwrap driver, ${iterations} iterations each (ms)\n`);
  console.log(`${"step".padEnd(26)}${"p50".padStart(8)}${"p95".padStart(8)}  ratio  target`);
  for (const x of fs) {
    const ratio = x.ratio === null ? "     " : `${x.ratio.toFixed(1)}×`.padStart(5);
    const target = x.targetMs === null ? "" : `p50 ≤ ${x.targetMs} ms, ≤ ${MAX_RATIO}× floor: ${x.verdict}`;
    console.log(`${x.name.padEnd(26)}${f(x.summary.p50)}${f(x.summary.p95)}  ${ratio}  ${target}`);
  }
  if (d) {
    console.log(`\nDensity: ${d.sandboxes} idle sandboxes started in ${d.startSeconds.toFixed(1)} s`);
    console.log(`  MemAvailable drop per sandbox: ${d.memAvailableDropMiBPerSandbox.toFixed(2)} MiB`);
    console.log(`  holder PSS per sandbox:        ${(d.holderPssKiBPerSandbox / 1024).toFixed(2)} MiB`);
  }
}

async function main(): Promise<void> {
  const o = options();
  const stateDir = mkdtempSync(join(tmpdir(), "warren-bench-"));
  chmodSync(stateDir, 0o711);
  const w = await openWarren({
    config: { logLevel: "silent", stateDir, maxActiveSandboxes: o.density + o.iterations + 10 },
    env: { HOME: stateDir },
    registry: createBuiltinRegistry,
  });
  try {
    const probe = await w.registry.get("bwrap").probe();
    if (!probe.usable) throw new Error(`bwrap is not usable here: ${probe.reason} (${probe.hint ?? ""})`);
    const fs = figures(await latency(w, o.iterations, o.json));
    const d = o.density > 0 ? await density(w, o.density, o.json) : null;
    const vm = await microvmBench(o.iterations, (text) => progress(o.json, text));
    if (o.json)
      console.log(
        JSON.stringify(
          { driver: "bwrap", iterations: o.iterations, figures: fs, density: d, microvm: vm },
          null,
          2,
        ),
      );
    else {
      print(fs, d, o.iterations);
      printMicrovm(vm);
    }
  } finally {
    for (const s of w.sandboxes.list()) await w.sandboxes.delete(s.id).catch(() => undefined);
    w.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
