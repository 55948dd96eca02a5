/**
 * The pool's dealings with drivers: start an instance for a sandbox id made in advance, check a
 * pooled one, and destroy one. Shared by the checkout path (pool.ts) and the keeper
 * (pool-keeper.ts).
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { WarrenConfig } from "../core/config.js";
import type { RuntimeConfig, RuntimeInstance } from "../core/driver.js";
import type { Logger } from "../core/log.js";
import { selfIdentity } from "../core/proc.js";
import type { DriverRegistry } from "../core/registry.js";
import type { PooledRecord, Store } from "../core/store/index.js";
import type { Environments } from "./environments.js";
import type { PoolSpec } from "./pool-spec.js";

/** What the pool needs from the service layer. */
export interface PoolContext {
  config: Readonly<WarrenConfig>;
  store: Store;
  registry: DriverRegistry;
  environments: Environments;
  log: Logger;
}

/** This process, as the owner of what it makes. */
export const SELF = selfIdentity();

/**
 * The config of a pooled instance. Its hostname is its id (the name of the sandbox that takes it
 * is not known yet) and its env is empty: env vars are applied on each exec, from the sandbox.
 */
export function pooledConfig(
  id: string,
  spec: PoolSpec,
  workspaceDir: string,
  ctx: PoolContext,
  environment = spec.environment,
): RuntimeConfig {
  return {
    workspaceDir,
    environment: ctx.environments.resolve(environment),
    hostname: id,
    env: {},
    vcpuCount: spec.resources.vcpuCount,
    memoryMiB: spec.resources.memoryMiB,
    pidsMax: spec.resources.pidsMax,
    network: spec.network,
    healthTimeoutMs: 10000,
  };
}

/** Where a sandbox id's workspace lives. */
export const workspaceOf = (ctx: PoolContext, id: string): string =>
  join(ctx.config.stateDir, "workspaces", id);

/** Creates the workspace and starts an instance; on failure nothing is left but the error. */
export async function startInstance(
  ctx: PoolContext,
  id: string,
  config: RuntimeConfig,
  driverName: string,
): Promise<RuntimeInstance> {
  mkdirSync(config.workspaceDir, { recursive: true, mode: 0o755 });
  let instance: RuntimeInstance | null = null;
  try {
    instance = await ctx.registry.get(driverName).createInstance(id, config);
    await instance.start({ timeoutMs: config.healthTimeoutMs });
    return instance;
  } catch (err) {
    await instance?.destroy().catch(() => undefined);
    rmSync(config.workspaceDir, { recursive: true, force: true });
    throw err;
  }
}

/** Re-binds a pooled instance. */
export function attachPooled(ctx: PoolContext, p: PooledRecord): Promise<RuntimeInstance> {
  return ctx.registry
    .get(p.spec.driver)
    .attach(p.id, pooledConfig(p.id, p.spec, p.workspaceDir, ctx), p.driverState ?? {});
}

/** Whether a pooled instance is alive; false for any error. */
export async function pooledHealthy(ctx: PoolContext, p: PooledRecord): Promise<boolean> {
  try {
    return await (await attachPooled(ctx, p)).isHealthy();
  } catch {
    return false;
  }
}

/**
 * Takes an instance out of the pool and destroys it with its workspace. Only the caller that
 * removes the row destroys: an instance claimed meanwhile by a checkout is left alone.
 * @returns whether this call destroyed it
 */
export async function discardPooled(ctx: PoolContext, p: PooledRecord, why: string): Promise<boolean> {
  if (!ctx.store.pool.remove(p.id)) return false;
  await destroyPooled(ctx, p);
  ctx.log.debug("pooled instance discarded", { sandboxId: p.id, driver: p.spec.driver, why });
  return true;
}

/** Destroys a pooled instance and its workspace (its row must be gone already). */
export async function destroyPooled(ctx: PoolContext, p: PooledRecord): Promise<void> {
  if (ctx.registry.has(p.spec.driver)) {
    const driver = ctx.registry.get(p.spec.driver);
    try {
      await (await attachPooled(ctx, p)).destroy();
    } catch {
      // The environment may be gone; destroy with the host view so resources still go.
      const config = pooledConfig(p.id, p.spec, p.workspaceDir, ctx, "host");
      await (await driver.attach(p.id, config, p.driverState ?? {})).destroy().catch(() => undefined);
    }
  }
  rmSync(p.workspaceDir, { recursive: true, force: true });
}

/** Empties a workspace directory on the host, keeping the directory (symlinks are not followed). */
export function emptyWorkspace(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) rmSync(join(dir, e), { recursive: true, force: true });
}
