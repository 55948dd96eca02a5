/**
 * The fake driver: sandboxes that live in this process's memory, for fast tests of the service and
 * front ends. It passes the conformance behaviours its capabilities claim.
 */
import type {
  CallOptions,
  CleanupReport,
  DriverCapabilities,
  DriverFactory,
  ExecOutcome,
  ExecSpec,
  PersistedState,
  ProbeResult,
  RuntimeConfig,
  RuntimeDriver,
  RuntimeInstance,
} from "../../core/driver.js";
import { InvalidStateError, NotSupportedError } from "../../core/errors.js";
import { TIMEOUT_EXIT_CODE } from "../../core/spawn.js";
import { runFakeCommand, type FakeFiles } from "./commands.js";

/** Workspaces outlive instances (as a host directory would), keyed by workspace path. */
const workspaces = new Map<string, FakeFiles>();
/** Running instances, so `attach` in the same process sees them. */
const running = new Set<string>();

class FakeInstance implements RuntimeInstance {
  readonly driver = "fake";
  constructor(
    readonly id: string,
    private readonly config: RuntimeConfig,
  ) {}

  persistedState(): PersistedState {
    return {};
  }

  async start(): Promise<void> {
    if (!workspaces.has(this.config.workspaceDir)) workspaces.set(this.config.workspaceDir, new Map());
    running.add(this.id);
  }

  async exec(spec: ExecSpec, options: CallOptions = {}): Promise<ExecOutcome> {
    if (!running.has(this.id)) {
      throw new InvalidStateError(`sandbox ${this.id} is not running`, {
        hint: `start it with \`warren start ${this.id}\``,
      });
    }
    if (spec.detach) {
      throw new NotSupportedError("the fake driver cannot leave processes running in the background", {
        hint: "use the bwrap or host driver for background processes",
      });
    }
    const started = performance.now();
    const stdin = spec.stdin === undefined ? "" : Buffer.from(spec.stdin).toString("utf8");
    const r = runFakeCommand(spec.argv, {
      cwd: spec.cwd ?? "/workspace",
      env: { ...this.config.env, ...spec.env },
      stdin,
      files: workspaces.get(this.config.workspaceDir)!,
    });
    const timeoutMs = spec.timeoutMs ?? options.timeoutMs;
    const timedOut = timeoutMs !== undefined && r.sleepMs > timeoutMs;
    const waitMs = timedOut ? timeoutMs! : r.sleepMs;
    if (waitMs > 0) await new Promise((res) => setTimeout(res, waitMs));
    const cap = spec.maxOutputBytes ?? 1048576;
    const out = Buffer.from(timedOut ? "" : r.stdout);
    const err = Buffer.from(timedOut ? "" : r.stderr);
    if (out.length) spec.onStdout?.(out.subarray(0, cap));
    if (err.length) spec.onStderr?.(err.subarray(0, cap));
    return {
      exitCode: timedOut ? TIMEOUT_EXIT_CODE : r.exitCode,
      stdout: out.subarray(0, cap),
      stderr: err.subarray(0, cap),
      timedOut,
      truncated: out.length > cap || err.length > cap,
      durationMs: performance.now() - started,
    };
  }

  async isHealthy(): Promise<boolean> {
    return running.has(this.id);
  }

  async stop(): Promise<void> {
    running.delete(this.id);
  }

  async destroy(): Promise<void> {
    running.delete(this.id);
  }

  async logs(): Promise<string> {
    return "";
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

/** In-memory driver for tests. */
export class FakeDriver implements RuntimeDriver {
  readonly name = "fake";
  readonly capabilities: DriverCapabilities = {
    isolation: "none",
    networkPolicies: ["none", "host"],
    limits: { memory: false, pids: false, cpu: false },
    rootfsEnvironments: false,
    persistentInstances: false,
    posixShell: false,
  };

  async probe(): Promise<ProbeResult> {
    return { usable: true, reason: "in-memory test driver" };
  }

  async createInstance(id: string, config: RuntimeConfig): Promise<RuntimeInstance> {
    return new FakeInstance(id, config);
  }

  async attach(id: string, config: RuntimeConfig): Promise<RuntimeInstance> {
    return new FakeInstance(id, config);
  }

  async cleanupStaleResources(): Promise<CleanupReport> {
    return { removed: [] };
  }
}

/** Registers the fake driver. */
export const fakeDriverFactory: DriverFactory = {
  name: "fake",
  description: "in-memory test driver; runs a few built-in commands, no real processes",
  requiresOptIn: false,
  create: () => new FakeDriver(),
};
