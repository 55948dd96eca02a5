/**
 * The conformance manifest against out-of-process drivers: each built-in driver below runs in its
 * own process (`warren driver serve NAME`, spawned through the bootstrap handshake) and Warren
 * reaches it over driver protocol v1. A third party runs the same suite against its driver with
 * WARREN_CONFORMANCE_DRIVER_SOCKET=/path/to/driver.sock (see docs/driver-protocol.md).
 */
import { after, describe, it } from "node:test";
import type { Sandbox } from "../../src/core/types.js";
import type { ExternalDriverSpec } from "../../src/drivers/external/driver.js";
import type { CreateOptions } from "../../src/service/index.js";
import { externalWarren, type ExternalWarren } from "../integration/driver-protocol-fixture.js";
import { BEHAVIOURS, type BehaviourContext } from "./behaviours.js";

const thirdParty = process.env.WARREN_CONFORMANCE_DRIVER_SOCKET;
const DRIVERS: Array<{ name: string; spec: ExternalDriverSpec; options: CreateOptions }> = [
  { name: "bwrap-external", spec: { builtin: "bwrap" }, options: {} },
  { name: "fake-external", spec: { builtin: "fake" }, options: {} },
  ...(thirdParty ? [{ name: "third-party", spec: { socket: thirdParty }, options: {} }] : []),
];

for (const d of DRIVERS) {
  let t: ExternalWarren | null = null;
  let skip: string | false = false;
  try {
    t = await externalWarren(d.name, d.spec, { maxOutputBytes: 1024 });
    const probe = await t.driver().probe();
    if (!probe.usable) skip = `${d.name} unusable here: ${probe.reason}`;
  } catch (err) {
    skip = `${d.name} cannot be reached: ${String(err)}`;
  }
  if (skip) {
    console.log(`# conformance: skipping driver ${d.name}: ${skip}`);
    await t?.dispose();
    t = null;
  }
  describe(`conformance (out-of-process): ${d.name}`, { skip }, () => {
    after(async () => {
      await t?.dispose();
    });
    for (const b of BEHAVIOURS) {
      it(`${b.id}: ${b.description}`, async (tc) => {
        const w = t!.warren;
        const caps = w.registry.get(d.name).capabilities;
        const missing = b.needs?.(caps) ?? null;
        if (missing) return tc.skip(missing);
        const made: Sandbox[] = [];
        const ctx: BehaviourContext = {
          warren: w,
          driver: d.name,
          capabilities: caps,
          async create(options = {}) {
            const s = await w.sandboxes.create({ driver: d.name, ...d.options, ...options });
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
          for (const s of made) await w.sandboxes.delete(s.id).catch(() => undefined);
        }
      });
    }
  });
}
