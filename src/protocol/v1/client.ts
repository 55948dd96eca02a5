/**
 * The client half of protocol v1: `ExternalDriver` implements the driver contract by calling a
 * driver process over its Unix socket. Where the process comes from (spawned through the
 * bootstrap handshake, or started by someone else) is the connector's business; a connection
 * whose process died is replaced on the next call, which re-attaches instances from their state.
 */
import * as grpc from "@grpc/grpc-js";
import type {
  CallOptions,
  CleanupContext,
  CleanupReport,
  DriverCapabilities,
  PersistedState,
  ProbeResult,
  RuntimeConfig,
  RuntimeDriver,
  RuntimeInstance,
} from "../../core/driver.js";
import { DriverUnavailableError, toWarrenError } from "../../core/errors.js";
import type { LogLevel } from "../../core/log.js";
import type { BootstrapHello } from "./bootstrap.js";
import { versionMismatch } from "./bootstrap.js";
import { ExternalInstance } from "./instance.js";
import {
  GRPC_OPTIONS,
  PROTOCOL_VERSION,
  capabilitiesFromWire,
  configToWire,
  driverService,
  errorFromStatus,
  probeFromWire,
  stateFromWire,
  stateToWire,
  type WireCapabilities,
  type WireProbeResult,
} from "./wire.js";

/** A reachable driver process: its socket, and whether it is still there. */
export interface DriverEndpoint {
  readonly socket: string;
  /** Why the process is gone, or null while it runs (or when that cannot be known). */
  lost(): string | null;
  /** Waits up to `ms` for the process to be gone; its reason, or null. */
  waitLost(ms: number): Promise<string | null>;
  /** Lets the process go (a spawned one is stopped). */
  close(): Promise<void>;
}

/** Makes an endpoint: spawns a driver (bootstrap) or names a socket. */
export type DriverConnector = (hello: BootstrapHello) => Promise<DriverEndpoint>;

/** What the driver said in the handshake. */
export interface HandshakeInfo {
  driverName: string;
  capabilities: DriverCapabilities;
  pid: number;
}

/** How to build an ExternalDriver. */
export interface ExternalDriverOptions {
  /** The name Warren registers the driver under. */
  name: string;
  connect: DriverConnector;
  stateDir: string;
  /** @default "warn" */
  logLevel?: LogLevel;
  /** Capabilities from an earlier handshake, so they are known before the first connection. */
  capabilities?: DriverCapabilities;
  /** Called after every successful handshake (to keep cached capabilities current). */
  onHandshake?: (info: HandshakeInfo) => void;
}

interface Connection {
  client: grpc.Client;
  endpoint: DriverEndpoint;
  info: HandshakeInfo;
  /** The channel failed (e.g. the driver restarted): make a new one before the next call. */
  broken: boolean;
}

/** How long connecting and the handshake may take. */
const CONNECT_TIMEOUT_MS = 15000;

/** A driver in another process, reached over protocol v1. */
export class ExternalDriver implements RuntimeDriver {
  readonly name: string;
  private caps: DriverCapabilities | null;
  private current: Promise<Connection> | null = null;

  constructor(private readonly options: ExternalDriverOptions) {
    this.name = options.name;
    this.caps = options.capabilities ?? null;
  }

  /** @throws DriverUnavailableError when the driver has never been reached, so nothing is known */
  get capabilities(): DriverCapabilities {
    if (!this.caps) {
      throw new DriverUnavailableError(`the capabilities of driver ${this.name} are not known yet`, {
        hint: "it has not been reached; see `warren doctor`",
        details: { driver: this.name },
      });
    }
    return this.caps;
  }

  /** Connects (spawning the driver if needed) and returns what its handshake said (name, pid). */
  async handshake(): Promise<HandshakeInfo> {
    return (await this.connection()).info;
  }

  /** Drops the connection and lets the driver process go (a spawned one is stopped). */
  async close(): Promise<void> {
    const c = await this.current?.catch(() => null);
    this.current = null;
    if (c) {
      c.client.close();
      await c.endpoint.close();
    }
  }

  /** The live connection, made (or remade, if the process died) as needed. */
  private async connection(): Promise<Connection> {
    const existing = await this.current?.catch(() => null);
    if (existing && !existing.broken && existing.endpoint.lost() === null) return existing;
    if (existing) existing.client.close();
    // A broken channel to a process that still runs (a socket driver restarted by its owner) is
    // replaced by a fresh one to the same endpoint; a dead spawned process is spawned anew.
    const reuse = existing && existing.endpoint.lost() === null ? existing.endpoint : null;
    const next = this.open(reuse);
    this.current = next;
    next.catch(() => {
      if (this.current === next) this.current = null;
    });
    return next;
  }

  private async open(reuse: DriverEndpoint | null): Promise<Connection> {
    const { stateDir, logLevel = "warn" } = this.options;
    const hello: BootstrapHello = { protocolVersion: PROTOCOL_VERSION, stateDir, logLevel };
    const endpoint = reuse ?? (await this.options.connect(hello));
    const client = new grpc.Client(
      `unix:${endpoint.socket}`,
      grpc.credentials.createInsecure(),
      GRPC_OPTIONS,
    );
    const conn: Connection = {
      client,
      endpoint,
      info: { driverName: "", capabilities: this.caps!, pid: 0 },
      broken: false,
    };
    try {
      const hs = await this.unaryOn<{
        protocolVersion: number;
        driverName: string;
        capabilities: WireCapabilities;
        pid: number;
      }>(conn, "Handshake", hello, { timeoutMs: CONNECT_TIMEOUT_MS });
      if (hs.protocolVersion !== PROTOCOL_VERSION) throw versionMismatch(this.name, hs.protocolVersion);
      conn.info = {
        driverName: hs.driverName,
        capabilities: capabilitiesFromWire(hs.capabilities),
        pid: hs.pid,
      };
    } catch (err) {
      client.close();
      await endpoint.close();
      const e = toWarrenError(err);
      // A version mismatch or an error the driver sent stays as it is; a transport failure says where.
      if (e.code !== "DRIVER_UNAVAILABLE" || !e.details?.grpcStatus) throw e;
      const why = ((e.cause as { details?: string } | undefined)?.details ?? e.message).replace(
        /\s*Resolution note:\s*$/,
        "",
      );
      throw new DriverUnavailableError(`driver ${this.name} is not reachable at ${endpoint.socket}: ${why}`, {
        hint: "check that the driver process runs and serves that socket (`warren driver ls` shows where)",
        details: { driver: this.name, socket: endpoint.socket },
        cause: err,
      });
    }
    this.caps = conn.info.capabilities;
    this.options.onHandshake?.(conn.info);
    return conn;
  }

  /** Calls a unary method on the current connection (made if needed). */
  async unary<Res>(method: string, request: object, o: CallOptions = {}): Promise<Res> {
    return this.unaryOn<Res>(await this.connection(), method, request, o);
  }

  private unaryOn<Res>(c: Connection, method: string, request: object, o: CallOptions): Promise<Res> {
    const def = driverService()[method]!;
    return new Promise<Res>((resolve, reject) => {
      if (o.signal?.aborted) return reject(o.signal.reason);
      const callOptions: grpc.CallOptions = {};
      if (o.timeoutMs !== undefined) callOptions.deadline = Date.now() + o.timeoutMs;
      const onAbort = (): void => call.cancel();
      const call = c.client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        new grpc.Metadata(),
        callOptions,
        (err, res) => {
          o.signal?.removeEventListener("abort", onAbort);
          if (!err) return resolve(res as Res);
          if (o.signal?.aborted) return reject(o.signal.reason);
          this.failure(c, method, err).then(reject, reject);
        },
      );
      o.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Opens a server stream on the current connection. `onEvent` gets each message; resolves when
   * the stream ends well, rejects with the call's error (the abort reason if `signal` fired).
   */
  async stream(
    method: string,
    request: object,
    o: CallOptions,
    onEvent: (event: Record<string, unknown>) => void,
  ): Promise<void> {
    const c = await this.connection();
    const def = driverService()[method]!;
    return new Promise<void>((resolve, reject) => {
      if (o.signal?.aborted) return reject(o.signal.reason);
      const call = c.client.makeServerStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        new grpc.Metadata(),
        {},
      );
      const onAbort = (): void => call.cancel();
      o.signal?.addEventListener("abort", onAbort, { once: true });
      let settled = false;
      const settle = (err: unknown): void => {
        if (settled) return;
        settled = true;
        o.signal?.removeEventListener("abort", onAbort);
        if (err === null) resolve();
        else reject(err);
      };
      call.on("data", (event: Record<string, unknown>) => {
        try {
          onEvent(event);
        } catch (err) {
          call.cancel();
          settle(err);
        }
      });
      // The stream succeeded once it has ended and its status is OK; a failed status carries the error.
      let ended = false;
      let ok = false;
      call.on("error", () => undefined);
      call.on("status", (status: grpc.StatusObject) => {
        if (status.code === grpc.status.OK) {
          ok = true;
          if (ended) settle(null);
          return;
        }
        if (o.signal?.aborted) return settle(o.signal.reason);
        const err = Object.assign(new Error(`${status.code} ${status.details}`), status) as grpc.ServiceError;
        this.failure(c, method, err).then(settle, settle);
      });
      call.on("end", () => {
        ended = true;
        if (ok) settle(null);
      });
    });
  }

  /** The WarrenError for a failed call; a connection whose process died is dropped. */
  private async failure(c: Connection, method: string, err: grpc.ServiceError): Promise<Error> {
    const transport = [
      grpc.status.UNAVAILABLE,
      grpc.status.CANCELLED,
      grpc.status.INTERNAL,
      grpc.status.UNKNOWN,
    ];
    let lost: string | null = null;
    if (transport.includes(err.code) && !err.metadata?.get("warren-error-bin").length) {
      // The exit of a spawned driver may be reported a moment after its connection broke.
      lost = await c.endpoint.waitLost(500);
      if (lost) await this.drop(c);
      else if (err.code === grpc.status.UNAVAILABLE) c.broken = true;
    }
    return errorFromStatus(err, { driver: this.name, method, lost });
  }

  private async drop(c: Connection): Promise<void> {
    if ((await this.current?.catch(() => null)) === c) this.current = null;
    c.client.close();
    await c.endpoint.close().catch(() => undefined);
  }

  async probe(options: CallOptions = {}): Promise<ProbeResult> {
    try {
      return probeFromWire(await this.unary<WireProbeResult>("Probe", {}, options));
    } catch (err) {
      const e = toWarrenError(err);
      return { usable: false, reason: e.message, hint: e.hint, details: { driver: this.name } };
    }
  }

  async createInstance(
    id: string,
    config: RuntimeConfig,
    options: CallOptions = {},
  ): Promise<RuntimeInstance> {
    const r = await this.unary<{ stateJson: Buffer }>(
      "CreateInstance",
      { instanceId: id, config: configToWire(config) },
      options,
    );
    return new ExternalInstance(this, id, config, stateFromWire(r.stateJson));
  }

  async attach(
    id: string,
    config: RuntimeConfig,
    state: PersistedState,
    options: CallOptions = {},
  ): Promise<RuntimeInstance> {
    const inst = new ExternalInstance(this, id, config, state);
    await inst.attach(options);
    return inst;
  }

  /** Sends Attach for an instance; its new persisted state. */
  async attachRemote(id: string, config: RuntimeConfig, state: PersistedState, o: CallOptions = {}) {
    const r = await this.unary<{ stateJson: Buffer }>(
      "Attach",
      { instanceId: id, config: configToWire(config), stateJson: stateToWire(state) },
      o,
    );
    return stateFromWire(r.stateJson);
  }

  async cleanupStaleResources(context: CleanupContext, options: CallOptions = {}): Promise<CleanupReport> {
    const r = await this.unary<{ removed: string[] }>(
      "CleanupStaleResources",
      { keepSandboxIds: [...context.keepSandboxIds] },
      options,
    );
    return { removed: r.removed };
  }
}
