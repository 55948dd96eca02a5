/**
 * The host driver: commands run as ordinary host processes in the workspace directory. It gives
 * NO isolation, so the service refuses it unless the caller opts in (`--allow-host`).
 */
import { mkdirSync } from "node:fs";
import { join, relative } from "node:path";
import type {
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
  CallOptions,
} from "../../core/driver.js";
import { InvalidStateError, NotSupportedError } from "../../core/errors.js";
import { runProcess } from "../../core/spawn.js";

/** Maps a sandbox path to the host: `/workspace/...` is the workspace directory, other paths are the host's. */
export function hostPathOf(workspaceDir: string, sandboxPath: string): string {
  const rel = relative("/workspace", sandboxPath);
  if (rel === "" || (!rel.startsWith("..") && !rel.startsWith("/"))) return join(workspaceDir, rel);
  return sandboxPath;
}

class HostInstance implements RuntimeInstance {
  readonly driver = "host";
  private started: boolean;

  constructor(
    readonly id: string,
    private readonly config: RuntimeConfig,
    state: PersistedState | null,
  ) {
    this.started = state?.started === true;
  }

  persistedState(): PersistedState {
    return { started: this.started };
  }

  async start(): Promise<void> {
    mkdirSync(this.config.workspaceDir, { recursive: true });
    this.started = true;
  }

  async exec(spec: ExecSpec, options: CallOptions = {}): Promise<ExecOutcome> {
    if (!this.started) {
      throw new InvalidStateError(`sandbox ${this.id} is not running`, {
        hint: `start it with \`warren start ${this.id}\``,
      });
    }
    return runProcess({
      command: spec.argv[0],
      args: spec.argv.slice(1),
      cwd: hostPathOf(this.config.workspaceDir, spec.cwd ?? "/workspace"),
      env: {
        PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
        HOME: this.config.workspaceDir,
        WARREN_WORKSPACE: this.config.workspaceDir,
        ...this.config.env,
        ...spec.env,
      },
      detached: true,
      stdin: spec.stdin,
      timeoutMs: spec.timeoutMs ?? options.timeoutMs,
      maxOutputBytes: spec.maxOutputBytes ?? 1048576,
      signal: options.signal,
      onStdout: spec.onStdout,
      onStderr: spec.onStderr,
      killTree: async (pid) => {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          /* group already gone */
        }
      },
    });
  }

  async isHealthy(): Promise<boolean> {
    return this.started;
  }

  async stop(): Promise<void> {
    this.started = false;
  }

  async destroy(): Promise<void> {
    this.started = false;
  }

  async logs(): Promise<string> {
    return "";
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

/** Driver that runs commands directly on the host. */
export class HostDriver implements RuntimeDriver {
  readonly name = "host";
  readonly capabilities: DriverCapabilities = {
    isolation: "none",
    networkPolicies: ["host"],
    limits: { memory: false, pids: false, cpu: false },
    rootfsEnvironments: false,
    persistentInstances: true,
    posixShell: true,
  };

  async probe(): Promise<ProbeResult> {
    return { usable: true, reason: "always available; gives no isolation and needs --allow-host" };
  }

  private check(config: RuntimeConfig): void {
    if (config.environment.rootfsPath !== null) {
      throw new NotSupportedError(`the host driver cannot run environment "${config.environment.name}"`, {
        hint: "use --env host, or the bwrap driver for root-filesystem environments",
      });
    }
  }

  async createInstance(id: string, config: RuntimeConfig): Promise<RuntimeInstance> {
    this.check(config);
    return new HostInstance(id, config, null);
  }

  async attach(id: string, config: RuntimeConfig, state: PersistedState): Promise<RuntimeInstance> {
    return new HostInstance(id, config, state);
  }

  async cleanupStaleResources(): Promise<CleanupReport> {
    return { removed: [] };
  }
}

/** Registers the host driver. */
export const hostDriverFactory: DriverFactory = {
  name: "host",
  description: "host processes in the workspace directory; NO isolation (needs --allow-host)",
  requiresOptIn: true,
  create: () => new HostDriver(),
};
