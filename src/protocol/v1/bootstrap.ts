/**
 * The bootstrap handshake, like a container runtime's shim: Warren spawns the driver binary and
 * writes one JSON line on its stdin, `{ protocolVersion, stateDir, logLevel }`; the driver starts
 * serving protocol v1 on a Unix socket of its choice and answers one JSON line on stdout,
 * `{ protocolVersion, socket, capabilities }` (or `{ protocolVersion, error: { code, message } }`).
 * Warren keeps the driver's stdin open for as long as it uses the driver: end of file on stdin
 * tells the driver that Warren is gone, and it exits. Both halves are here.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { lstatSync, rmSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import type { DriverCapabilities } from "../../core/driver.js";
import { DriverUnavailableError, InvalidArgumentError, type WarrenError } from "../../core/errors.js";
import type { LogLevel } from "../../core/log.js";
import { PROTOCOL_VERSION } from "./wire.js";

/** What Warren writes on the driver's stdin. */
export interface BootstrapHello {
  protocolVersion: number;
  stateDir: string;
  logLevel: LogLevel;
}

/** What the driver answers on stdout. */
export interface BootstrapAnswer {
  protocolVersion: number;
  /** Absolute path of the Unix socket the driver serves on (unset with `error`). */
  socket?: string;
  capabilities?: DriverCapabilities;
  /** Why the driver refuses to serve (e.g. it does not speak Warren's protocol version). */
  error?: { code: string; message: string };
}

/** The longest line either side reads. */
const MAX_LINE = 64 * 1024;

/** Reads one line from a stream; rejects on end of stream, an overlong line, or after `timeoutMs`. */
export function readLine(input: Readable, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const done = (err: Error | null, line?: string): void => {
      clearTimeout(timer);
      input.off("data", onData);
      input.off("end", onEnd);
      input.off("error", onEnd);
      if (err) reject(err);
      else resolve(line!);
    };
    const onData = (chunk: Buffer | string): void => {
      buf += chunk.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) done(null, buf.slice(0, nl));
      else if (buf.length > MAX_LINE) done(new Error(`${what} is longer than ${MAX_LINE} bytes`));
    };
    const onEnd = (): void => done(new Error(`${what} never came (end of stream)`));
    const timer = setTimeout(() => done(new Error(`${what} did not come within ${timeoutMs} ms`)), timeoutMs);
    input.on("data", onData);
    input.once("end", onEnd);
    input.once("error", onEnd);
  });
}

/** A driver process Warren spawned and handshook with. */
export interface SpawnedDriver {
  readonly socket: string;
  readonly capabilities: DriverCapabilities;
  readonly pid: number;
  /** Why the process is gone (exit code or signal), or null while it runs. */
  lost(): string | null;
  /** Resolves with `lost()` once the process exited, or null if it still runs after `ms`. */
  waitLost(ms: number): Promise<string | null>;
  /** Closes its stdin, then SIGTERM, then SIGKILL after 3 s; resolves once it exited. */
  close(): Promise<void>;
}

/** How a process ended, in words. */
function endOf(child: ChildProcess): string | null {
  if (child.exitCode !== null) return `the driver process exited with code ${child.exitCode}`;
  if (child.signalCode !== null) return `the driver process was killed by ${child.signalCode}`;
  return null;
}

/**
 * Spawns `command`, sends the hello line and waits for the answer.
 * @throws DriverUnavailableError when the process cannot start, exits, answers late, answers an
 *   error, or speaks another protocol version (the process is then stopped).
 */
export async function spawnDriver(
  name: string,
  command: string[],
  hello: BootstrapHello,
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<SpawnedDriver> {
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ["pipe", "pipe", "inherit"],
    env: options.env ?? process.env,
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const spawnFailed = new Promise<never>((_, reject) => child.once("error", reject));
  spawnFailed.catch(() => undefined);
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin!.end();
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(killer);
  };
  const fail = (message: string, hint: string, cause?: unknown): WarrenError =>
    new DriverUnavailableError(`driver ${name}: ${message}`, {
      hint,
      details: { driver: name, command },
      cause,
    });
  let answer: BootstrapAnswer;
  try {
    child.stdin!.on("error", () => undefined);
    child.stdin!.write(JSON.stringify(hello) + "\n");
    const line = await Promise.race([
      readLine(child.stdout!, options.timeoutMs ?? 15000, "the driver's handshake answer"),
      spawnFailed,
    ]);
    answer = JSON.parse(line) as BootstrapAnswer;
  } catch (err) {
    await close();
    const why = endOf(child) ?? String(err instanceof Error ? err.message : err);
    throw fail(
      `the bootstrap handshake failed: ${why}`,
      `run \`${command.join(" ")}\` by hand to see its errors`,
      err,
    );
  }
  if (answer.error || answer.protocolVersion !== PROTOCOL_VERSION || typeof answer.socket !== "string") {
    await close();
    if (answer.protocolVersion !== PROTOCOL_VERSION) throw versionMismatch(name, answer.protocolVersion);
    throw fail(
      `the driver refused to serve: ${answer.error?.message ?? "its answer names no socket"}`,
      "see the driver's own log on stderr",
    );
  }
  // A driver killed by a signal cannot remove its socket: Warren does, once the process is gone.
  const socket = answer.socket;
  void exited.then(() => {
    try {
      if (lstatSync(socket).isSocket()) rmSync(socket);
    } catch {
      /* already gone */
    }
  });
  // Warren no longer reads stdout; drain it so a chatty driver never blocks. The pipes must not
  // keep this process alive: when it exits, the driver sees end of file on stdin and stops.
  child.stdout!.resume();
  child.unref();
  for (const s of [child.stdin, child.stdout] as Array<(Writable | Readable) & { unref?: () => void }>)
    s.unref?.();
  return {
    socket,
    capabilities: answer.capabilities!,
    pid: child.pid!,
    lost: () => endOf(child),
    async waitLost(ms) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, ms)))]);
      clearTimeout(timer);
      return endOf(child);
    },
    close,
  };
}

/** The error for a driver that speaks another protocol version. */
export function versionMismatch(name: string, theirs: unknown): DriverUnavailableError {
  return new DriverUnavailableError(
    `driver ${name} speaks driver protocol version ${String(theirs)}, but this Warren speaks version ${PROTOCOL_VERSION}`,
    {
      hint: `use a build of the driver for protocol v${PROTOCOL_VERSION} (see docs/driver-protocol.md)`,
      details: { driver: name, expected: PROTOCOL_VERSION, got: theirs },
    },
  );
}

/**
 * The driver's half, step one: reads and checks Warren's hello line.
 * @throws InvalidArgumentError when the line is not a hello or names another protocol version
 *   (answer it with `answerBootstrap({ protocolVersion, error })` and exit).
 */
export async function readHello(input: Readable, timeoutMs = 15000): Promise<BootstrapHello> {
  let hello: Partial<BootstrapHello>;
  try {
    hello = JSON.parse(
      await readLine(input, timeoutMs, "Warren's handshake line"),
    ) as Partial<BootstrapHello>;
  } catch (err) {
    throw new InvalidArgumentError(`bad handshake line on stdin: ${(err as Error).message}`, { cause: err });
  }
  if (hello.protocolVersion !== PROTOCOL_VERSION) {
    throw new InvalidArgumentError(
      `Warren asked for driver protocol version ${String(hello.protocolVersion)}; this driver speaks ${PROTOCOL_VERSION}`,
      { details: { expected: PROTOCOL_VERSION, got: hello.protocolVersion } },
    );
  }
  if (typeof hello.stateDir !== "string" || hello.stateDir === "") {
    throw new InvalidArgumentError("the handshake line names no stateDir");
  }
  return { protocolVersion: PROTOCOL_VERSION, stateDir: hello.stateDir, logLevel: hello.logLevel ?? "warn" };
}

/** The driver's half, step two: writes the answer line. */
export function answerBootstrap(answer: BootstrapAnswer, out: Writable = process.stdout): void {
  out.write(JSON.stringify(answer) + "\n");
}
