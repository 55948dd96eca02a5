/** `warren kill`: signal a background process (its whole process group). */
import { Command } from "commander";
import { runVerb, withJson } from "../context.js";
import { printJson } from "../render.js";

export function killCommand(): Command {
  const cmd = new Command("kill")
    .description("send a signal to a background process and its process group (default TERM)")
    .argument("<sandbox>", "sandbox id or name")
    .argument("<process>", "process id (see `warren ps`)")
    .option("-s, --signal <name>", "TERM, KILL, INT, HUP, QUIT, USR1, USR2, STOP or CONT", "TERM")
    .option("--wait <seconds>", "then wait this long for it to end", Number);
  withJson(cmd).action(
    async (ref: string, id: string, f: { signal: string; wait?: number; json?: boolean }) =>
      runVerb(f.json, async (b) => {
        let info = await b.signalProcess(ref, id, f.signal);
        if (f.wait !== undefined) info = await b.waitProcess(ref, id, { timeoutMs: f.wait * 1000 });
        if (f.json) return printJson(info);
        const end = info.exitCode === null ? "" : ` (exit ${info.exitCode})`;
        process.stdout.write(`${info.processId} ${info.state}${end}\n`);
      }),
  );
  return cmd;
}
