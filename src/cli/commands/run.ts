/** `warren run`: one-shot create + exec + delete; exits with the command's exit code. */
import { Command, Option } from "commander";
import { runVerb, withJson } from "../context.js";
import { addCreateOptions, createOptionsFrom, type CreateFlags } from "../create-options.js";
import { finishExec, readStdin, terminalStream } from "./exec-output.js";

export function runCommand(): Command {
  const cmd = new Command("run")
    .description("create a sandbox, run one command in it, delete it; exits with the command's exit code")
    .argument("<command...>", "command and arguments (put them after --)")
    .option("--cwd <dir>", "working directory inside the sandbox", "/workspace")
    .addOption(
      new Option("--timeout <seconds>", "kill the command after this many seconds").argParser(Number),
    )
    .option("-i, --stdin", "pass this process's stdin to the command");
  addCreateOptions(withJson(cmd)).action(
    async (
      argv: string[],
      f: CreateFlags & { cwd: string; timeout?: number; stdin?: boolean; json?: boolean },
    ) =>
      runVerb(f.json, async (w) => {
        const r = await w.run(
          createOptionsFrom(f),
          {
            argv,
            cwd: f.cwd,
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
