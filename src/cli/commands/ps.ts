/** `warren ps`: the background processes of a sandbox. */
import { Command } from "commander";
import type { ProcessInfo } from "../../core/types.js";
import { runVerb, withJson } from "../context.js";
import { printJson, relative, table } from "../render.js";

/** One-line form of a process for tables and messages. */
export function processRow(p: ProcessInfo): string[] {
  return [
    p.processId,
    p.state,
    p.exitCode === null ? "-" : String(p.exitCode),
    relative(p.startedAt),
    p.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" "),
  ];
}

export function psCommand(): Command {
  const cmd = new Command("ps")
    .description("list the background processes of a sandbox (start one with `warren exec -d`)")
    .argument("<sandbox>", "sandbox id or name");
  withJson(cmd).action(async (ref: string, f: { json?: boolean }) =>
    runVerb(f.json, async (b) => {
      const list = await b.listProcesses(ref);
      if (f.json) return printJson(list);
      process.stdout.write(table(["ID", "STATE", "EXIT", "STARTED", "COMMAND"], list.map(processRow)));
    }),
  );
  return cmd;
}
