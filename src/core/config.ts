/**
 * Configuration, resolved once into a frozen object. Precedence, highest first: explicit option >
 * `WARREN_*` environment variable > config file (`$XDG_CONFIG_HOME/warren/config.json`) > default.
 * Every field is documented in docs/configuration.md.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { InvalidArgumentError } from "./errors.js";

/** The warm pool (docs/configuration.md, "pool"). Set in the config file only. */
export interface PoolConfig {
  /**
   * Instances kept started and unused per spec key (`DRIVER[/ENV][,cpus=N][,memory=MiB][,pids=N][,network=P]`,
   * unnamed parts from the defaults), by a process that runs the pool (`warren serve`). @default {}
   */
  prewarm: Record<string, number>;
  /** Most instances in the pool at once, every key together. @default 16 */
  maxInstances: number;
  /** An instance beyond its key's prewarm count (or checked in) is destroyed after this long unused. @default 300 */
  idleTimeoutSeconds: number;
}

/** Syntax of a pool spec key; pool-spec.ts parses it. */
export const POOL_KEY_PATTERN =
  /^[a-z][a-z0-9-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?(,(cpus|memory|pids|network)=[a-z0-9]+)*$/;

/** Resolved configuration. */
export interface WarrenConfig {
  /** State directory (SQLite store, workspaces, environments). `WARREN_HOME`. @default $XDG_DATA_HOME/warren, or /var/lib/warren for root */
  stateDir: string;
  /** Driver used when none is named. `WARREN_DRIVER`. @default "bwrap" */
  defaultDriver: string;
  /** Environment used when none is named. `WARREN_ENV`. @default "host" */
  defaultEnvironment: string;
  /** Host uid (and gid) that sandboxed processes run as. `WARREN_SANDBOX_UID`. @default 61000 */
  sandboxUid: number;
  /** Most sandboxes that may be creating or running at once. `WARREN_MAX_SANDBOXES`. @default 256 */
  maxActiveSandboxes: number;
  /** TTL of a new sandbox. `WARREN_TTL_SECONDS`. @default 3600 */
  defaultTtlSeconds: number;
  /** Memory of a new sandbox. `WARREN_MEMORY_MIB`. @default 512 */
  defaultMemoryMiB: number;
  /** CPUs of a new sandbox. `WARREN_CPUS`. @default 1 */
  defaultVcpuCount: number;
  /** Process limit of a new sandbox. `WARREN_PIDS_MAX`. @default 512 */
  defaultPidsMax: number;
  /** Bytes of each output stream kept in results and the journal. `WARREN_MAX_OUTPUT_BYTES`. @default 1048576 */
  maxOutputBytes: number;
  /** Log level for structured logs on stderr. `WARREN_LOG_LEVEL`. @default "warn" */
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
  /** The warm pool. Config file only (no variable). */
  pool: PoolConfig;
}

const poolSchema = z
  .object({
    prewarm: z.record(
      z.string().regex(POOL_KEY_PATTERN, "not a pool spec key"),
      z.number().int().min(0).max(1000),
    ),
    maxInstances: z.number().int().min(0).max(10000),
    idleTimeoutSeconds: z.number().int().min(1).max(86400),
  })
  .partial()
  .strict();

const fileSchema = z
  .object({
    stateDir: z.string().min(1),
    defaultDriver: z.string().min(1),
    defaultEnvironment: z.string().min(1),
    sandboxUid: z.number().int().min(1).max(4294967294),
    maxActiveSandboxes: z.number().int().min(1).max(100000),
    defaultTtlSeconds: z.number().int().min(60).max(86400),
    defaultMemoryMiB: z.number().int().min(128).max(32768),
    defaultVcpuCount: z.number().int().min(1).max(8),
    defaultPidsMax: z.number().int().min(16).max(1000000),
    maxOutputBytes: z
      .number()
      .int()
      .min(1024)
      .max(1 << 30),
    logLevel: z.enum(["debug", "info", "warn", "error", "silent"]),
    pool: poolSchema,
  })
  .partial()
  .strict();

/** Fields set by an environment variable (all but `pool`). */
type EnvField = Exclude<keyof WarrenConfig, "pool">;

const envNames: Record<EnvField, string> = {
  stateDir: "WARREN_HOME",
  defaultDriver: "WARREN_DRIVER",
  defaultEnvironment: "WARREN_ENV",
  sandboxUid: "WARREN_SANDBOX_UID",
  maxActiveSandboxes: "WARREN_MAX_SANDBOXES",
  defaultTtlSeconds: "WARREN_TTL_SECONDS",
  defaultMemoryMiB: "WARREN_MEMORY_MIB",
  defaultVcpuCount: "WARREN_CPUS",
  defaultPidsMax: "WARREN_PIDS_MAX",
  maxOutputBytes: "WARREN_MAX_OUTPUT_BYTES",
  logLevel: "WARREN_LOG_LEVEL",
};

/** The environment variable that sets each field. */
export const CONFIG_ENV_NAMES: Readonly<Record<EnvField, string>> = Object.freeze(envNames);

/** Path of the config file. */
export function configFilePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "warren", "config.json");
}

/**
 * Default state directory: `$XDG_DATA_HOME/warren`; for root without XDG_DATA_HOME,
 * `/var/lib/warren`, because root's home is mode 0700 and sandboxes run as an unprivileged uid
 * that must reach the workspaces.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, "warren");
  if (process.getuid?.() === 0) return "/var/lib/warren";
  return join(env.HOME || homedir(), ".local", "share", "warren");
}

function defaults(env: NodeJS.ProcessEnv): WarrenConfig {
  return {
    stateDir: defaultStateDir(env),
    defaultDriver: "bwrap",
    defaultEnvironment: "host",
    sandboxUid: 61000,
    maxActiveSandboxes: 256,
    defaultTtlSeconds: 3600,
    defaultMemoryMiB: 512,
    defaultVcpuCount: 1,
    defaultPidsMax: 512,
    maxOutputBytes: 1048576,
    logLevel: "warn",
    pool: { prewarm: {}, maxInstances: 16, idleTimeoutSeconds: 300 },
  };
}

/** Config as read from a file or given explicitly: the pool section may be partial. */
type PartialConfig = Partial<Omit<WarrenConfig, "pool">> & { pool?: Partial<PoolConfig> };

function readFile(path: string): PartialConfig {
  if (!existsSync(path)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new InvalidArgumentError(`config file ${path} is not valid JSON`, {
      hint: "fix or remove the file",
      cause: err,
    });
  }
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw)) {
    // Backend profiles share this file; src/sdk/profiles.ts reads and validates them.
    const {
      profiles: _profiles,
      activeProfile: _activeProfile,
      ...settings
    } = raw as Record<string, unknown>;
    raw = settings;
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InvalidArgumentError(`config file ${path} is invalid: ${parsed.error.issues[0]?.message}`, {
      hint: `field "${parsed.error.issues[0]?.path.join(".")}"; see docs/configuration.md`,
    });
  }
  return parsed.data;
}

function readEnv(env: NodeJS.ProcessEnv): PartialConfig {
  const out: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(envNames)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    const shape = fileSchema.shape[key as EnvField];
    const candidate =
      /^-?\d+$/.test(value) && !["stateDir", "defaultDriver", "defaultEnvironment"].includes(key)
        ? Number(value)
        : value;
    const parsed = shape.safeParse(candidate);
    if (!parsed.success) {
      throw new InvalidArgumentError(`environment variable ${name}=${value} is invalid`, {
        hint: `${parsed.error.issues[0]?.message}; see docs/configuration.md`,
      });
    }
    out[key] = parsed.data;
  }
  return out as PartialConfig;
}

/**
 * Resolves the configuration once.
 * @throws InvalidArgumentError when the config file or a WARREN_* variable is invalid.
 */
export function resolveConfig(
  explicit: PartialConfig = {},
  env: NodeJS.ProcessEnv = process.env,
): Readonly<WarrenConfig> {
  const defined = Object.fromEntries(Object.entries(explicit).filter(([, v]) => v !== undefined));
  const base = defaults(env);
  const file = readFile(configFilePath(env));
  const pool = { ...base.pool, ...file.pool, ...explicit.pool };
  const merged: WarrenConfig = {
    ...base,
    ...file,
    ...readEnv(env),
    ...defined,
    pool: Object.freeze({ ...pool, prewarm: Object.freeze({ ...pool.prewarm }) }),
  };
  return Object.freeze({ ...merged, stateDir: resolve(merged.stateDir) });
}
