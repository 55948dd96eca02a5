/**
 * Backend profiles: named ways to reach Warren, kept in the config file that src/core/config.ts
 * reads (`$XDG_CONFIG_HOME/warren/config.json`) under `profiles`, with `activeProfile` naming the
 * one used when nothing else is chosen. A profile holds an API key, so every write replaces the
 * file atomically (temporary file + rename) with mode 0600; other keys in the file are kept.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { z } from "zod";
import { configFilePath } from "../core/config.js";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "../core/errors.js";

/** A Warren server reached over HTTP (`warren serve`). */
export interface RemoteProfile {
  /** Base URL of the server, e.g. `https://warren.example:7377`. */
  url: string;
  /** API key sent as a bearer token. */
  apiKey: string;
}

/** Warren in this process, on a state directory. */
export interface LocalProfile {
  local: true;
  /** State directory, an absolute path. @default the configured one (`WARREN_HOME`, config file, default) */
  stateDir?: string;
}

/** A named way to reach Warren. */
export type Profile = RemoteProfile | LocalProfile;

/** The profiles section of the config file. */
export interface ProfileSet {
  /** Path of the config file. */
  path: string;
  profiles: Record<string, Profile>;
  /** Name of the profile used when neither an option nor a variable picks one, if any. */
  activeProfile: string | null;
}

const PROFILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const remoteSchema = z
  .object({
    url: z
      .string()
      .url()
      .refine((u) => /^https?:\/\//i.test(u), "must be an http:// or https:// URL"),
    apiKey: z.string().min(1),
  })
  .strict();
const localSchema = z
  .object({
    local: z.literal(true),
    stateDir: z.string().startsWith("/", "stateDir must be an absolute path").optional(),
  })
  .strict();
const profileSchema = z.union([remoteSchema, localSchema]);
const sectionSchema = z.object({
  profiles: z.record(profileSchema).default({}),
  activeProfile: z.string().min(1).nullable().default(null),
});

/** Whether a profile reaches a server (as opposed to running Warren in this process). */
export function isRemoteProfile(profile: Profile): profile is RemoteProfile {
  return "url" in profile;
}

/** @throws InvalidArgumentError unless the name is 1–64 characters of A-Z a-z 0-9 . _ - */
export function validateProfileName(name: string): string {
  if (typeof name !== "string" || !PROFILE_NAME_RE.test(name)) {
    throw new InvalidArgumentError(`invalid profile name "${name}"`, {
      hint: "use 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit",
    });
  }
  return name;
}

/**
 * Checks a profile's fields.
 * @throws InvalidArgumentError naming the bad field
 */
export function validateProfile(profile: unknown): Profile {
  const parsed = profileSchema.safeParse(profile);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidArgumentError(`invalid profile: ${issue?.message ?? "bad shape"}`, {
      hint: "a profile is { url, apiKey } or { local: true, stateDir? }",
      details: { field: issue?.path.join(".") },
    });
  }
  return parsed.data as Profile;
}

/** Hides all of an API key but its last four characters (all of it when it is short). */
export function redactKey(key: string): string {
  return key.length >= 16 ? `****${key.slice(-4)}` : "****";
}

/** A copy of the profile that is safe to print: the API key redacted. */
export function redactProfile(profile: Profile): Profile {
  return isRemoteProfile(profile) ? { ...profile, apiKey: redactKey(profile.apiKey) } : { ...profile };
}

function readRaw(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new InvalidArgumentError(`cannot read config file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`config file ${path} is not valid JSON`, {
      hint: "fix or remove the file",
      cause: err,
    });
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new InvalidArgumentError(`config file ${path} is not a JSON object`, {
      hint: "fix or remove the file",
    });
  }
  return raw as Record<string, unknown>;
}

function parseSet(path: string, raw: Record<string, unknown>): ProfileSet {
  const parsed = sectionSchema.safeParse({ profiles: raw.profiles, activeProfile: raw.activeProfile });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidArgumentError(`config file ${path} has an invalid profile: ${issue?.message}`, {
      hint: `field "${issue?.path.join(".")}"; a profile is { url, apiKey } or { local: true, stateDir? }`,
    });
  }
  return {
    path,
    profiles: parsed.data.profiles as Record<string, Profile>,
    activeProfile: parsed.data.activeProfile,
  };
}

/**
 * Reads the profiles of the config file (none when the file does not exist).
 * @throws InvalidArgumentError when the file or a profile in it is invalid
 */
export function readProfiles(env: NodeJS.ProcessEnv = process.env): ProfileSet {
  const path = configFilePath(env);
  return parseSet(path, readRaw(path));
}

/**
 * One profile by name.
 * @throws NotFoundError when there is no such profile
 */
export function getProfile(name: string, env: NodeJS.ProcessEnv = process.env): Profile {
  const { profiles, path } = readProfiles(env);
  const profile = Object.hasOwn(profiles, name) ? profiles[name] : undefined;
  if (!profile) {
    throw new NotFoundError(`no profile named "${name}" in ${path}`, {
      hint: "list them with `warren profile ls`, add one with `warren profile add`",
      details: { profile: name },
    });
  }
  return profile;
}

/** Replaces the file atomically: a private temporary file in the same directory, renamed over it. */
function writeRaw(path: string, raw: Record<string, unknown>): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = join(dirname(path), `.config.json.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, JSON.stringify(raw, null, 2) + "\n");
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function update(env: NodeJS.ProcessEnv, change: (set: ProfileSet) => void): ProfileSet {
  const path = configFilePath(env);
  const raw = readRaw(path);
  const set = parseSet(path, raw);
  change(set);
  raw.profiles = set.profiles;
  if (set.activeProfile === null) delete raw.activeProfile;
  else raw.activeProfile = set.activeProfile;
  writeRaw(path, raw);
  return set;
}

/** Options of `addProfile`. */
export interface AddProfileOptions {
  /** Replace a profile of the same name. @default false */
  replace?: boolean;
  /** Make it the active profile. @default false */
  activate?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * Adds (or with `replace`, replaces) a profile.
 * @throws InvalidArgumentError (bad name or fields), AlreadyExistsError (name taken, no `replace`)
 */
export function addProfile(name: string, profile: Profile, options: AddProfileOptions = {}): ProfileSet {
  validateProfileName(name);
  const valid = validateProfile(profile);
  return update(options.env ?? process.env, (set) => {
    if (Object.hasOwn(set.profiles, name) && !options.replace) {
      throw new AlreadyExistsError(`profile "${name}" already exists`, {
        hint: "remove it first, or replace it (`warren profile add --force`)",
        details: { profile: name },
      });
    }
    set.profiles[name] = valid;
    if (options.activate) set.activeProfile = name;
  });
}

/**
 * Removes a profile; when it was the active one, no profile is active afterwards.
 * @throws NotFoundError when there is no such profile
 */
export function removeProfile(name: string, env: NodeJS.ProcessEnv = process.env): ProfileSet {
  getProfile(name, env);
  return update(env, (set) => {
    delete set.profiles[name];
    if (set.activeProfile === name) set.activeProfile = null;
  });
}

/**
 * Makes a profile the active one, or with `null` clears the choice (local Warren is used then).
 * @throws NotFoundError when there is no such profile
 */
export function useProfile(name: string | null, env: NodeJS.ProcessEnv = process.env): ProfileSet {
  if (name !== null) getProfile(name, env);
  return update(env, (set) => {
    set.activeProfile = name;
  });
}
