/**
 * Benchmark of the microvm driver: boot→first exec (create, then `true`), the exec round trip on
 * a running VM and a clean stop, labelled with the acceleration in use (KVM, or TCG software
 * emulation, where only a few iterations are run); plus the guest agent's RSS inside the guest and
 * QEMU's RSS on the host for an idle VM. Skipped, with the reason, when the driver is unusable.
 *
 * The VM environment comes from WARREN_MICROVM_ENV_DIR, else the first built one among
 * $WARREN_HOME, /var/lib/warren and the test cache (/var/tmp/warren-test-cache).
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBuiltinRegistry } from "../src/drivers/index.js";
import { AgentClient, type ChannelAddress } from "../src/drivers/microvm/channel.js";
import { openWarren } from "../src/service/index.js";
import { sample, summarise, timeOnce, type Summary } from "./stats.js";

/** What the microvm benchmark found. */
export type MicrovmBench =
  | { skipped: string }
  | {
      acceleration: string;
      launcher: string;
      iterations: number;
      figures: Array<{ name: string; summary: Summary }>;
      agentRssKiB: number;
      qemuRssMiB: number;
    };

function environmentDir(): string | null {
  const candidates = [
    process.env.WARREN_MICROVM_ENV_DIR,
    process.env.WARREN_HOME && join(process.env.WARREN_HOME, "environments", "debian-bookworm-vm"),
    "/var/lib/warren/environments/debian-bookworm-vm",
    join(process.env.WARREN_TEST_CACHE ?? "/var/tmp/warren-test-cache", "environments", "debian-bookworm-vm"),
  ];
  return candidates.find((d): d is string => !!d && existsSync(join(d, "meta.json"))) ?? null;
}

function vmRssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

/** Runs the microvm benchmark with at most `iterations` (5 under software emulation). */
export async function microvmBench(
  iterations: number,
  progress: (text: string) => void,
): Promise<MicrovmBench> {
  const envDir = environmentDir();
  if (!envDir) return { skipped: "no built debian-bookworm-vm (run `warren env pull debian-bookworm-vm`)" };
  process.env.WARREN_MICROVM_ENV_DIR = envDir;
  const stateDir = mkdtempSync(join(tmpdir(), "warren-bench-vm-"));
  chmodSync(stateDir, 0o711);
  const w = await openWarren({
    config: { logLevel: "silent", stateDir },
    env: { HOME: stateDir },
    registry: createBuiltinRegistry,
  });
  try {
    const probe = await w.registry.get("microvm").probe();
    if (!probe.usable) return { skipped: `microvm unusable here: ${probe.reason}` };
    const acceleration = String(probe.details?.acceleration ?? "unknown");
    const n = acceleration === "tcg" ? Math.min(iterations, 5) : Math.min(iterations, 20);
    const label = acceleration === "tcg" ? "TCG (software emulation)" : acceleration.toUpperCase();
    progress(`microvm (${label}): boot→first exec ×${n}, then delete`);
    const ids: string[] = [];
    const boot = await sample(
      n,
      async () => {
        const s = await w.sandboxes.create({ driver: "microvm", labels: { bench: "microvm" } });
        ids.push(s.id);
        await w.sandboxes.exec(s.id, { argv: ["true"] });
      },
      1,
    );
    for (const id of ids.splice(0)) await w.sandboxes.delete(id);

    progress(`microvm: exec round trip ×${n * 4}, stop ×${n}`);
    const s = await w.sandboxes.create({ driver: "microvm" });
    const exec = await sample(n * 4, () => w.sandboxes.exec(s.id, { argv: ["true"] }));
    const state = w.store.sandboxes.get(s.id)!.driverState as {
      vmm: { pid: number };
      channel: ChannelAddress;
    };
    const client = await AgentClient.connect(state.channel, Date.now() + 30000);
    const facts = await client.ping(10000).finally(() => client.close());
    const qemuRssMiB = vmRssKiB(state.vmm.pid) / 1024;
    const stop: number[] = [];
    for (let i = 0; i < n; i++) {
      stop.push(await timeOnce(() => w.sandboxes.stop(s.id)));
      if (i < n - 1) await w.sandboxes.start(s.id);
    }
    await w.sandboxes.delete(s.id);
    return {
      acceleration,
      launcher: String(probe.details?.launcher ?? "qemu"),
      iterations: n,
      figures: [
        { name: "boot→first exec", summary: summarise(boot) },
        { name: "exec round trip (true)", summary: summarise(exec) },
        { name: "stop (clean shutdown)", summary: summarise(stop) },
      ],
      agentRssKiB: Number(facts.rss_kib),
      qemuRssMiB,
    };
  } finally {
    for (const s of w.sandboxes.list()) await w.sandboxes.delete(s.id).catch(() => undefined);
    w.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Prints the microvm section of the benchmark table. */
export function printMicrovm(r: MicrovmBench): void {
  if ("skipped" in r) {
    console.log(`\nmicrovm driver: skipped — ${r.skipped}`);
    return;
  }
  const label = r.acceleration === "tcg" ? "TCG, software emulation" : r.acceleration.toUpperCase();
  const f = (x: number) => x.toFixed(2).padStart(9);
  console.log(`\nmicrovm driver — ${r.launcher}, acceleration ${label}, ${r.iterations} iterations (ms)\n`);
  console.log(`${"step".padEnd(26)}${"p50".padStart(9)}${"p95".padStart(9)}`);
  for (const x of r.figures) console.log(`${x.name.padEnd(26)}${f(x.summary.p50)}${f(x.summary.p95)}`);
  console.log(`  guest agent RSS (in the guest): ${r.agentRssKiB} KiB`);
  console.log(`  QEMU RSS on the host, idle VM:  ${r.qemuRssMiB.toFixed(1)} MiB`);
}
