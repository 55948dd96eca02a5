/**
 * `sandbox.commands`: run a command and get its result, or start it in the background and get a
 * handle. A string runs through `/bin/sh -c`; an array is the argv itself. A non-zero exit code
 * (or a timeout) is a result, never an exception.
 */
import { StringDecoder } from "node:string_decoder";
import { InvalidArgumentError, InvalidStateError } from "../core/errors.js";
import type { ProcessInfo, ProcessOutput, ProcessState } from "../core/types.js";
import type { Backend } from "./backend.js";

/** How the SDK objects of one sandbox reach it. */
export interface SandboxContext {
  /** The sandbox id. */
  readonly ref: string;
  /** The backend; throws InvalidStateError once the Sandbox is closed. */
  backend(): Backend;
}

/** A command: a shell line (run by `/bin/sh -c`) or an argv. */
export type CommandSpec = string | readonly string[];

/** Output callbacks; chunks are decoded as UTF-8 (a character split across chunks is kept whole). */
export interface OutputCallbacks {
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
}

/** Options of `commands.run`. */
export interface RunOptions extends OutputCallbacks {
  /** Working directory in the sandbox. @default "/workspace" */
  cwd?: string;
  /** Environment variables, over the sandbox's own. */
  envs?: Record<string, string>;
  /** Kill the command after this long; the result then has `timedOut: true`. Foreground only. */
  timeoutMs?: number;
  /** Standard input of the command. Foreground only (use `sendStdin` on a handle). */
  stdin?: string | Uint8Array;
  /** Aborts a foreground command. */
  signal?: AbortSignal;
  /** Start the command and return a handle instead of waiting. @default false */
  background?: boolean;
}

/** Result of a foreground command. */
export interface CommandResult {
  /** Exit code; 128+N when killed by signal N. */
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** Its entry in the sandbox's journal. */
  sequence: number;
  /** Whether `timeoutMs` ran out and the command was killed. */
  timedOut: boolean;
  /** Whether output beyond the configured maximum was cut (callbacks still saw all of it). */
  truncated: boolean;
}

/** How a background process ended. */
export interface ProcessResult {
  processId: string;
  state: ProcessState;
  /** Exit code; 128+N when killed by signal N; null when the process was lost. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Turns a command into an argv. @throws InvalidArgumentError for an empty command */
export function toArgv(command: CommandSpec): string[] {
  if (typeof command === "string") {
    if (command.trim() === "")
      throw new InvalidArgumentError("the command is empty", { hint: "pass a shell line" });
    return ["/bin/sh", "-c", command];
  }
  if (!Array.isArray(command) || command.length === 0 || command.some((a) => typeof a !== "string")) {
    throw new InvalidArgumentError("the command must be a string or a non-empty array of strings", {
      hint: 'e.g. "ls -l" or ["ls", "-l"]',
    });
  }
  return [...command];
}

/** Buffer callbacks for a backend, decoding to strings; `end` flushes a trailing partial character. */
function decoding(callbacks: OutputCallbacks): {
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  end(): void;
} {
  const wrap = (fn?: (data: string) => void) => {
    if (!fn) return { on: undefined, end: () => {} };
    const decoder = new StringDecoder("utf8");
    return {
      on: (chunk: Buffer) => {
        const text = decoder.write(chunk);
        if (text) fn(text);
      },
      end: () => {
        const rest = decoder.end();
        if (rest) fn(rest);
      },
    };
  };
  const out = wrap(callbacks.onStdout);
  const err = wrap(callbacks.onStderr);
  return {
    onStdout: out.on,
    onStderr: err.on,
    end: () => {
      out.end();
      err.end();
    },
  };
}

/** A background process. Get one from `commands.run(cmd, { background: true })` or `commands.connect`. */
export class CommandHandle {
  private streaming: { done: Promise<unknown>; abort: AbortController } | null = null;

  /** @internal */
  constructor(
    private readonly ctx: SandboxContext,
    private last: ProcessInfo,
  ) {}

  /** Short id, unique in its sandbox. */
  get processId(): string {
    return this.last.processId;
  }
  /** Its entry in the sandbox's journal. */
  get sequence(): number {
    return this.last.sequence;
  }
  /** What was last seen of the process (see `refresh`). */
  get info(): ProcessInfo {
    return this.last;
  }

  /** Fetches the process's current state. */
  async refresh(): Promise<ProcessInfo> {
    return (this.last = await this.ctx.backend().getProcess(this.ctx.ref, this.processId));
  }

  /**
   * Streams output (from the start unless offsets say otherwise) until the process ends or the
   * signal aborts; returns the process's state then.
   */
  async attach(
    options: OutputCallbacks & { signal?: AbortSignal; stdoutOffset?: number; stderrOffset?: number } = {},
  ): Promise<ProcessInfo> {
    const cb = decoding(options);
    try {
      this.last = await this.ctx.backend().attachProcess(this.ctx.ref, this.processId, {
        onStdout: cb.onStdout,
        onStderr: cb.onStderr,
        signal: options.signal,
        stdoutOffset: options.stdoutOffset,
        stderrOffset: options.stderrOffset,
      });
    } finally {
      cb.end();
    }
    return this.last;
  }

  /** @internal Streams to the callbacks in the background until the process ends or `disconnect`. */
  stream(callbacks: OutputCallbacks): void {
    const abort = new AbortController();
    // Errors surface through wait(), which fails the same way; a stream's own failure is not lost
    // output that the caller can do anything about.
    const done = this.attach({ ...callbacks, signal: abort.signal }).catch(() => undefined);
    this.streaming = { done, abort };
  }

  /** Stops delivering output to the callbacks given at `run`; the process keeps running. */
  disconnect(): void {
    this.streaming?.abort.abort();
    this.streaming = null;
  }

  /**
   * Waits until the process ends and returns its exit code and all its output (after the
   * streaming callbacks, if any, have seen all of it).
   * @throws TimeoutError when it still runs after `timeoutMs`
   */
  async wait(options: { timeoutMs?: number } = {}): Promise<ProcessResult> {
    this.last = await this.ctx.backend().waitProcess(this.ctx.ref, this.processId, options);
    await this.streaming?.done;
    const out = await this.output();
    return {
      processId: this.processId,
      state: this.last.state,
      exitCode: this.last.exitCode,
      stdout: out.stdout.toString("utf8"),
      stderr: out.stderr.toString("utf8"),
    };
  }

  /** Output so far from byte offsets (0 = from the start), without waiting. */
  output(offsets: { stdoutOffset?: number; stderrOffset?: number } = {}): Promise<ProcessOutput> {
    return this.ctx.backend().processOutput(this.ctx.ref, this.processId, offsets);
  }

  /** Writes to the process's standard input. @throws InvalidStateError once stdin is closed */
  sendStdin(data: string | Uint8Array): Promise<void> {
    return this.ctx.backend().writeStdin(this.ctx.ref, this.processId, data);
  }

  /** Closes standard input: the process reads end-of-file. */
  closeStdin(): Promise<void> {
    return this.ctx.backend().closeStdin(this.ctx.ref, this.processId);
  }

  /**
   * Sends a signal to the process's whole process group and returns at once.
   * @throws InvalidArgumentError (unknown signal), InvalidStateError (no longer running)
   */
  async signal(signal = "SIGTERM"): Promise<ProcessInfo> {
    return (this.last = await this.ctx.backend().signalProcess(this.ctx.ref, this.processId, signal));
  }

  /**
   * Kills the process group (SIGKILL) and waits until it has ended. A process that already ended
   * is left as it is.
   * @throws TimeoutError when it has not ended after `timeoutMs`
   * @default timeoutMs 10000
   */
  async kill(options: { timeoutMs?: number } = {}): Promise<ProcessInfo> {
    try {
      await this.signal("SIGKILL");
    } catch (err) {
      if (!(err instanceof InvalidStateError)) throw err;
    }
    this.last = await this.ctx.backend().waitProcess(this.ctx.ref, this.processId, {
      timeoutMs: options.timeoutMs ?? 10000,
    });
    return this.last;
  }
}

/** Commands of one sandbox: `sandbox.commands`. */
export class Commands {
  /** @internal */
  constructor(private readonly ctx: SandboxContext) {}

  /** Starts a command in the background and returns a handle to it. */
  run(command: CommandSpec, options: RunOptions & { background: true }): Promise<CommandHandle>;
  /** Runs a command and waits for its result. A non-zero exit is a result, not an error. */
  run(command: CommandSpec, options?: RunOptions & { background?: false }): Promise<CommandResult>;
  /** Runs a command, or starts it when `background` is true. */
  run(command: CommandSpec, options?: RunOptions): Promise<CommandResult | CommandHandle>;
  /**
   * Runs a command: waits for its result, or with `background: true` returns a handle at once.
   * @throws InvalidArgumentError (empty command, bad cwd or env), InvalidStateError (the sandbox
   *   is not running), NotFoundError (the sandbox is gone)
   */
  async run(command: CommandSpec, options: RunOptions = {}): Promise<CommandResult | CommandHandle> {
    const argv = toArgv(command);
    const { cwd, envs: env } = options;
    if (options.background) {
      for (const [field, value] of [
        ["timeoutMs", options.timeoutMs],
        ["stdin", options.stdin],
        ["signal", options.signal],
      ] as const) {
        if (value !== undefined) {
          throw new InvalidArgumentError(`${field} applies to foreground commands only`, {
            hint: "on a background handle use wait({ timeoutMs }), sendStdin() and kill()",
          });
        }
      }
      const info = await this.ctx.backend().startProcess(this.ctx.ref, { argv, cwd, env });
      const handle = new CommandHandle(this.ctx, info);
      if (options.onStdout || options.onStderr) handle.stream(options);
      return handle;
    }
    const cb = decoding(options);
    try {
      const r = await this.ctx
        .backend()
        .exec(
          this.ctx.ref,
          { argv, cwd, env, stdin: options.stdin, timeoutMs: options.timeoutMs },
          { onStdout: cb.onStdout, onStderr: cb.onStderr, signal: options.signal },
        );
      return {
        exitCode: r.exitCode,
        stdout: r.stdout,
        stderr: r.stderr,
        durationMs: r.durationMs,
        sequence: r.sequence,
        timedOut: r.timedOut,
        truncated: r.truncated,
      };
    } finally {
      cb.end();
    }
  }

  /** A handle to a background process started earlier (by id, e.g. `p3`). @throws NotFoundError */
  async connect(processId: string): Promise<CommandHandle> {
    return new CommandHandle(this.ctx, await this.ctx.backend().getProcess(this.ctx.ref, processId));
  }

  /** The sandbox's background processes, running or ended. */
  list(): Promise<ProcessInfo[]> {
    return this.ctx.backend().listProcesses(this.ctx.ref);
  }
}
