/** `warren exec`: run a command in a sandbox; exits with the command's exit code. */
import { Command, Option } from "commander";
import { parsePairs } from "../../core/names.js";
import { collect, runVerb, withJson } from "../context.js";
import { finishExec, readStdin, terminalStream } from "./exec-output.js";

export function execCommand(): Command {
  const cmd = new Command("exec")
    .description("run a command in a running sandbox (id or name); exits with its exit code")
    .argument("<sandbox>", "sandbox id or name")
    .argument("<command...>", "command and arguments (put them after --)")
    .option("--cwd <dir>", "working directory inside the sandbox", "/workspace")
    .option("--env <key=value>", "environment variable (repeatable)", collect)
    .addOption(
      new Option(
        "--timeout <seconds>",
        "kill the command and its processes after this many seconds",
      ).argParser(Number),
    )
    .option("-i, --stdin", "pass this process's stdin to the command");
  withJson(cmd).action(
    async (
      sandbox: string,
      argv: string[],
      f: { cwd: string; env?: string[]; timeout?: number; stdin?: boolean; json?: boolean },
    ) =>
      runVerb(f.json, async (w) => {
        const r = await w.exec(
          sandbox,
          {
            argv: argv[0] === "--" ? argv.slice(1) : argv,
            cwd: f.cwd,
            env: parsePairs(f.env ?? [], "environment variable"),
            timeoutMs: f.timeout === undefined ? undefined : f.timeout * 1000,
            stdin: f.stdin ? readStdin() : undefined,
          },
          terminalStream(f.json),
        );
        return finishExec(r, f.json);
      }),
  );
  return cmd;
}
