/**
 * Registers every behaviour of the manifest for every built-in driver. A driver that cannot run
 * on this host is skipped with the reason printed, never passed silently.
 */
import { after, before, describe, it } from "node:test";
import type { Sandbox } from "../../src/core/types.js";
import type { CreateOptions } from "../../src/service/index.js";
import { testWarren, type TestWarren } from "../helpers/warren.js";
import { BEHAVIOURS, type BehaviourContext } from "./behaviours.js";
import { microvmConformanceOptions } from "../integration/microvm-fixture.js";

const DRIVERS: Array<{ name: string; options: CreateOptions }> = [
  { name: "bwrap", options: {} },
  { name: "host", options: { allowHost: true } },
  { name: "fake", options: {} },
  { name: "microvm", options: await microvmConformanceOptions() },
];

/** Probe result turned into a skip reason. */
async function skipReason(name: string): Promise<string | false> {
  const t = await testWarren();
  try {
    const probe = await t.warren.registry.get(name).probe();
    return probe.usable ? false : `${name} unusable here: ${probe.reason}`;
  } finally {
    await t.dispose();
  }
}

for (const d of DRIVERS) {
  const skip = await skipReason(d.name);
  if (skip) console.log(`# conformance: skipping driver ${d.name}: ${skip}`);
  describe(`conformance: ${d.name}`, { skip }, () => {
    let t: TestWarren;
    before(async () => {
      t = await testWarren({ maxOutputBytes: 1024 });
    });
    after(async () => {
      await t.dispose();
    });
    for (const b of BEHAVIOURS) {
      it(`${b.id}: ${b.description}`, async (tc) => {
        const caps = t.warren.registry.get(d.name).capabilities;
        const missing = b.needs?.(caps) ?? null;
        if (missing) return tc.skip(missing);
        const made: Sandbox[] = [];
        const ctx: BehaviourContext = {
          warren: t.warren,
          driver: d.name,
          capabilities: caps,
          async create(options = {}) {
            const s = await t.warren.sandboxes.create({ driver: d.name, ...d.options, ...options });
            made.push(s);
            return s;
          },
        };
        try {
          await b.run(ctx);
        } catch (err) {
          if (err instanceof Error)
            err.message += ` [sandboxes: ${made.map((s) => s.id).join(", ") || "none"}]`;
          throw err;
        } finally {
          for (const s of made) await t.warren.sandboxes.delete(s.id).catch(() => undefined);
        }
      });
    }
  });
}
