/**
 * The server half of protocol v1: serves any RuntimeDriver on a Unix domain socket. The same
 * driver code runs in-process (through the registry) or out-of-process (through this server);
 * `warren driver serve NAME` is the command that does the latter.
 */
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { CallOptions, ExecSpec, RuntimeDriver, RuntimeInstance } from "../../core/driver.js";
import { NotFoundError, toWarrenError } from "../../core/errors.js";
import { silentLogger, type Logger } from "../../core/log.js";
import {
  GRPC_OPTIONS,
  PROTOCOL_VERSION,
  capabilitiesToWire,
  configFromWire,
  driverService,
  errorToStatus,
  probeToWire,
  stateFromWire,
  stateToWire,
  type WireRuntimeConfig,
} from "./wire.js";

/** A running driver server. */
export interface DriverServer {
  /** The socket path it listens on. */
  readonly socket: string;
  /** Stops: running calls are cancelled (a running command is killed), the socket is removed. */
  close(): Promise<void>;
}

/** How to serve. */
export interface ServeDriverOptions {
  log?: Logger;
  /** File mode of the socket (who may connect). @default as the umask leaves it */
  mode?: number;
}

interface WireExecSpec {
  argv: string[];
  cwd?: string;
  env: Record<string, string>;
  stdin?: Buffer;
  timeoutMs?: number;
  maxOutputBytes?: number;
  sequence?: number;
  detach: boolean;
}

/** Remaining time of a gRPC deadline, as the contract's `timeoutMs` (undefined for none). */
function remainingMs(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** A call's abort signal (fired when Warren cancels it) and timeout. */
function callOptions(
  call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
): CallOptions {
  const ac = new AbortController();
  call.on("cancelled", () => ac.abort(new Error("the call was cancelled by Warren")));
  return { signal: ac.signal, timeoutMs: remainingMs(call.getDeadline()) };
}

/**
 * Serves `driver` on `socket` (a stale socket file there is replaced).
 * @throws when the socket cannot be bound
 */
export async function serveDriver(
  driver: RuntimeDriver,
  socket: string,
  options: ServeDriverOptions = {},
): Promise<DriverServer> {
  const log = options.log ?? silentLogger;
  const instances = new Map<string, RuntimeInstance>();

  const instance = (id: string): RuntimeInstance => {
    const found = instances.get(id);
    if (!found) {
      throw new NotFoundError(`driver ${driver.name} has no instance ${id} in this process`, {
        hint: "attach it first (Warren does so by itself)",
        details: { instanceUnknown: true, sandboxId: id },
      });
    }
    return found;
  };

  // Every unary call: decode, run the driver's method, send its result or its error as a status.
  const unary =
    <Req, Res>(
      method: string,
      fn: (req: Req, o: CallOptions) => Promise<Res>,
    ): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      fn(call.request, callOptions(call)).then(
        (res) => callback(null, res),
        (err: unknown) => {
          log.debug("driver call failed", { driver: driver.name, method, error: String(err) });
          callback(errorToStatus(err));
        },
      );
    };

  type IdReq = { instanceId: string };
  const handlers: grpc.UntypedServiceImplementation = {
    Handshake: unary("Handshake", async () => ({
      protocolVersion: PROTOCOL_VERSION,
      driverName: driver.name,
      capabilities: capabilitiesToWire(driver.capabilities),
      pid: process.pid,
    })),
    Probe: unary("Probe", async (_req, o) => probeToWire(await driver.probe(o))),
    Capabilities: unary("Capabilities", async () => capabilitiesToWire(driver.capabilities)),
    CreateInstance: unary("CreateInstance", async (req: IdReq & { config: WireRuntimeConfig }, o) => {
      const inst = await driver.createInstance(req.instanceId, configFromWire(req.config), o);
      instances.set(req.instanceId, inst);
      return { stateJson: stateToWire(inst.persistedState()) };
    }),
    Attach: unary("Attach", async (req: IdReq & { config: WireRuntimeConfig; stateJson: Buffer }, o) => {
      const inst = await driver.attach(
        req.instanceId,
        configFromWire(req.config),
        stateFromWire(req.stateJson),
        o,
      );
      instances.set(req.instanceId, inst);
      return { stateJson: stateToWire(inst.persistedState()) };
    }),
    Start: unary("Start", async (req: IdReq, o) => {
      const inst = instance(req.instanceId);
      await inst.start(o);
      return { stateJson: stateToWire(inst.persistedState()) };
    }),
    Stop: unary("Stop", async (req: IdReq & { graceMs?: number }, o) => {
      const inst = instance(req.instanceId);
      await inst.stop(req.graceMs === undefined ? o : { ...o, graceMs: req.graceMs });
      return { stateJson: stateToWire(inst.persistedState()) };
    }),
    Destroy: unary("Destroy", async (req: IdReq, o) => {
      const inst = instance(req.instanceId);
      await inst.destroy(o);
      instances.delete(req.instanceId);
      return { stateJson: stateToWire(inst.persistedState()) };
    }),
    Health: unary("Health", async (req: IdReq, o) => ({
      healthy: await instance(req.instanceId).isHealthy(o),
    })),
    Logs: unary("Logs", async (req: IdReq, o) => ({ text: await instance(req.instanceId).logs(o) })),
    CleanupStaleResources: unary("CleanupStaleResources", async (req: { keepSandboxIds: string[] }, o) =>
      driver.cleanupStaleResources({ keepSandboxIds: new Set(req.keepSandboxIds) }, o),
    ),
    Exec: (
      call: grpc.ServerWritableStream<IdReq & { spec: WireExecSpec; callTimeoutMs?: number }, unknown>,
    ) => {
      const o = callOptions(call);
      if (call.request.callTimeoutMs !== undefined) o.timeoutMs = call.request.callTimeoutMs;
      let sentOut = 0;
      let sentErr = 0;
      const send = (event: object): void => {
        if (!call.cancelled) call.write(event);
      };
      const run = async (): Promise<void> => {
        const inst = instance(call.request.instanceId);
        const w = call.request.spec;
        const spec: ExecSpec = {
          argv: w.argv,
          env: w.env,
          detach: w.detach,
          onStdout: (chunk) => {
            sentOut += chunk.length;
            send({ stdout: chunk });
          },
          onStderr: (chunk) => {
            sentErr += chunk.length;
            send({ stderr: chunk });
          },
        };
        if (w.cwd !== undefined) spec.cwd = w.cwd;
        if (w.stdin !== undefined) spec.stdin = w.stdin;
        if (w.timeoutMs !== undefined) spec.timeoutMs = w.timeoutMs;
        if (w.maxOutputBytes !== undefined) spec.maxOutputBytes = w.maxOutputBytes;
        if (w.sequence !== undefined) spec.sequence = w.sequence;
        const out = await inst.exec(spec, o);
        // Every byte of output is streamed: send what a driver kept but did not pass to a callback.
        if (out.stdout.length > sentOut) send({ stdout: out.stdout.subarray(sentOut) });
        if (out.stderr.length > sentErr) send({ stderr: out.stderr.subarray(sentErr) });
        send({
          exit: {
            exitCode: out.exitCode,
            timedOut: out.timedOut,
            truncated: out.truncated,
            durationMs: out.durationMs,
          },
        });
        call.end();
      };
      run().catch((err: unknown) => {
        log.debug("driver exec failed", { driver: driver.name, error: String(toWarrenError(err)) });
        if (!call.cancelled) call.emit("error", errorToStatus(err));
      });
    },
  };

  const server = new grpc.Server(GRPC_OPTIONS);
  server.addService(driverService(), handlers);
  mkdirSync(dirname(socket), { recursive: true });
  rmSync(socket, { force: true });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  if (options.mode !== undefined) chmodSync(socket, options.mode);
  log.info("driver serving", { driver: driver.name, socket });
  let closed: Promise<void> | null = null;
  return {
    socket,
    close() {
      closed ??= (async () => {
        server.forceShutdown();
        rmSync(socket, { force: true });
      })();
      return closed;
    },
  };
}
