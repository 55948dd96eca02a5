/**
 * The instance proxy of protocol v1: a RuntimeInstance whose every call goes to the driver
 * process. It keeps the instance's config and last persisted state, so when the driver answers
 * that it does not know the instance (it restarted), the proxy attaches it again and retries once.
 */
import type {
  CallOptions,
  ExecOutcome,
  ExecSpec,
  PersistedState,
  RuntimeConfig,
  RuntimeInstance,
} from "../../core/driver.js";
import { InternalError, WarrenError } from "../../core/errors.js";
import type { ExternalDriver } from "./client.js";
import { stateFromWire } from "./wire.js";

/** Keeps the first `cap` bytes of a stream. */
class Kept {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    const room = this.cap - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(part);
    this.size += part.length;
  }
  value(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Whether an error says the driver process does not know the instance. */
function instanceUnknown(err: unknown): boolean {
  return err instanceof WarrenError && err.code === "NOT_FOUND" && err.details?.instanceUnknown === true;
}

interface WireExit {
  exitCode: number;
  timedOut: boolean;
  truncated: boolean;
  durationMs: number;
}

/** One instance of an out-of-process driver. */
export class ExternalInstance implements RuntimeInstance {
  readonly driver: string;

  constructor(
    private readonly owner: ExternalDriver,
    readonly id: string,
    private readonly config: RuntimeConfig,
    private state: PersistedState,
  ) {
    this.driver = owner.name;
  }

  persistedState(): PersistedState {
    return { ...this.state };
  }

  /** Binds the instance in the driver process from the config and the last state. */
  async attach(o: CallOptions = {}): Promise<void> {
    this.state = await this.owner.attachRemote(this.id, this.config, this.state, o);
  }

  /** Runs `fn`; if the driver does not know the instance, attaches it and runs `fn` once more. */
  private async bound<T>(o: CallOptions, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!instanceUnknown(err)) throw err;
      await this.attach(o);
      return fn();
    }
  }

  private async call(method: string, o: CallOptions, extra: object = {}): Promise<void> {
    const r = await this.bound(o, () =>
      this.owner.unary<{ stateJson: Buffer }>(method, { instanceId: this.id, ...extra }, o),
    );
    this.state = stateFromWire(r.stateJson);
  }

  start(options: CallOptions = {}): Promise<void> {
    return this.call("Start", options);
  }

  stop(options: CallOptions & { graceMs?: number } = {}): Promise<void> {
    const { graceMs, ...o } = options;
    return this.call("Stop", o, graceMs === undefined ? {} : { graceMs });
  }

  destroy(options: CallOptions = {}): Promise<void> {
    return this.call("Destroy", options);
  }

  async isHealthy(options: CallOptions = {}): Promise<boolean> {
    const r = await this.bound(options, () =>
      this.owner.unary<{ healthy: boolean }>("Health", { instanceId: this.id }, options),
    );
    return r.healthy;
  }

  async logs(options: CallOptions = {}): Promise<string> {
    const r = await this.bound(options, () =>
      this.owner.unary<{ text: string }>("Logs", { instanceId: this.id }, options),
    );
    return r.text;
  }

  async exec(spec: ExecSpec, options: CallOptions = {}): Promise<ExecOutcome> {
    const wire: Record<string, unknown> = {
      argv: spec.argv,
      env: spec.env ?? {},
      detach: spec.detach ?? false,
    };
    if (spec.cwd !== undefined) wire.cwd = spec.cwd;
    if (spec.stdin !== undefined) wire.stdin = Buffer.from(spec.stdin);
    if (spec.timeoutMs !== undefined) wire.timeoutMs = spec.timeoutMs;
    if (spec.maxOutputBytes !== undefined) wire.maxOutputBytes = spec.maxOutputBytes;
    if (spec.sequence !== undefined) wire.sequence = spec.sequence;
    const request: Record<string, unknown> = { instanceId: this.id, spec: wire };
    if (options.timeoutMs !== undefined) request.callTimeoutMs = options.timeoutMs;
    const cap = spec.maxOutputBytes ?? 1048576;
    return this.bound(options, async () => {
      const out = new Kept(cap);
      const err = new Kept(cap);
      let exit: WireExit | null = null;
      // No deadline on Exec: the call timeout travels in the request, a timed-out command is a result.
      await this.owner.stream("Exec", request, { signal: options.signal }, (event) => {
        if (event.event === "stdout") {
          const chunk = event.stdout as Buffer;
          out.push(chunk);
          spec.onStdout?.(chunk);
        } else if (event.event === "stderr") {
          const chunk = event.stderr as Buffer;
          err.push(chunk);
          spec.onStderr?.(chunk);
        } else if (event.event === "exit") {
          exit = event.exit as WireExit;
        }
      });
      const done = exit as WireExit | null;
      if (!done) {
        throw new InternalError(`driver ${this.driver} ended Exec without an exit event`, {
          details: { driver: this.driver, sandboxId: this.id },
        });
      }
      return {
        exitCode: done.exitCode,
        stdout: out.value(),
        stderr: err.value(),
        timedOut: done.timedOut,
        truncated: done.truncated || out.truncated || err.truncated,
        durationMs: done.durationMs,
      };
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
