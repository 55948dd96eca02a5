/**
 * `warren shell`: an interactive shell in a sandbox. With a terminal on stdin it runs the shell
 * under a pseudo-terminal made inside the sandbox by script(1), as a background process whose
 * output is followed and whose stdin gets each keystroke — so it works the same against a
 * remote server. Without a terminal, stdin is the script a plain `sh -s` runs.
 */
import { Command } from "commander";
import type { Backend } from "../../sdk/backend.js";
import { runVerb } from "../context.js";
import { readStdin, terminalStream } from "./exec-output.js";

/** Runs a PTY shell as a background process and wires this terminal to it. Returns its exit code. */
async function interactive(b: Backend, ref: string, shell: string): Promise<number> {
  const { rows = 24, columns = 80 } = process.stdout;
  const inner = `stty rows ${rows} cols ${columns} 2>/dev/null; command -v ${shell} >/dev/null && exec ${shell} -i; exec sh -i`;
  const p = await b.startProcess(ref, {
    argv: ["script", "-qfec", inner, "/dev/null"],
    env: { TERM: process.env.TERM ?? "xterm-256color", SHELL: "/bin/sh" },
  });
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  let writes = Promise.resolve();
  let lastInput = Date.now();
  stdin.on("data", (c: Buffer) => {
    lastInput = Date.now();
    writes = writes.then(() => b.writeStdin(ref, p.processId, c)).catch(() => undefined);
  });
  try {
    let offsets = { stdoutOffset: 0, stderrOffset: 0 };
    for (;;) {
      const out = await b.processOutput(ref, p.processId, offsets);
      if (out.stdout.length) process.stdout.write(out.stdout);
      if (out.stderr.length) process.stderr.write(out.stderr);
      offsets = { stdoutOffset: out.stdoutOffset, stderrOffset: out.stderrOffset };
      if (out.state !== "running" && out.stdout.length + out.stderr.length === 0) return out.exitCode ?? 1;
      // Poll quickly while the user types or output flows, slowly when idle.
      const busy = out.stdout.length > 0 || Date.now() - lastInput < 2000;
      await new Promise((r) => setTimeout(r, busy ? 15 : 150));
    }
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    stdin.removeAllListeners("data");
    await b.signalProcess(ref, p.processId, "KILL").catch(() => undefined);
  }
}

export function shellCommand(): Command {
  return new Command("shell")
    .description(
      "open an interactive shell in a running sandbox (a PTY when stdin is a terminal; otherwise stdin is run as a script)",
    )
    .argument("<sandbox>", "sandbox id or name")
    .option("--shell <program>", "shell to start, falling back to sh", "bash")
    .action(async (ref: string, f: { shell: string }) =>
      runVerb(false, async (b) => {
        if (process.stdin.isTTY && process.stdout.isTTY) return interactive(b, ref, f.shell);
        const r = await b.exec(ref, { argv: ["sh", "-s"], stdin: readStdin() }, terminalStream(false));
        return r.exitCode;
      }),
    );
}
