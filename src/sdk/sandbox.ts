/**
 * The public SDK: `Sandbox`, one object per sandbox, with `commands` and `files`.
 *
 * ```ts
 * await using sbx = await Sandbox.create({ labels: { team: "a" } });
 * const r = await sbx.commands.run("echo hi");
 * ```
 *
 * It talks to whichever Warren `resolveBackend` picks (an explicit `backend` option, then
 * `WARREN_URL`, then profiles, then Warren in this process), and throws the same WarrenError
 * classes whether that Warren is local or remote.
 */
import { InvalidStateError, NotFoundError } from "../core/errors.js";
import type {
  JournalEntry,
  NetworkPolicy,
  OnTimeout,
  Sandbox as SandboxInfo,
  SandboxState,
} from "../core/types.js";
import type { CreateOptions, ListOptions } from "../service/index.js";
import type { Backend } from "./backend.js";
import { Commands, type SandboxContext } from "./commands.js";
import { Files } from "./files.js";
import { leaseBackend, type BackendLease, type BackendSource, type RemoteTarget } from "./resolve.js";

/** Which Warren to talk to. */
export interface ConnectionOptions {
  /**
   * A Backend to use (it is never closed by the SDK), or `{ url, apiKey }` of a server.
   * @default resolved: WARREN_URL + WARREN_API_KEY, WARREN_PROFILE, the active profile, local
   */
  backend?: Backend | RemoteTarget;
}

/** Options of `Sandbox.create`. Unset fields take the configured defaults. */
export interface SandboxCreateOptions extends ConnectionOptions {
  /** Unique among live sandboxes. @default "sbx-" + part of the id */
  name?: string;
  /** Driver name (`bwrap`, `host`, `fake`). @default config.defaultDriver ("bwrap") */
  driver?: string;
  /** Environment (root filesystem) name, e.g. `debian-bookworm`. @default config.defaultEnvironment ("host") */
  env?: string;
  /** Environment variables of every command in the sandbox. */
  envs?: Record<string, string>;
  /** CPU quota in CPUs. @default config.defaultVcpuCount (1) */
  vcpuCount?: number;
  /** Memory limit. @default config.defaultMemoryMiB (512) */
  memoryMiB?: number;
  /** Process limit. @default config.defaultPidsMax (512) */
  pidsMax?: number;
  /** `none` (loopback only) or `host`. @default "none" where the driver supports it */
  network?: NetworkPolicy;
  /** Seconds the sandbox may run before `onTimeout`. @default config.defaultTtlSeconds (3600) */
  ttlSeconds?: number;
  /** What happens when the TTL runs out. @default "stop" */
  onTimeout?: OnTimeout;
  labels?: Record<string, string>;
  /** Opt in to drivers with no isolation (the host driver). @default false */
  allowHost?: boolean;
  /** How long start may take. @default 10000 */
  healthTimeoutMs?: number;
}

/** Options of `Sandbox.list`. */
export interface SandboxListOptions extends ConnectionOptions {
  /** Every label given must match. */
  labels?: Record<string, string>;
  /** Only sandboxes in these states. */
  states?: SandboxState[];
  /** Include deleted sandboxes. @default false */
  all?: boolean;
}

function toCreateOptions(o: SandboxCreateOptions): CreateOptions {
  const mapped: CreateOptions = {
    name: o.name,
    driver: o.driver,
    environment: o.env,
    env: o.envs,
    vcpuCount: o.vcpuCount,
    memoryMiB: o.memoryMiB,
    pidsMax: o.pidsMax,
    network: o.network,
    ttlSeconds: o.ttlSeconds,
    onTimeout: o.onTimeout,
    labels: o.labels,
    allowHost: o.allowHost,
    healthTimeoutMs: o.healthTimeoutMs,
  };
  // Unset fields are left out so that a remote backend sees the same request as a local one.
  return Object.fromEntries(Object.entries(mapped).filter(([, v]) => v !== undefined)) as CreateOptions;
}

async function withLease<T>(options: ConnectionOptions, fn: (lease: BackendLease) => Promise<T>): Promise<T> {
  const lease = await leaseBackend({ backend: options.backend });
  try {
    return await fn(lease);
  } catch (err) {
    await lease.release();
    throw err;
  }
}

/**
 * One sandbox. Get one with `Sandbox.create` or `Sandbox.connect`; `await using` deletes it at
 * the end of the scope. Calls address the sandbox by id, so the handle stays valid across stop
 * and start.
 */
export class Sandbox implements AsyncDisposable {
  /** Run commands: `sandbox.commands.run("ls")`. */
  readonly commands: Commands;
  /** Read and write files: `sandbox.files.read("/workspace/a.txt")`. */
  readonly files: Files;
  private current: SandboxInfo;
  private closed = false;

  private constructor(
    private readonly lease: BackendLease,
    info: SandboxInfo,
  ) {
    this.current = info;
    const ctx: SandboxContext = { ref: info.id, backend: () => this.backend };
    this.commands = new Commands(ctx);
    this.files = new Files(ctx);
  }

  /**
   * Creates a sandbox and waits until it runs.
   * @throws InvalidArgumentError (bad option), AlreadyExistsError (name taken), NotFoundError
   *   (unknown driver or environment), DriverUnavailableError, LimitExceededError
   */
  static async create(options: SandboxCreateOptions = {}): Promise<Sandbox> {
    return withLease(options, async (lease) => {
      const info = await lease.backend.createSandbox(toCreateOptions(options));
      return new Sandbox(lease, info);
    });
  }

  /**
   * A handle to an existing sandbox, by id or name (in any state; `start` a stopped one).
   * @throws NotFoundError
   */
  static async connect(idOrName: string, options: ConnectionOptions = {}): Promise<Sandbox> {
    return withLease(options, async (lease) => new Sandbox(lease, await lease.backend.getSandbox(idOrName)));
  }

  /** Sandboxes (not deleted ones unless `all`), filtered by labels and states. */
  static async list(options: SandboxListOptions = {}): Promise<SandboxInfo[]> {
    const lease = await leaseBackend({ backend: options.backend });
    try {
      const filter: ListOptions = {};
      if (options.labels) filter.labels = options.labels;
      if (options.states) filter.states = options.states;
      if (options.all) filter.all = true;
      return await lease.backend.listSandboxes(filter);
    } finally {
      await lease.release();
    }
  }

  /** The backend this sandbox is reached through. @throws InvalidStateError once closed */
  get backend(): Backend {
    if (this.closed) {
      throw new InvalidStateError(`the handle of sandbox ${this.current.id} is closed`, {
        hint: "get a new one with Sandbox.connect()",
        details: { sandboxId: this.current.id },
      });
    }
    return this.lease.backend;
  }

  /** Which resolution rule picked the backend (see resolveBackend). */
  get backendSource(): BackendSource {
    return this.lease.source;
  }

  /** The sandbox as last seen (after create, connect, start, stop, kill or refresh). */
  get info(): SandboxInfo {
    return this.current;
  }
  /** The sandbox id (`sbx-` and 12 hex digits). */
  get id(): string {
    return this.current.id;
  }
  /** The sandbox name. */
  get name(): string {
    return this.current.name;
  }
  /** The state as last seen; `refresh` fetches it. */
  get state(): SandboxState {
    return this.current.state;
  }

  /** Fetches the sandbox's current state. @throws NotFoundError */
  async refresh(): Promise<SandboxInfo> {
    return (this.current = await this.backend.getSandbox(this.id));
  }

  /** Starts a stopped sandbox; the workspace is as it was. @throws InvalidStateError */
  async start(): Promise<SandboxInfo> {
    return (this.current = await this.backend.startSandbox(this.id));
  }

  /** Stops the sandbox: its processes end, its workspace is kept. */
  async stop(): Promise<SandboxInfo> {
    return (this.current = await this.backend.stopSandbox(this.id));
  }

  /** Deletes the sandbox and its workspace (its journal is kept). Deleting twice is fine. */
  async kill(): Promise<SandboxInfo> {
    return (this.current = await this.backend.deleteSandbox(this.id));
  }

  /** The sandbox's command journal, oldest first. */
  journal(options: { sinceSequence?: number; limit?: number } = {}): Promise<JournalEntry[]> {
    return this.backend.journal(this.id, options);
  }

  /** The driver's own log of the sandbox (not command output), for debugging. */
  driverLog(): Promise<string> {
    return this.backend.driverLog(this.id);
  }

  /**
   * Lets go of the backend without touching the sandbox (it keeps running). A backend the SDK
   * opened is closed once no Sandbox uses it. Idempotent; a closed handle is no longer deleted by
   * `await using`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lease.release();
  }

  /** Deletes the sandbox (if it still exists), then closes the handle: what `await using` calls. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.closed) return;
    try {
      await this.kill();
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    } finally {
      await this.close();
    }
  }
}

export type { SandboxInfo };
