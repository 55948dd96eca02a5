/**
 * The warm pool's key: what a sandbox's instance fixes when it starts (driver, environment,
 * resources, network policy), resolved and checked the same way for a create and for a prewarm,
 * and written as a string such as `bwrap/host,cpus=1,memory=512,pids=512,network=none`.
 */
import type { WarrenConfig } from "../core/config.js";
import { POOL_KEY_PATTERN } from "../core/config.js";
import type { RuntimeConfig, RuntimeDriver } from "../core/driver.js";
import { DriverUnavailableError, InvalidArgumentError, NotSupportedError } from "../core/errors.js";
import type { DriverRegistry } from "../core/registry.js";
import type { PoolSpec, SandboxRecord } from "../core/store/index.js";
import type { NetworkPolicy } from "../core/types.js";
import type { Environments } from "./environments.js";
import { resolveCreateOptions, type CreateOptions, type ResolvedCreateOptions } from "./options.js";

export type { PoolSpec } from "../core/store/index.js";

/** The canonical key of a spec: every part named, in a fixed order. */
export function specKey(s: PoolSpec): string {
  const r = s.resources;
  return `${s.driver}/${s.environment},cpus=${r.vcpuCount},memory=${r.memoryMiB},pids=${r.pidsMax},network=${s.network}`;
}

const KEY_FIELDS: Record<string, keyof CreateOptions> = {
  cpus: "vcpuCount",
  memory: "memoryMiB",
  pids: "pidsMax",
  network: "network",
};

/**
 * The create options a key names (`DRIVER[/ENV][,cpus=N][,memory=MiB][,pids=N][,network=P]`);
 * what it leaves out takes the defaults, as a create would.
 * @throws InvalidArgumentError for a malformed key
 */
export function parseSpecKey(key: string): CreateOptions {
  if (!POOL_KEY_PATTERN.test(key)) {
    throw new InvalidArgumentError(`"${key}" is not a pool spec key`, {
      hint: "write DRIVER[/ENV][,cpus=N][,memory=MiB][,pids=N][,network=none|host], e.g. bwrap/host,memory=1024",
    });
  }
  const [head, ...parts] = key.split(",");
  const [driver, environment] = head.split("/");
  const o: Record<string, unknown> = { driver };
  if (environment) o.environment = environment;
  for (const part of parts) {
    const [name, value] = part.split("=");
    const field = KEY_FIELDS[name];
    if (field in o) throw new InvalidArgumentError(`pool spec key "${key}" names ${name} twice`);
    o[field] = field === "network" ? value : Number(value);
  }
  return o as CreateOptions;
}

/** What a create needs besides the options: the registry and the environments. */
export interface SpecContext {
  config: Readonly<WarrenConfig>;
  registry: DriverRegistry;
  environments: Environments;
}

/** A create request, checked: the options with defaults, the spec, its key and its driver. */
export interface ResolvedSpec {
  options: ResolvedCreateOptions;
  spec: PoolSpec;
  key: string;
  driver: RuntimeDriver;
}

/**
 * Validates create options against the driver and environment and derives the spec.
 * @throws InvalidArgumentError, NotFoundError (driver/environment), DriverUnavailableError
 *   (an opt-in driver without opt-in), NotSupportedError (environment or network policy)
 */
export function resolveSpec(options: CreateOptions, ctx: SpecContext): ResolvedSpec {
  const o = resolveCreateOptions(options, ctx.config);
  const factory = ctx.registry.factoryOf(o.driver);
  if (factory.requiresOptIn && !o.allowHost) {
    throw new DriverUnavailableError(`the ${o.driver} driver gives no isolation and is refused by default`, {
      hint: "pass --allow-host (SDK: allowHost: true) if you accept running commands directly on this host",
    });
  }
  const driver = ctx.registry.get(o.driver);
  const envRef = ctx.environments.resolve(o.environment);
  if (envRef.rootfsPath !== null && !driver.capabilities.rootfsEnvironments) {
    throw new NotSupportedError(`the ${o.driver} driver cannot run environment "${o.environment}"`, {
      hint: "use --env host or another driver",
    });
  }
  const policies = driver.capabilities.networkPolicies;
  const network: NetworkPolicy = o.network ?? (policies.includes("none") ? "none" : policies[0]);
  if (!policies.includes(network)) {
    throw new NotSupportedError(`the ${o.driver} driver cannot enforce network policy "${network}"`, {
      hint: `supported: ${policies.join(", ")}`,
    });
  }
  const spec: PoolSpec = { driver: o.driver, environment: o.environment, resources: o.resources, network };
  return { options: { ...o, network }, spec, key: specKey(spec), driver };
}

/**
 * The driver-neutral config of a sandbox's instance. The hostname is the sandbox's name, cut to
 * 63 characters; a pooled instance was started with its id as hostname (see pool.ts).
 */
export function runtimeConfigOf(
  rec: Pick<SandboxRecord, "workspaceDir" | "environment" | "name" | "env" | "resources" | "network">,
  environments: Environments,
  healthTimeoutMs = 10000,
): RuntimeConfig {
  return {
    workspaceDir: rec.workspaceDir,
    environment: environments.resolve(rec.environment),
    hostname: rec.name.slice(0, 63),
    env: rec.env,
    vcpuCount: rec.resources.vcpuCount,
    memoryMiB: rec.resources.memoryMiB,
    pidsMax: rec.resources.pidsMax,
    network: rec.network,
    healthTimeoutMs,
  };
}

/**
 * Prewarm counts from `--prewarm` values: `N` (the default spec, i.e. `defaultDriver` with the
 * default environment and resources) or `KEY=N`; a later value for the same key wins.
 * @throws InvalidArgumentError for a malformed value
 */
export function parsePrewarm(values: string[], defaultDriver: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) {
    const m = /^(?:(.+)=)?(\d+)$/.exec(v);
    if (!m || Number(m[2]) > 1000) {
      throw new InvalidArgumentError(`--prewarm ${v}: expected N or KEY=N (N up to 1000)`, {
        hint: "e.g. --prewarm 4, or --prewarm bwrap/host,memory=1024=2",
      });
    }
    const key = m[1] ?? defaultDriver;
    parseSpecKey(key);
    out[key] = Number(m[2]);
  }
  return out;
}
