/** Shared by `exec` and `run`: stream output live, or print the result as JSON, and exit with the command's code. */
import { readFileSync } from "node:fs";
import type { ExecResult } from "../../core/types.js";
import type { StreamCallbacks } from "../../sdk/backend.js";
import { printJson } from "../render.js";

/** Callbacks that stream to this terminal unless JSON output is asked for. */
export function terminalStream(json: boolean | undefined): StreamCallbacks {
  return {
    onStdout: json ? undefined : (c) => process.stdout.write(c),
    onStderr: json ? undefined : (c) => process.stderr.write(c),
  };
}

/** Reads all of stdin (for `-i`). */
export function readStdin(): Buffer {
  return readFileSync(0);
}

/** Prints the end of a command and returns the exit status to use. */
export function finishExec(r: ExecResult, json: boolean | undefined): number {
  if (json) printJson(r);
  else if (r.timedOut)
    process.stderr.write(`warren: command timed out after ${Math.round(r.durationMs)} ms and was killed\n`);
  if (!json && r.truncated)
    process.stderr.write("warren: output was longer than the cap; the result and journal keep the start\n");
  return r.exitCode;
}
