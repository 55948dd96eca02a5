/**
 * The external driver: registers an out-of-process driver in the registry. It reaches the driver
 * through protocol v1 (src/protocol/v1), either by spawning it (a third-party binary, or
 * `warren driver serve NAME` for a built-in) through the bootstrap handshake, or by connecting to
 * a socket someone else serves it on.
 */
import { fileURLToPath } from "node:url";
import type { DriverCapabilities, DriverFactory } from "../../core/driver.js";
import { AlreadyExistsError, InvalidArgumentError } from "../../core/errors.js";
import type { LogLevel } from "../../core/log.js";
import { spawnDriver } from "../../protocol/v1/bootstrap.js";
import { ExternalDriver, type DriverConnector, type HandshakeInfo } from "../../protocol/v1/client.js";
import {
  readRegistrations,
  saveRegistration,
  type ExternalDriverRegistration,
  type ExternalDriverSpec,
} from "./registrations.js";

export type { ExternalDriverRegistration, ExternalDriverSpec } from "./registrations.js";
export { ExternalDriver } from "../../protocol/v1/client.js";

/** The command that runs a built-in driver out-of-process: this Warren's `driver serve NAME`. */
export function builtinDriverCommand(name: string): string[] {
  const main = fileURLToPath(new URL("../../cli/main.js", import.meta.url));
  return [process.execPath, main, "driver", "serve", name];
}

/** How to reach the driver a spec names. */
export function connectorFor(name: string, spec: ExternalDriverSpec): DriverConnector {
  if (spec.socket !== undefined) {
    const socket = spec.socket;
    return async () => ({
      socket,
      lost: () => null,
      waitLost: async () => null,
      close: async () => undefined,
    });
  }
  const command = spec.command ?? builtinDriverCommand(spec.builtin!);
  return (hello) => spawnDriver(name, command, hello);
}

/** The log level a spawned driver gets: Warren's own, from `WARREN_LOG_LEVEL`. */
function logLevel(): LogLevel {
  const l = process.env.WARREN_LOG_LEVEL;
  return l === "debug" || l === "info" || l === "error" || l === "silent" ? l : "warn";
}

/** Builds the driver for one spec. */
export function createExternalDriver(
  name: string,
  spec: ExternalDriverSpec,
  options: {
    stateDir: string;
    capabilities?: DriverCapabilities;
    onHandshake?: (info: HandshakeInfo) => void;
  },
): ExternalDriver {
  return new ExternalDriver({
    name,
    connect: connectorFor(name, spec),
    stateDir: options.stateDir,
    logLevel: logLevel(),
    capabilities: options.capabilities,
    onHandshake: options.onHandshake,
  });
}

/** Where a spec points, in words. */
export function describeSpec(spec: ExternalDriverSpec): string {
  if (spec.socket !== undefined) return `socket ${spec.socket}`;
  if (spec.command !== undefined) return `command ${spec.command.join(" ")}`;
  return `built-in ${spec.builtin} out-of-process`;
}

/** A registry factory for one registered driver; a changed handshake updates the registration. */
export function externalDriverFactory(name: string, reg: ExternalDriverRegistration): DriverFactory {
  return {
    name,
    description: reg.description ?? `out-of-process driver (${describeSpec(reg)})`,
    requiresOptIn: reg.requiresOptIn ?? false,
    create: ({ stateDir }) =>
      createExternalDriver(name, reg, {
        stateDir,
        capabilities: reg.capabilities,
        onHandshake: (info) => {
          if (JSON.stringify(info.capabilities) === JSON.stringify(reg.capabilities)) return;
          const current = readRegistrations(stateDir)[name];
          if (current) saveRegistration(stateDir, name, { ...current, capabilities: info.capabilities });
        },
      }),
  };
}

/** Factories of every driver registered in a state directory. */
export function externalDriverFactories(stateDir: string): DriverFactory[] {
  return Object.entries(readRegistrations(stateDir)).map(([name, reg]) => externalDriverFactory(name, reg));
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** What registering needs besides the spec. */
export interface RegisterOptions {
  /** Name to register under. @default the name the driver gives in its handshake */
  name?: string;
  /** Names that may not be taken (the built-in drivers). */
  reserved: readonly string[];
  description?: string;
  requiresOptIn?: boolean;
  /** Replace a registration of the same name that points elsewhere. @default false */
  replace?: boolean;
}

/**
 * Reaches the driver once (spawning it if needed), then records it in the state directory with
 * the capabilities it reported.
 * @throws DriverUnavailableError when it cannot be reached or speaks another protocol version;
 *   InvalidArgumentError for a bad name; AlreadyExistsError when the name is taken.
 */
export async function registerExternalDriver(
  stateDir: string,
  spec: ExternalDriverSpec,
  o: RegisterOptions,
): Promise<{ name: string; registration: ExternalDriverRegistration; info: HandshakeInfo }> {
  const probeName = o.name ?? "external";
  const driver = createExternalDriver(probeName, spec, { stateDir });
  let info: HandshakeInfo;
  try {
    info = await driver.handshake();
  } finally {
    await driver.close();
  }
  const name = o.name ?? info.driverName;
  if (!NAME.test(name)) {
    throw new InvalidArgumentError(`"${name}" is not a valid driver name`, {
      hint: "use 1-32 lowercase letters, digits and dashes, starting with a letter (--driver NAME)",
    });
  }
  if (o.reserved.includes(name)) {
    throw new AlreadyExistsError(`"${name}" is the name of a built-in driver`, {
      hint: "register the out-of-process driver under another name (--driver NAME)",
      details: { driver: name },
    });
  }
  const existing = readRegistrations(stateDir)[name];
  if (existing && !o.replace && describeSpec(existing) !== describeSpec(spec)) {
    throw new AlreadyExistsError(
      `a driver named "${name}" is already registered (${describeSpec(existing)})`,
      {
        hint: `remove it with \`warren driver rm ${name}\`, or choose another name`,
        details: { driver: name },
      },
    );
  }
  const registration: ExternalDriverRegistration = {
    ...spec,
    capabilities: info.capabilities,
    ...(o.description !== undefined ? { description: o.description } : {}),
    ...(o.requiresOptIn !== undefined ? { requiresOptIn: o.requiresOptIn } : {}),
  };
  saveRegistration(stateDir, name, registration);
  return { name, registration, info };
}
