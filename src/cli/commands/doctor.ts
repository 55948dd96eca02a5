/** `warren doctor`: for every driver, whether it is usable here and why not. */
import { Command } from "commander";
import { runVerb, withJson } from "../context.js";
import { printJson } from "../render.js";

export function doctorCommand(): Command {
  const cmd = new Command("doctor").description(
    "check each driver: usable here or not, why, and how to fix it",
  );
  withJson(cmd).action(async (f: { json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const rows = [];
      for (const factory of w.registry.factoriesList()) {
        const probe = await w.registry.get(factory.name).probe();
        rows.push({
          driver: factory.name,
          description: factory.description,
          default: factory.name === w.config.defaultDriver,
          requiresOptIn: factory.requiresOptIn,
          isolation: w.registry.get(factory.name).capabilities.isolation,
          ...probe,
        });
      }
      const report = { stateDir: w.config.stateDir, defaultDriver: w.config.defaultDriver, drivers: rows };
      if (f.json) return printJson(report);
      process.stdout.write(`state dir: ${report.stateDir}\ndefault driver: ${report.defaultDriver}\n\n`);
      for (const r of rows) {
        const mark = r.usable ? "ok " : "NO ";
        process.stdout.write(`${mark} ${r.driver.padEnd(6)} ${r.description}\n     ${r.reason}\n`);
        if (r.hint) process.stdout.write(`     fix: ${r.hint}\n`);
      }
      const def = rows.find((r) => r.default);
      return def && !def.usable ? 1 : 0;
    }),
  );
  return cmd;
}
