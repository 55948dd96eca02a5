/** `warren exec`: run a command in a sandbox; exits with the command's exit code. */
import { Command, Option } from "commander";
import { InvalidArgumentError } from "../../core/errors.js";
import { parsePairs } from "../../core/names.js";
import { printJson } from "../render.js";
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
    .option("-i, --stdin", "pass this process's stdin to the command")
    .option(
      "-d, --detach",
      "start it as a background process and print its id (follow it with `warren attach`, list with `warren ps`)",
    );
  withJson(cmd).action(
    async (
      sandbox: string,
      argv: string[],
      f: { cwd: string; env?: string[]; timeout?: number; stdin?: boolean; detach?: boolean; json?: boolean },
    ) =>
      runVerb(f.json, async (w) => {
        if (f.detach) {
          if (f.timeout !== undefined || f.stdin) {
            throw new InvalidArgumentError("--detach cannot be combined with --timeout or --stdin", {
              hint: "send input with `warren attach -i`; stop it with `warren kill`",
            });
          }
          const p = await w.startProcess(sandbox, {
            argv: argv[0] === "--" ? argv.slice(1) : argv,
            cwd: f.cwd,
            env: parsePairs(f.env ?? [], "environment variable"),
          });
          if (f.json) printJson(p);
          else process.stdout.write(`${p.processId}\n`);
          return 0;
        }
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
