/** Shared plumbing of CLI verbs: open Warren, run the verb, render errors, set the exit status. */
import { Command, InvalidArgumentError as UsageError, Option } from "commander";
import type { Backend } from "../sdk/backend.js";
import { resolveBackend } from "../sdk/resolve.js";
import { printError } from "./render.js";

/** Options every verb has. */
export interface GlobalOptions {
  json?: boolean;
}

/** Adds `--json` to a command. */
export function withJson(cmd: Command): Command {
  return cmd.addOption(new Option("--json", 'print one JSON document on stdout (errors as {"error":{...}})'));
}

/**
 * Opens the backend the CLI talks to, resolved like the SDK's: `WARREN_URL` + `WARREN_API_KEY`,
 * then `WARREN_PROFILE`, then the active profile, then local (which runs reconcile and reap
 * first, as on every call).
 */
export async function openBackend(): Promise<Backend> {
  return (await resolveBackend()).backend;
}

/**
 * Runs a verb: opens the backend, calls `fn`, closes, and sets the exit status (the number `fn`
 * returns, or the error's).
 */
export async function runVerb(
  json: boolean | undefined,
  fn: (b: Backend) => Promise<number | void>,
): Promise<void> {
  let backend: Backend | null = null;
  try {
    backend = await openBackend();
    const code = await fn(backend);
    process.exitCode = code ?? 0;
  } catch (err) {
    process.exitCode = printError(err, json === true);
  } finally {
    await backend?.close();
  }
}

/** Parses an integer option. */
export function int(what: string): (value: string) => number {
  return (value: string) => {
    if (!/^-?\d+$/.test(value)) throw new UsageError(`${what} must be an integer, got "${value}"`);
    return Number(value);
  };
}

/** Collects repeated options into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
