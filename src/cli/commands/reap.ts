/** `warren reap`: apply TTLs now (every verb also does this at start). */
import { Command } from "commander";
import { LocalBackend } from "../../sdk/local.js";
import { runVerb, withJson } from "../context.js";
import { printJson } from "../render.js";

export function reapCommand(): Command {
  const cmd = new Command("reap").description(
    "stop or delete sandboxes past their TTL and clean up after crashes",
  );
  withJson(cmd).action(async (f: { json?: boolean }) =>
    runVerb(f.json, async (w) => {
      // Opening a local backend already reconciled and reaped; report what that did.
      const startup =
        w instanceof LocalBackend
          ? w.warren.startup
          : {
              reaped: await w.reap(),
              reconcile: {
                lostCommands: [],
                stoppedSandboxes: [],
                failedCreations: [],
                removedResources: [],
              },
            };
      const report = { reaped: startup.reaped, ...startup.reconcile };
      if (f.json) return printJson(report);
      for (const r of report.reaped)
        process.stdout.write(`${r.action} ${r.name} (${r.sandboxId}): TTL ran out\n`);
      for (const s of report.stoppedSandboxes)
        process.stdout.write(`marked ${s} stopped: its processes had died\n`);
      for (const c of report.lostCommands)
        process.stdout.write(`journal ${c.sandboxId}#${c.sequence} marked lost\n`);
      for (const r of report.removedResources) process.stdout.write(`removed ${r}\n`);
      if (
        !report.reaped.length &&
        !report.stoppedSandboxes.length &&
        !report.lostCommands.length &&
        !report.removedResources.length
      ) {
        process.stdout.write("nothing to reap\n");
      }
    }),
  );
  return cmd;
}
