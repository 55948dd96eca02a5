/** `warren attach`: follow a background process's output; optionally feed it this stdin. */
import { Command } from "commander";
import type { Backend } from "../../sdk/backend.js";
import { int, runVerb, withJson } from "../context.js";
import { printJson } from "../render.js";

/** Forwards this process's stdin to a background process, then closes its stdin. */
export function forwardStdin(b: Backend, ref: string, id: string): Promise<void> {
  let chain = Promise.resolve();
  return new Promise((resolve, reject) => {
    process.stdin.on("data", (c: Buffer) => {
      chain = chain.then(() => b.writeStdin(ref, id, c));
      chain.catch(reject);
    });
    process.stdin.once("end", () => {
      chain.then(() => b.closeStdin(ref, id)).then(resolve, reject);
    });
  });
}

export function attachCommand(): Command {
  const cmd = new Command("attach")
    .description(
      "stream a background process's output from the start (or offsets) until it ends; Ctrl-C detaches and leaves it running",
    )
    .argument("<sandbox>", "sandbox id or name")
    .argument("<process>", "process id (see `warren ps`)")
    .option("--stdout-offset <bytes>", "start stdout at this byte offset", int("--stdout-offset"), 0)
    .option("--stderr-offset <bytes>", "start stderr at this byte offset", int("--stderr-offset"), 0)
    .option("-i, --stdin", "send this process's stdin to it, and close its stdin at end of input");
  withJson(cmd).action(
    async (
      ref: string,
      id: string,
      f: { stdoutOffset: number; stderrOffset: number; stdin?: boolean; json?: boolean },
    ) =>
      runVerb(f.json, async (b) => {
        const detach = new AbortController();
        const onSigint = (): void => detach.abort();
        process.once("SIGINT", onSigint);
        try {
          if (f.stdin)
            forwardStdin(b, ref, id).catch((err) => process.stderr.write(`warren: stdin: ${err.message}\n`));
          const info = await b.attachProcess(ref, id, {
            stdoutOffset: f.stdoutOffset,
            stderrOffset: f.stderrOffset,
            onStdout: f.json ? undefined : (c) => process.stdout.write(c),
            onStderr: f.json ? undefined : (c) => process.stderr.write(c),
            signal: detach.signal,
          });
          if (f.stdin) process.stdin.destroy();
          if (f.json) printJson(info);
          if (detach.signal.aborted) {
            if (!f.json) process.stderr.write(`warren: detached; ${id} is still ${info.state}\n`);
            return 0;
          }
          if (info.state === "lost") {
            if (!f.json) process.stderr.write(`warren: ${id} was lost (its sandbox stopped while it ran)\n`);
            return 1;
          }
          return info.exitCode ?? 1;
        } finally {
          process.removeListener("SIGINT", onSigint);
        }
      }),
  );
  return cmd;
}
