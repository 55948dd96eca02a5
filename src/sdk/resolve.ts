/**
 * Which Warren a front end talks to. Rules, highest first; the first that applies wins:
 *
 * 1. an explicit `backend` option: a Backend instance, or `{ url, apiKey }` of a server;
 * 2. an explicit `profile` option (a profile name);
 * 3. `WARREN_URL` and `WARREN_API_KEY`;
 * 4. `WARREN_PROFILE`, naming a profile;
 * 5. the config file's `activeProfile`;
 * 6. Warren in this process (the local backend on the configured state directory).
 *
 * `planBackend` decides without opening anything (for `doctor` and tests); `resolveBackend`
 * decides and opens.
 */
import type { WarrenConfig } from "../core/config.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { Backend } from "./backend.js";
import { openLocalBackend } from "./local.js";
import { RemoteBackend } from "./remote.js";
import { getProfile, isRemoteProfile, readProfiles, redactKey, type Profile } from "./profiles.js";

/** A Warren server to reach over HTTP (`warren serve`). */
export interface RemoteTarget {
  /** Base URL, e.g. `http://127.0.0.1:7377`. */
  url: string;
  /** API key sent as a bearer token. */
  apiKey: string;
}

/** Which rule picked the backend. */
export type BackendSource =
  "option" | "option-profile" | "WARREN_URL" | "WARREN_PROFILE" | "active-profile" | "default-local";

/** How to choose a backend. Every field is optional; see the module comment for the order. */
export interface ResolveOptions {
  /** A backend to use as it is, or a server to reach. Highest precedence. */
  backend?: Backend | RemoteTarget;
  /** Name of a profile in the config file, above the environment variables. */
  profile?: string;
  /** Config of a local backend, over `WARREN_*` variables and the config file. */
  config?: Partial<WarrenConfig>;
  /** Environment to read `WARREN_*` variables and the config file path from. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** What `planBackend` decided, before anything is opened. */
export interface BackendPlan {
  source: BackendSource;
  /** The profile that decided it, when one did. */
  profile?: string;
  target:
    | { kind: "instance"; backend: Backend }
    | { kind: "remote"; url: string; apiKey: string }
    | { kind: "local"; stateDir?: string };
  /** One line that is safe to print (the API key redacted). */
  description: string;
}

/** An opened backend and the rule that picked it. */
export interface ResolvedBackend {
  backend: Backend;
  source: BackendSource;
  /** The profile that decided it, when one did. */
  profile?: string;
  /** One line that is safe to print (the API key redacted). */
  description: string;
  /** Whether `resolveBackend` opened it, so the caller must close it (false for a given instance). */
  opened: boolean;
}

/** Whether a value is a Backend (as opposed to `{ url, apiKey }`). */
export function isBackend(value: unknown): value is Backend {
  return (
    typeof value === "object" && value !== null && typeof (value as Backend).createSandbox === "function"
  );
}

/** @throws InvalidArgumentError unless url is an http(s) URL and apiKey a non-empty string */
function checkTarget(url: unknown, apiKey: unknown, where: string): RemoteTarget {
  let parsed: URL | null = null;
  try {
    parsed = typeof url === "string" ? new URL(url) : null;
  } catch {
    parsed = null;
  }
  if (!parsed || !["http:", "https:"].includes(parsed.protocol)) {
    throw new InvalidArgumentError(`${where}: "${String(url)}" is not an http:// or https:// URL`, {
      hint: "use the address `warren serve` listens on, e.g. http://127.0.0.1:7377",
    });
  }
  if (typeof apiKey !== "string" || apiKey === "") {
    throw new InvalidArgumentError(`${where}: an API key is required with the URL`, {
      hint: "pass the key `warren serve` was started with",
    });
  }
  return { url: url as string, apiKey };
}

function fromProfile(source: BackendSource, name: string, profile: Profile): BackendPlan {
  if (isRemoteProfile(profile)) {
    return {
      source,
      profile: name,
      target: { kind: "remote", url: profile.url, apiKey: profile.apiKey },
      description: `remote ${profile.url} (key ${redactKey(profile.apiKey)}), profile "${name}" via ${source}`,
    };
  }
  return {
    source,
    profile: name,
    target: { kind: "local", stateDir: profile.stateDir },
    description: `local ${profile.stateDir ?? "(configured state dir)"}, profile "${name}" via ${source}`,
  };
}

/**
 * Decides which backend to use, without opening it.
 * @throws InvalidArgumentError (bad URL, key or config file), NotFoundError (an unknown profile)
 */
export function planBackend(options: ResolveOptions = {}): BackendPlan {
  const env = options.env ?? process.env;
  const given = options.backend;
  if (given !== undefined) {
    if (isBackend(given)) {
      return { source: "option", target: { kind: "instance", backend: given }, description: "given backend" };
    }
    const t = checkTarget(given?.url, given?.apiKey, "backend option");
    return {
      source: "option",
      target: { kind: "remote", ...t },
      description: `remote ${t.url} (key ${redactKey(t.apiKey)}) via option`,
    };
  }
  if (options.profile !== undefined) {
    return fromProfile("option-profile", options.profile, getProfile(options.profile, env));
  }
  if (env.WARREN_URL) {
    const t = checkTarget(env.WARREN_URL, env.WARREN_API_KEY, "WARREN_URL");
    return {
      source: "WARREN_URL",
      target: { kind: "remote", ...t },
      description: `remote ${t.url} (key ${redactKey(t.apiKey)}) via WARREN_URL`,
    };
  }
  if (env.WARREN_PROFILE) {
    return fromProfile("WARREN_PROFILE", env.WARREN_PROFILE, getProfile(env.WARREN_PROFILE, env));
  }
  const { activeProfile } = readProfiles(env);
  if (activeProfile !== null) {
    return fromProfile("active-profile", activeProfile, getProfile(activeProfile, env));
  }
  return {
    source: "default-local",
    target: { kind: "local" },
    description: "local (configured state dir), the default",
  };
}

/** Opens what a plan names. */
export async function openPlan(plan: BackendPlan, options: ResolveOptions = {}): Promise<ResolvedBackend> {
  const { source, profile, description, target } = plan;
  const base = { source, description, ...(profile === undefined ? {} : { profile }) };
  switch (target.kind) {
    case "instance":
      return { ...base, backend: target.backend, opened: false };
    case "remote":
      return {
        ...base,
        backend: new RemoteBackend({ url: target.url, apiKey: target.apiKey }),
        opened: true,
      };
    case "local": {
      const config = { ...options.config };
      if (target.stateDir !== undefined) config.stateDir = target.stateDir;
      return { ...base, backend: await openLocalBackend({ config, env: options.env }), opened: true };
    }
  }
}

/**
 * Picks a backend by the rules above and opens it. Close it when `opened` is true.
 * @throws InvalidArgumentError (bad URL, key or config file), NotFoundError (an unknown profile),
 *   and whatever opening the backend throws
 */
export async function resolveBackend(options: ResolveOptions = {}): Promise<ResolvedBackend> {
  return openPlan(planBackend(options), options);
}

/** A backend in use by one SDK object; `release` closes it when nobody else uses it. */
export interface BackendLease {
  backend: Backend;
  source: BackendSource;
  /** Gives the backend back; idempotent. */
  release(): Promise<void>;
}

const shared = new Map<string, { opening: Promise<ResolvedBackend>; users: number }>();

/**
 * Resolves a backend for an SDK object. A given Backend instance is lent as it is (never closed
 * here); one that is opened is shared by every object that resolves to the same target and
 * closed when the last of them releases it, so many sandboxes cost one connection (or one open
 * state directory).
 */
export async function leaseBackend(options: ResolveOptions = {}): Promise<BackendLease> {
  const plan = planBackend(options);
  if (plan.target.kind === "instance") {
    return { backend: plan.target.backend, source: plan.source, release: async () => {} };
  }
  const key = JSON.stringify([plan.target, options.config ?? {}]);
  let entry = shared.get(key);
  if (!entry) {
    const created = { opening: openPlan(plan, options), users: 0 };
    created.opening.catch(() => {
      if (shared.get(key) === created) shared.delete(key);
    });
    shared.set(key, created);
    entry = created;
  }
  entry.users++;
  const held = entry;
  let resolved: ResolvedBackend;
  try {
    resolved = await held.opening;
  } catch (err) {
    held.users--;
    throw err;
  }
  let released = false;
  return {
    backend: resolved.backend,
    source: resolved.source,
    async release() {
      if (released) return;
      released = true;
      if (--held.users > 0) return;
      if (shared.get(key) === held) shared.delete(key);
      await resolved.backend.close();
    },
  };
}
