/**
 * The driver contract. Only plain data and opaque ids cross it; a driver never hands out its
 * backend's own objects. Optional features are capabilities: a driver that lacks one throws
 * NotSupportedError instead of ignoring the option.
 */
import type { IsolationLevel, NetworkPolicy } from "./types.js";

/** Options every async driver call accepts. */
export interface CallOptions {
  /** Abort the call. */
  signal?: AbortSignal;
  /** Give up after this many milliseconds. */
  timeoutMs?: number;
}

/** What a driver can do. */
export interface DriverCapabilities {
  /** Isolation the driver gives. */
  isolation: IsolationLevel;
  /** Network policies the driver can enforce. */
  networkPolicies: NetworkPolicy[];
  /** Limits the driver really enforces. */
  limits: { memory: boolean; pids: boolean; cpu: boolean };
  /** Whether the driver runs root-filesystem environments (not only the host view). */
  rootfsEnvironments: boolean;
  /** Whether instances survive the process that created them (re-bound with `attach`). */
  persistentInstances: boolean;
  /**
   * Whether `exec` runs POSIX shell scripts with GNU coreutils, findutils and tar, and supports
   * `detach`: the file and background-process services are built on it.
   */
  posixShell: boolean;
}

/** Outcome of a driver's probe: usable here, or why not and how to fix it. */
export interface ProbeResult {
  usable: boolean;
  /** One line: what was found. */
  reason: string;
  /** How to make the driver usable, when it is not. */
  hint?: string;
  /** Facts found while probing (versions, cgroup mode). */
  details?: Record<string, unknown>;
}

/** The environment (root filesystem) a sandbox runs in. */
export interface EnvironmentRef {
  /** Catalog name, e.g. `host` or `debian-bookworm`. */
  name: string;
  /** Host path of an unpacked root filesystem, or null for a read-only view of the host. */
  rootfsPath: string | null;
}

/** Driver-neutral configuration of one sandbox instance. */
export interface RuntimeConfig {
  /** Host directory that becomes /workspace (read-write). */
  workspaceDir: string;
  /** Root filesystem to use. */
  environment: EnvironmentRef;
  /** Hostname inside the sandbox. */
  hostname: string;
  /** Environment variables for every command. */
  env: Record<string, string>;
  vcpuCount: number;
  memoryMiB: number;
  pidsMax: number;
  network: NetworkPolicy;
  /** How long start() may wait for the instance to be healthy. */
  healthTimeoutMs: number;
}

/** One command to run in an instance. */
export interface ExecSpec {
  /** Program and arguments; no shell unless argv says so. */
  argv: string[];
  /** Working directory inside the sandbox. @default "/workspace" */
  cwd?: string;
  /** Extra environment variables (over the sandbox's). */
  env?: Record<string, string>;
  /** Data written to the command's stdin, which is then closed. */
  stdin?: string | Uint8Array;
  /** Kill the command and its whole process tree after this long. */
  timeoutMs?: number;
  /** Keep at most this many bytes of each stream in the result. @default 1048576 */
  maxOutputBytes?: number;
  /** Sequence number in the journal; drivers use it to label the command's resources. */
  sequence?: number;
  /** Called with each chunk of stdout as it is produced. */
  onStdout?: (chunk: Buffer) => void;
  /** Called with each chunk of stderr as it is produced. */
  onStderr?: (chunk: Buffer) => void;
  /**
   * Leave processes the command started in the background running after it returns (they end
   * with the sandbox). Without it, a command's leftovers are killed when it ends. Needs the
   * `posixShell` capability.
   */
  detach?: boolean;
}

/** What a driver returns for a finished command. */
export interface ExecOutcome {
  /** Exit code; 128+N when killed by signal N; 124 when timed out. */
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  /** True when a stream was cut at maxOutputBytes. */
  truncated: boolean;
  durationMs: number;
}

/** Opaque JSON the driver asks the store to keep, to re-bind with `attach` later. */
export type PersistedState = Record<string, unknown>;

/** Report of cleanupStaleResources. */
export interface CleanupReport {
  /** Human-readable list of what was removed. */
  removed: string[];
}

/** One sandbox instance, as the driver runs it. */
export interface RuntimeInstance extends AsyncDisposable {
  readonly id: string;
  readonly driver: string;
  /** Start the instance; resolves once it is healthy. */
  start(options?: CallOptions): Promise<void>;
  /** Run a command; output streams through the spec's callbacks. */
  exec(spec: ExecSpec, options?: CallOptions): Promise<ExecOutcome>;
  /** Whether the instance is running and answers. */
  isHealthy(options?: CallOptions): Promise<boolean>;
  /** Stop gracefully, then by force after the grace period. Keeps the workspace. */
  stop(options?: CallOptions & { graceMs?: number }): Promise<void>;
  /** Remove everything the instance made on the host except the workspace. Idempotent. */
  destroy(options?: CallOptions): Promise<void>;
  /** The instance's own log (not command output). */
  logs(options?: CallOptions): Promise<string>;
  /** State to persist so a later process can `attach`. */
  persistedState(): PersistedState;
}

/** What a driver's cleanup needs to know from the service. */
export interface CleanupContext {
  /** Sandboxes whose resources must be kept (running or being created by a live process). */
  keepSandboxIds: ReadonlySet<string>;
}

/** A runtime back end. */
export interface RuntimeDriver {
  readonly name: string;
  readonly capabilities: DriverCapabilities;
  /** Whether this driver can run here; if not, why and how to fix it. */
  probe(options?: CallOptions): Promise<ProbeResult>;
  /** Make an unstarted instance. */
  createInstance(id: string, config: RuntimeConfig, options?: CallOptions): Promise<RuntimeInstance>;
  /** Re-bind to an instance made by an earlier process. */
  attach(
    id: string,
    config: RuntimeConfig,
    state: PersistedState,
    options?: CallOptions,
  ): Promise<RuntimeInstance>;
  /** Remove orphaned processes, cgroups and mounts left by a crash. */
  cleanupStaleResources(context: CleanupContext, options?: CallOptions): Promise<CleanupReport>;
}

/** Options a driver factory receives. */
export interface DriverFactoryOptions {
  /** Warren's state directory; drivers keep their own files under `<stateDir>/drivers/<name>`. */
  stateDir: string;
  /** Host uid that sandboxed processes run as, for drivers that drop privileges. */
  sandboxUid: number;
}

/** Registers a driver under a name. */
export interface DriverFactory {
  readonly name: string;
  /** One line for `doctor` and `--help`. */
  readonly description: string;
  /** Whether using the driver needs an explicit opt-in (the host driver). */
  readonly requiresOptIn: boolean;
  create(options: DriverFactoryOptions): RuntimeDriver;
}
