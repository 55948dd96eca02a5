/** Validates and completes create options. Pure: nothing is touched until validation passed. */
import type { WarrenConfig } from "../core/config.js";
import {
  LIMITS,
  validateEnv,
  validateIntInRange,
  validateLabels,
  validateName,
  validateNetwork,
  validateOnTimeout,
} from "../core/names.js";
import type { NetworkPolicy, OnTimeout, Resources } from "../core/types.js";

/** What a caller may ask for when creating a sandbox. */
export interface CreateOptions {
  /** Unique among live sandboxes. @default "sbx-" + part of the id */
  name?: string;
  /** Driver name. @default config.defaultDriver */
  driver?: string;
  /** Environment name. @default config.defaultEnvironment */
  environment?: string;
  vcpuCount?: number;
  memoryMiB?: number;
  pidsMax?: number;
  /** @default "none" where the driver supports it */
  network?: NetworkPolicy;
  /** Seconds the sandbox may run before `onTimeout`. @default config.defaultTtlSeconds */
  ttlSeconds?: number;
  /** @default "stop" */
  onTimeout?: OnTimeout;
  labels?: Record<string, string>;
  /** Environment variables for every command. */
  env?: Record<string, string>;
  /** Opt in to drivers with no isolation (the host driver). @default false */
  allowHost?: boolean;
  /** How long start may take. @default 10000 */
  healthTimeoutMs?: number;
}

/** Create options after validation, with every default filled in. */
export interface ResolvedCreateOptions {
  name: string | undefined;
  driver: string;
  environment: string;
  resources: Resources;
  network: NetworkPolicy | undefined;
  ttlSeconds: number;
  onTimeout: OnTimeout;
  labels: Record<string, string>;
  env: Record<string, string>;
  allowHost: boolean;
  healthTimeoutMs: number;
}

/** @throws InvalidArgumentError for any invalid field. */
export function resolveCreateOptions(o: CreateOptions, config: WarrenConfig): ResolvedCreateOptions {
  return {
    name: o.name === undefined ? undefined : validateName(o.name),
    driver: o.driver ?? config.defaultDriver,
    environment: o.environment ?? config.defaultEnvironment,
    resources: {
      vcpuCount: validateIntInRange(
        o.vcpuCount ?? config.defaultVcpuCount,
        "cpus",
        LIMITS.vcpuCount.min,
        LIMITS.vcpuCount.max,
      ),
      memoryMiB: validateIntInRange(
        o.memoryMiB ?? config.defaultMemoryMiB,
        "memory",
        LIMITS.memoryMiB.min,
        LIMITS.memoryMiB.max,
        " MiB",
      ),
      pidsMax: validateIntInRange(
        o.pidsMax ?? config.defaultPidsMax,
        "pids",
        LIMITS.pidsMax.min,
        LIMITS.pidsMax.max,
      ),
    },
    network: o.network === undefined ? undefined : validateNetwork(o.network),
    ttlSeconds: validateIntInRange(
      o.ttlSeconds ?? config.defaultTtlSeconds,
      "ttl",
      LIMITS.ttlSeconds.min,
      LIMITS.ttlSeconds.max,
      " seconds",
    ),
    onTimeout: validateOnTimeout(o.onTimeout ?? "stop"),
    labels: validateLabels(o.labels ?? {}),
    env: validateEnv(o.env ?? {}),
    allowHost: o.allowHost ?? false,
    healthTimeoutMs: validateIntInRange(o.healthTimeoutMs ?? 10000, "healthTimeoutMs", 100, 600000),
  };
}
