/** Shared plumbing of CLI verbs: open Warren, run the verb, render errors, set the exit status. */
import { Command, InvalidArgumentError as UsageError, Option } from "commander";
import { createBuiltinRegistry } from "../drivers/index.js";
import { openWarren, type Warren } from "../service/index.js";
import { printError } from "./render.js";

/** Options every verb has. */
export interface GlobalOptions {
  json?: boolean;
}

/** Adds `--json` to a command. */
export function withJson(cmd: Command): Command {
  return cmd.addOption(new Option("--json", 'print one JSON document on stdout (errors as {"error":{...}})'));
}

/** Opens Warren with the built-in drivers (reconcile and reap run first, as on every call). */
export function open(): Promise<Warren> {
  return openWarren({ registry: createBuiltinRegistry });
}

/**
 * Runs a verb: opens Warren, calls `fn`, closes, and sets the exit status (the number `fn`
 * returns, or the error's).
 */
export async function runVerb(
  json: boolean | undefined,
  fn: (w: Warren) => Promise<number | void>,
): Promise<void> {
  let warren: Warren | null = null;
  try {
    warren = await open();
    const code = await fn(warren);
    process.exitCode = code ?? 0;
  } catch (err) {
    process.exitCode = printError(err, json === true);
  } finally {
    warren?.close();
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
