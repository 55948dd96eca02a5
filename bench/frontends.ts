/**
 * Front-end benchmark: what the same operations cost through the local backend (in-process) and
 * the remote one (HTTP on loopback, `warren serve`'s server), on one bwrap sandbox.
 *
 *   node dist/bench/frontends.js [--iterations 30] [--json]
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Backend } from "../src/sdk/backend.js";
import { openLocalBackend } from "../src/sdk/local.js";
import { RemoteBackend } from "../src/sdk/remote.js";
import { buildServer } from "../src/server/app.js";
import { sample, summarise, type Summary } from "./stats.js";

const { values } = parseArgs({
  options: { iterations: { type: "string", default: "30" }, json: { type: "boolean", default: false } },
});
const n = Number(values.iterations);
if (!Number.isInteger(n) || n < 1) throw new Error("--iterations must be a positive integer");

const stateDir = mkdtempSync(join(tmpdir(), "warren-bench-fe-"));
chmodSync(stateDir, 0o711);
const local = await openLocalBackend({ config: { stateDir, logLevel: "silent" }, env: { HOME: stateDir } });
const token = "bench-token-0123456789abcdef";
const server = await buildServer({ backend: local, token, host: "127.0.0.1", port: 0 });
await server.listen();
const remote = new RemoteBackend({ url: server.url!, apiKey: token });
const rows: Array<{ step: string; local: Summary; remote: Summary }> = [];
try {
  const s = await local.createSandbox({ driver: "bwrap" });
  const steps: Array<[string, (b: Backend, i: number) => Promise<unknown>]> = [
    ["exec true", (b) => b.exec(s.id, { argv: ["true"] })],
    ["file write 1 KiB", (b, i) => b.writeFile(s.id, `/workspace/f${i}`, "x".repeat(1024))],
    ["file read 1 KiB", (b) => b.readFile(s.id, "/workspace/f0")],
    ["list /workspace", (b) => b.listFiles(s.id, "/workspace")],
    ["background process start", (b) => b.startProcess(s.id, { argv: ["true"] })],
  ];
  for (const [step, fn] of steps) {
    process.stderr.write(`bench: ${step} ×${n} local, then remote\n`);
    rows.push({
      step,
      local: summarise(await sample(n, (i) => fn(local, Math.max(i, 0)))),
      remote: summarise(await sample(n, (i) => fn(remote, Math.max(i, 0)))),
    });
  }
  await local.deleteSandbox(s.id);
} finally {
  await server.close();
  rmSync(stateDir, { recursive: true, force: true });
}

if (values.json) process.stdout.write(JSON.stringify({ iterations: n, rows }, null, 2) + "\n");
else {
  process.stdout.write(`Warren front ends — bwrap, ${n} iterations each, p50 / p95 ms\n\n`);
  process.stdout.write(`${"step".padEnd(28)}${"local".padStart(16)}${"remote (HTTP)".padStart(18)}\n`);
  const f = (x: Summary): string => `${x.p50.toFixed(1)} / ${x.p95.toFixed(1)}`;
  for (const r of rows)
    process.stdout.write(`${r.step.padEnd(28)}${f(r.local).padStart(16)}${f(r.remote).padStart(18)}\n`);
}
