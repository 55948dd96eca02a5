/**
 * Out-of-process drivers registered in a state directory: `<stateDir>/drivers/external.json`
 * names each one and says how to reach it (a socket, a command to spawn, or a built-in driver to
 * run with `warren driver serve`), with the capabilities its last handshake reported so they are
 * known before it is reached again. `warren driver add` and `--driver-socket` write it.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import type { DriverCapabilities } from "../../core/driver.js";
import { InvalidArgumentError } from "../../core/errors.js";

/** How to reach one out-of-process driver: exactly one of `socket`, `command`, `builtin`. */
export interface ExternalDriverSpec {
  /** A socket someone else serves the driver on (third-party drivers, privilege separation). */
  socket?: string;
  /** A driver binary (and arguments) to spawn through the bootstrap handshake. */
  command?: string[];
  /** A built-in driver to run out-of-process (`warren driver serve NAME`). */
  builtin?: string;
}

/** One registered out-of-process driver. */
export interface ExternalDriverRegistration extends ExternalDriverSpec {
  /** One line for `doctor`. */
  description?: string;
  /** Whether using it needs `allowHost` (a driver that gives no isolation). @default false */
  requiresOptIn?: boolean;
  /** What its last handshake reported. */
  capabilities?: DriverCapabilities;
}

const capabilitiesSchema = z.object({
  isolation: z.enum(["none", "namespace", "container", "vm"]),
  networkPolicies: z.array(z.enum(["none", "host"])),
  limits: z.object({ memory: z.boolean(), pids: z.boolean(), cpu: z.boolean() }),
  rootfsEnvironments: z.boolean(),
  persistentInstances: z.boolean(),
  posixShell: z.boolean(),
});

const registrationSchema = z
  .object({
    socket: z.string().min(1).optional(),
    command: z.array(z.string()).min(1).optional(),
    builtin: z.string().min(1).optional(),
    description: z.string().optional(),
    requiresOptIn: z.boolean().optional(),
    capabilities: capabilitiesSchema.optional(),
  })
  .refine((r) => [r.socket, r.command, r.builtin].filter((x) => x !== undefined).length === 1, {
    message: "give exactly one of socket, command, builtin",
  });

const fileSchema = z.object({ drivers: z.record(registrationSchema) });

/** Path of the registrations file of a state directory. */
export function registrationsPath(stateDir: string): string {
  return join(stateDir, "drivers", "external.json");
}

/**
 * The registered out-of-process drivers (none when the file does not exist).
 * @throws InvalidArgumentError when the file is not valid
 */
export function readRegistrations(stateDir: string): Record<string, ExternalDriverRegistration> {
  const path = registrationsPath(stateDir);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return {};
  }
  let parsed;
  try {
    parsed = fileSchema.safeParse(JSON.parse(text));
  } catch (err) {
    throw new InvalidArgumentError(`${path} is not valid JSON`, { hint: "fix or remove it", cause: err });
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidArgumentError(`${path} is invalid: ${issue?.message} at ${issue?.path.join(".")}`, {
      hint: "fix it, or re-register the drivers with `warren driver add`",
    });
  }
  return parsed.data.drivers as Record<string, ExternalDriverRegistration>;
}

/** Writes the registrations atomically (another process may be reading them). */
export function writeRegistrations(
  stateDir: string,
  drivers: Record<string, ExternalDriverRegistration>,
): void {
  const path = registrationsPath(stateDir);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ drivers }, null, 2) + "\n", { mode: 0o644 });
  renameSync(tmp, path);
}

/** Adds or replaces one registration. */
export function saveRegistration(stateDir: string, name: string, reg: ExternalDriverRegistration): void {
  writeRegistrations(stateDir, { ...readRegistrations(stateDir), [name]: reg });
}

/** Removes one registration; whether it existed. */
export function removeRegistration(stateDir: string, name: string): boolean {
  const all = readRegistrations(stateDir);
  if (!(name in all)) return false;
  delete all[name];
  writeRegistrations(stateDir, all);
  return true;
}
