/** Validation of user input. Every failure is an InvalidArgumentError with a hint; nothing is changed. */
import { randomBytes } from "node:crypto";
import { InvalidArgumentError } from "./errors.js";
import type { NetworkPolicy, OnTimeout } from "./types.js";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Limits of sandbox requests. */
export const LIMITS = Object.freeze({
  vcpuCount: { min: 1, max: 8 },
  memoryMiB: { min: 128, max: 32768 },
  pidsMax: { min: 16, max: 65536 },
  ttlSeconds: { min: 60, max: 86400 },
});

/** A new sandbox id: `sbx-` and 12 hex digits. */
export function newSandboxId(): string {
  return `sbx-${randomBytes(6).toString("hex")}`;
}

/** Whether a string looks like a sandbox id (so it is looked up as an id before a name). */
export function isSandboxId(value: string): boolean {
  return /^sbx-[0-9a-f]{12}$/.test(value);
}

/** @throws InvalidArgumentError unless the name is 1–128 chars of [A-Za-z0-9._-] starting alphanumeric. */
export function validateName(name: string, what = "sandbox name"): string {
  if (!NAME_RE.test(name)) {
    throw new InvalidArgumentError(`invalid ${what} "${name}"`, {
      hint: "use 1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit",
      details: { name },
    });
  }
  return name;
}

/** @throws InvalidArgumentError unless value is an integer within [min, max]. */
export function validateIntInRange(value: number, what: string, min: number, max: number, unit = ""): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}${unit}, got ${value}`, {
      hint: `pass a ${what} between ${min} and ${max}${unit}`,
      details: { [what]: value, min, max },
    });
  }
  return value;
}

/** @throws InvalidArgumentError for a label key or value that is not allowed. */
export function validateLabels(labels: Record<string, string>): Record<string, string> {
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY_RE.test(key)) {
      throw new InvalidArgumentError(`invalid label key "${key}"`, {
        hint: "label keys are 1-63 characters of A-Z a-z 0-9 . _ / -, starting with a letter or digit",
      });
    }
    if (typeof value !== "string" || value.length > 255) {
      throw new InvalidArgumentError(`invalid value for label "${key}"`, {
        hint: "label values are strings of at most 255 characters",
      });
    }
  }
  return labels;
}

/** @throws InvalidArgumentError for an environment variable name that is not allowed. */
export function validateEnv(env: Record<string, string>): Record<string, string> {
  for (const [key, value] of Object.entries(env)) {
    if (!ENV_KEY_RE.test(key)) {
      throw new InvalidArgumentError(`invalid environment variable name "${key}"`, {
        hint: "names are letters, digits and _, not starting with a digit",
      });
    }
    if (typeof value !== "string" || value.includes("\0")) {
      throw new InvalidArgumentError(`invalid value for environment variable "${key}"`, {
        hint: "values are strings without NUL bytes",
      });
    }
  }
  return env;
}

/** Parses `K=V` pairs (labels, env) from the command line. */
export function parsePairs(pairs: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new InvalidArgumentError(`invalid ${what} "${pair}"`, { hint: `write ${what}s as KEY=VALUE` });
    }
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** @throws InvalidArgumentError unless the policy is `none` or `host`. */
export function validateNetwork(value: string): NetworkPolicy {
  if (value !== "none" && value !== "host") {
    throw new InvalidArgumentError(`invalid network policy "${value}"`, { hint: "use none or host" });
  }
  return value;
}

/** @throws InvalidArgumentError unless the policy is `stop` or `delete`. */
export function validateOnTimeout(value: string): OnTimeout {
  if (value !== "stop" && value !== "delete") {
    throw new InvalidArgumentError(`invalid on-timeout policy "${value}"`, { hint: "use stop or delete" });
  }
  return value;
}

/** @throws InvalidArgumentError unless argv is a non-empty list of strings without NUL bytes. */
export function validateArgv(argv: string[]): string[] {
  if (!Array.isArray(argv) || argv.length === 0 || argv[0] === "") {
    throw new InvalidArgumentError("no command given", { hint: "put the command after --, e.g. -- ls -la" });
  }
  if (argv.some((a) => typeof a !== "string" || a.includes("\0"))) {
    throw new InvalidArgumentError("command arguments must be strings without NUL bytes", {
      hint: "remove NUL characters from the command's arguments",
    });
  }
  return argv;
}

/** @throws InvalidArgumentError unless the command timeout is a positive number of milliseconds. */
export function validateTimeoutMs(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(`timeout must be greater than 0, got ${value}`, {
      hint: "pass a positive timeout, e.g. --timeout 30",
    });
  }
  return value;
}

/** @throws InvalidArgumentError unless the path is absolute and has no NUL bytes. */
export function validateSandboxPath(path: string, what = "path"): string {
  if (!path.startsWith("/") || path.includes("\0")) {
    throw new InvalidArgumentError(`${what} must be an absolute path inside the sandbox, got "${path}"`, {
      hint: "use a path such as /workspace/src",
    });
  }
  return path;
}
