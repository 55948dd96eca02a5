/**
 * The agent manifest, `warren-agent.json` at the root of a package: what to run, in what kind of
 * sandbox, for how long. Parsed with zod; every problem is an InvalidArgumentError that names
 * the field and says how to fix it.
 */
import { z } from "zod/v4";
import { InvalidArgumentError } from "../core/errors.js";
import { LIMITS } from "../core/names.js";

/** File name of the manifest inside a package. */
export const MANIFEST_FILE = "warren-agent.json";

/** Longest run allowed, in seconds (a sandbox's longest TTL, less a margin to collect results). */
export const MAX_TIMEOUT_SECONDS = LIMITS.ttlSeconds.max - 600;

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** The manifest schema (unknown fields are refused, so a typo is not silently ignored). */
export const ManifestSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "1-63 of a-z 0-9 . _ -, starting with a letter or digit"),
  description: z.string().max(1000).optional(),
  entrypoint: z.union([
    z.string().min(1, "must not be empty"),
    z.array(z.string().refine((s) => !s.includes("\0"), "no NUL bytes")).min(1, "must not be empty"),
  ]),
  environment: z.string().min(1).optional(),
  driver: z.string().min(1).optional(),
  resources: z
    .strictObject({
      vcpuCount: int(LIMITS.vcpuCount.min, LIMITS.vcpuCount.max).optional(),
      memoryMiB: int(LIMITS.memoryMiB.min, LIMITS.memoryMiB.max).optional(),
      pidsMax: int(LIMITS.pidsMax.min, LIMITS.pidsMax.max).optional(),
    })
    .optional(),
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "letters, digits and _, not starting with a digit"),
      z.string().refine((s) => !s.includes("\0"), "no NUL bytes"),
    )
    .optional(),
  network: z.enum(["none", "host"]).optional(),
  timeoutSeconds: int(1, MAX_TIMEOUT_SECONDS).optional(),
  reuse: z.boolean().optional(),
});

/** A manifest as written (optional fields may be missing). */
export type ManifestInput = z.input<typeof ManifestSchema>;

/** A validated manifest with its defaults applied. */
export interface AgentManifest {
  /** The agent's name: 1-63 of a-z 0-9 . _ -. */
  name: string;
  description: string;
  /** The command: argv, or a string run by `/bin/sh -c`. */
  entrypoint: string[];
  /** Environment (root filesystem). @default the configured default ("host") */
  environment: string | null;
  /** Driver. @default the configured default ("bwrap") */
  driver: string | null;
  resources: { vcpuCount?: number; memoryMiB?: number; pidsMax?: number };
  /** Environment variables of the entrypoint. */
  env: Record<string, string>;
  /** @default "none" (loopback only) */
  network: "none" | "host";
  /** The entrypoint is killed after this long. @default 600 */
  timeoutSeconds: number;
  /** Runs of this agent may hand a still-clean sandbox to its next run. @default false */
  reuse: boolean;
}

/** Default of `timeoutSeconds`. */
export const DEFAULT_TIMEOUT_SECONDS = 600;

/**
 * Parses and validates a manifest's text.
 * @throws InvalidArgumentError naming the file, the field and the problem
 */
export function parseManifest(text: string, where = MANIFEST_FILE): AgentManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`${where} is not valid JSON: ${(err as Error).message}`, {
      hint: "fix the JSON syntax (an editor or `jq . warren-agent.json` shows where)",
      details: { file: where },
    });
  }
  const r = ManifestSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
    const first = issues[0];
    throw new InvalidArgumentError(
      `invalid ${where}: ${first.path ? `${first.path}: ` : ""}${first.message}`,
      {
        hint: "see docs/agents.md for the manifest fields (name and entrypoint are required)",
        details: { file: where, issues },
      },
    );
  }
  const m = r.data;
  return {
    name: m.name,
    description: m.description ?? "",
    entrypoint: typeof m.entrypoint === "string" ? ["/bin/sh", "-c", m.entrypoint] : m.entrypoint,
    environment: m.environment ?? null,
    driver: m.driver ?? null,
    resources: { ...m.resources },
    env: { ...m.env },
    network: m.network ?? "none",
    timeoutSeconds: m.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    reuse: m.reuse ?? false,
  };
}
