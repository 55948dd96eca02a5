/** `warren doctor`: for every driver, whether it is usable here and why not. */
import { Command } from "commander";
import { planBackend } from "../../sdk/resolve.js";
import { runVerb, withJson } from "../context.js";
import { printJson } from "../render.js";

export function doctorCommand(): Command {
  const cmd = new Command("doctor").description(
    "check each driver: usable here or not, why, and how to fix it",
  );
  withJson(cmd).action(async (f: { json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const info = await w.info();
      const chosen = planBackend();
      const rows = (await w.drivers()).map((d) => ({ ...d, isolation: d.capabilities.isolation }));
      const pool = await w.pool();
      const report = {
        backend: info.kind,
        backendSource: chosen.source,
        [info.kind === "local" ? "stateDir" : "url"]: info.location,
        defaultDriver: info.defaultDriver,
        drivers: rows,
        pool,
      };
      if (f.json) return printJson(report);
      const where = info.kind === "local" ? `state dir: ${info.location}` : `server: ${info.location}`;
      process.stdout.write(
        `backend: ${chosen.description} (chosen by ${chosen.source})\n${where}\ndefault driver: ${info.defaultDriver}\n\n`,
      );
      for (const r of rows) {
        const mark = r.usable ? "ok " : "NO ";
        process.stdout.write(`${mark} ${r.driver.padEnd(6)} ${r.description}\n     ${r.reason}\n`);
        if (r.hint) process.stdout.write(`     fix: ${r.hint}\n`);
      }
      for (const k of pool.keys.filter((k) => k.target || k.ready || k.hits)) {
        const refill = k.refillMs.p50 === null ? "" : `, refill p50 ${k.refillMs.p50} ms`;
        process.stdout.write(
          `pool ${k.key}: ${k.ready} ready${k.target ? ` of ${k.target}` : ""}, ${k.hits} hits, ${k.misses} misses${refill}\n`,
        );
      }
      const def = rows.find((r) => r.default);
      return def && !def.usable ? 1 : 0;
    }),
  );
  return cmd;
}
