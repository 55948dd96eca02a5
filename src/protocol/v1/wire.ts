/**
 * Protocol v1 on the wire: the service definition loaded from driver.proto, the conversions
 * between the driver contract's plain data and the protocol's messages, and the error rule
 * (a WarrenError travels as a gRPC status plus its JSON in the `warren-error-bin` trailer).
 * Shared by the client and the server halves.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { DriverCapabilities, PersistedState, ProbeResult, RuntimeConfig } from "../../core/driver.js";
import {
  DriverUnavailableError,
  InternalError,
  NotSupportedError,
  TimeoutError,
  errorFromWire,
  toWarrenError,
  type ErrorCode,
  type WarrenError,
} from "../../core/errors.js";
import type { IsolationLevel, NetworkPolicy } from "../../core/types.js";

/** The protocol version this Warren speaks. */
export const PROTOCOL_VERSION = 1;

/** Trailing metadata key that carries a WarrenError's JSON. */
export const ERROR_METADATA_KEY = "warren-error-bin";

/** Channel and server options: no message size limit, as in-process calls have none. */
export const GRPC_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
};

/**
 * Path of driver.proto: next to this file in dist/ (the build copies it there), else in the
 * source tree (a build made with plain `tsc`).
 */
export function protoPath(): string {
  const beside = fileURLToPath(new URL("./driver.proto", import.meta.url));
  if (existsSync(beside)) return beside;
  return fileURLToPath(new URL("../../../../src/protocol/v1/driver.proto", import.meta.url));
}

let loaded: grpc.ServiceDefinition | null = null;

/** The `warren.driver.v1.Driver` service definition (loaded once). */
export function driverService(): grpc.ServiceDefinition {
  if (!loaded) {
    const def = protoLoader.loadSync(protoPath(), {
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      warren: { driver: { v1: { Driver: grpc.ServiceClientConstructor } } };
    };
    loaded = pkg.warren.driver.v1.Driver.service;
  }
  return loaded;
}

/** The `Capabilities` message. */
export interface WireCapabilities {
  isolation: string;
  networkPolicies: string[];
  limitMemory: boolean;
  limitPids: boolean;
  limitCpu: boolean;
  rootfsEnvironments: boolean;
  persistentInstances: boolean;
  posixShell: boolean;
}

/** Capabilities → message. */
export function capabilitiesToWire(c: DriverCapabilities): WireCapabilities {
  return {
    isolation: c.isolation,
    networkPolicies: [...c.networkPolicies],
    limitMemory: c.limits.memory,
    limitPids: c.limits.pids,
    limitCpu: c.limits.cpu,
    rootfsEnvironments: c.rootfsEnvironments,
    persistentInstances: c.persistentInstances,
    posixShell: c.posixShell,
  };
}

/** Message → capabilities. */
export function capabilitiesFromWire(w: WireCapabilities): DriverCapabilities {
  return {
    isolation: w.isolation as IsolationLevel,
    networkPolicies: w.networkPolicies as NetworkPolicy[],
    limits: { memory: w.limitMemory, pids: w.limitPids, cpu: w.limitCpu },
    rootfsEnvironments: w.rootfsEnvironments,
    persistentInstances: w.persistentInstances,
    posixShell: w.posixShell,
  };
}

/** The `RuntimeConfig` message. */
export interface WireRuntimeConfig {
  workspaceDir: string;
  environment: { name: string; rootfsPath?: string };
  hostname: string;
  env: Record<string, string>;
  vcpuCount: number;
  memoryMib: number;
  pidsMax: number;
  network: string;
  healthTimeoutMs: number;
}

/** RuntimeConfig → message. */
export function configToWire(c: RuntimeConfig): WireRuntimeConfig {
  const environment: WireRuntimeConfig["environment"] = { name: c.environment.name };
  if (c.environment.rootfsPath !== null) environment.rootfsPath = c.environment.rootfsPath;
  return {
    workspaceDir: c.workspaceDir,
    environment,
    hostname: c.hostname,
    env: { ...c.env },
    vcpuCount: c.vcpuCount,
    memoryMib: c.memoryMiB,
    pidsMax: c.pidsMax,
    network: c.network,
    healthTimeoutMs: c.healthTimeoutMs,
  };
}

/** Message → RuntimeConfig. */
export function configFromWire(w: WireRuntimeConfig): RuntimeConfig {
  return {
    workspaceDir: w.workspaceDir,
    environment: { name: w.environment?.name ?? "host", rootfsPath: w.environment?.rootfsPath ?? null },
    hostname: w.hostname,
    env: { ...w.env },
    vcpuCount: w.vcpuCount,
    memoryMiB: w.memoryMib,
    pidsMax: w.pidsMax,
    network: w.network as NetworkPolicy,
    healthTimeoutMs: w.healthTimeoutMs,
  };
}

/** The `ProbeResult` message. */
export interface WireProbeResult {
  usable: boolean;
  reason: string;
  hint: string;
  detailsJson: Buffer;
}

/** ProbeResult → message. */
export function probeToWire(p: ProbeResult): WireProbeResult {
  return {
    usable: p.usable,
    reason: p.reason,
    hint: p.hint ?? "",
    detailsJson: p.details ? Buffer.from(JSON.stringify(p.details)) : Buffer.alloc(0),
  };
}

/** Message → ProbeResult. */
export function probeFromWire(w: WireProbeResult): ProbeResult {
  const out: ProbeResult = { usable: w.usable, reason: w.reason };
  if (w.hint) out.hint = w.hint;
  if (w.detailsJson?.length) out.details = jsonObject(w.detailsJson, "probe details");
  return out;
}

/** Persisted state → bytes. */
export function stateToWire(state: PersistedState): Buffer {
  return Buffer.from(JSON.stringify(state ?? {}));
}

/** Bytes → persisted state (empty bytes are `{}`). @throws InternalError when not a JSON object */
export function stateFromWire(bytes: Buffer | undefined): PersistedState {
  return bytes?.length ? jsonObject(bytes, "persisted state") : {};
}

function jsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new InternalError(`driver sent ${what} that is not JSON`, { cause: err });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InternalError(`driver sent ${what} that is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

const STATUS_OF_CODE: Record<ErrorCode, grpc.status> = {
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  INVALID_STATE: grpc.status.FAILED_PRECONDITION,
  NOT_SUPPORTED: grpc.status.UNIMPLEMENTED,
  LIMIT_EXCEEDED: grpc.status.RESOURCE_EXHAUSTED,
  TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  DRIVER_UNAVAILABLE: grpc.status.UNAVAILABLE,
  UNAUTHORIZED: grpc.status.UNAUTHENTICATED,
  INTERNAL: grpc.status.INTERNAL,
};

/** Anything thrown by a driver → the gRPC status the server sends. */
export function errorToStatus(err: unknown): grpc.StatusObject {
  const e = toWarrenError(err);
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_METADATA_KEY, Buffer.from(JSON.stringify(e.toJSON())));
  return { code: STATUS_OF_CODE[e.code], details: e.message, metadata };
}

/** Where a failed call went, to word errors that carry no WarrenError. */
export interface CallSite {
  driver: string;
  method: string;
  /** Why the connection died, when the client knows (e.g. "the driver process was killed by SIGKILL"). */
  lost?: string | null;
}

/**
 * A failed call's gRPC error → the WarrenError to throw: the one in `warren-error-bin` when the
 * driver sent it (the same class as in-process), else one chosen by status code.
 */
export function errorFromStatus(err: grpc.ServiceError, site: CallSite): WarrenError {
  const carried = err.metadata?.get(ERROR_METADATA_KEY)[0];
  if (carried !== undefined) {
    let wire: unknown;
    try {
      wire = JSON.parse(Buffer.from(carried).toString("utf8"));
    } catch {
      wire = { code: "INTERNAL", message: `driver ${site.driver} sent a malformed error: ${err.details}` };
    }
    return errorFromWire(wire, { cause: err });
  }
  const details = { driver: site.driver, method: site.method, grpcStatus: grpc.status[err.code] };
  switch (err.code) {
    case grpc.status.UNIMPLEMENTED:
      return new NotSupportedError(`driver ${site.driver} does not implement ${site.method}`, {
        hint: "the driver implements an older or partial protocol; see docs/driver-protocol.md",
        details,
        cause: err,
      });
    case grpc.status.DEADLINE_EXCEEDED:
      return new TimeoutError(`driver ${site.driver} did not answer ${site.method} in time`, {
        details,
        cause: err,
      });
    case grpc.status.UNAVAILABLE:
    case grpc.status.CANCELLED:
    case grpc.status.INTERNAL:
    case grpc.status.UNKNOWN:
      if (err.code === grpc.status.UNAVAILABLE || site.lost) {
        return new DriverUnavailableError(
          `driver ${site.driver} went away during ${site.method}: ${site.lost ?? err.details}`,
          {
            hint: "Warren restarts a spawned driver on the next call (a driver on a socket must be restarted by whoever runs it); the sandbox's instance is re-attached then",
            details,
            cause: err,
          },
        );
      }
  }
  return new InternalError(`driver ${site.driver} failed ${site.method}: ${err.details}`, {
    details,
    cause: err,
  });
}
