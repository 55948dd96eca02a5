/** `warren logs`: the command journal of a sandbox. */
import { Command } from "commander";
import { int, runVerb, withJson } from "../context.js";
import { printJson } from "../render.js";

export function logsCommand(): Command {
  const cmd = new Command("logs")
    .description("show the command journal of a sandbox: every command, its status, exit code and output")
    .argument("<sandbox>", "sandbox id or name")
    .option("--since <sequence>", "only entries after this sequence number", int("--since"))
    .option("--no-output", "leave command output out");
  withJson(cmd).action(async (ref: string, f: { since?: number; output: boolean; json?: boolean }) =>
    runVerb(f.json, async (w) => {
      const entries = await w.journal(ref, { sinceSequence: f.since });
      if (f.json) return printJson(entries);
      for (const e of entries) {
        const code = e.exitCode === null ? "" : ` exit=${e.exitCode}`;
        const ms = e.durationMs === null ? "" : ` ${e.durationMs}ms`;
        process.stdout.write(
          `#${e.sequence} ${e.startedAt} [${e.status}${code}${ms}] ${JSON.stringify(e.argv)}\n`,
        );
        if (e.error) process.stdout.write(`  error: ${e.error}\n`);
        if (f.output) {
          for (const line of e.stdout.split("\n").filter(Boolean)) process.stdout.write(`  | ${line}\n`);
          for (const line of e.stderr.split("\n").filter(Boolean)) process.stdout.write(`  ! ${line}\n`);
          if (e.truncated) process.stdout.write("  (output truncated)\n");
        }
      }
    }),
  );
  return cmd;
}
