/** Runs the real `warren` binary (compiled) as a child process against a given state dir. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Path of the compiled CLI entry point. */
export const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

/** Result of one CLI call. */
export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Environment for CLI calls on `stateDir`. */
export function cliEnv(stateDir: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: stateDir, WARREN_HOME: stateDir, WARREN_LOG_LEVEL: "silent" };
}

/** Runs `warren ...args` to completion. */
export function cli(stateDir: string, args: string[], input?: string): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: cliEnv(stateDir),
    encoding: "utf8",
    input,
    timeout: 60000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `warren ... --json` and parses stdout. */
export function cliJson<T = unknown>(stateDir: string, args: string[]): T & { __status: number } {
  const dash = args.indexOf("--");
  const withJson =
    dash === -1 ? [...args, "--json"] : [...args.slice(0, dash), "--json", ...args.slice(dash)];
  const r = cli(stateDir, withJson);
  try {
    return Object.assign(JSON.parse(r.stdout), { __status: r.status });
  } catch {
    throw new Error(
      `warren ${args.join(" ")} --json printed no JSON (status ${r.status}): ${r.stdout}${r.stderr}`,
    );
  }
}

/** Starts `warren ...args` without waiting. */
export function cliSpawn(stateDir: string, args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], {
    env: cliEnv(stateDir),
    stdio: ["ignore", "pipe", "pipe"],
  });
}
