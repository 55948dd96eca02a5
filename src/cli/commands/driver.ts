/**
 * `warren driver serve | ls | add | rm`: out-of-process drivers. `serve` runs a built-in driver
 * behind protocol v1 (the same code as in-process); `add` registers an out-of-process driver in
 * the state directory so `--driver NAME` finds it.
 */
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { resolveConfig } from "../../core/config.js";
import type { DriverFactory } from "../../core/driver.js";
import { InvalidArgumentError, NotFoundError, toWarrenError } from "../../core/errors.js";
import { createLogger } from "../../core/log.js";
import {
  describeSpec,
  externalDriverFactory,
  registerExternalDriver,
  type ExternalDriverSpec,
} from "../../drivers/external/driver.js";
import { readRegistrations, removeRegistration } from "../../drivers/external/registrations.js";
import { BUILTIN_DRIVERS } from "../../drivers/index.js";
import { answerBootstrap, readHello } from "../../protocol/v1/bootstrap.js";
import { serveDriver, type DriverServer } from "../../protocol/v1/server.js";
import { PROTOCOL_VERSION } from "../../protocol/v1/wire.js";
import type { Backend } from "../../sdk/backend.js";
import { LocalBackend } from "../../sdk/local.js";
import { withJson } from "../context.js";
import { printError, printJson, table } from "../render.js";

const BUILTIN_NAMES = BUILTIN_DRIVERS.map((f) => f.name);

function builtin(name: string): DriverFactory {
  const f = BUILTIN_DRIVERS.find((d) => d.name === name);
  if (!f) {
    throw new NotFoundError(`no built-in driver named "${name}"`, {
      hint: `use one of: ${BUILTIN_NAMES.join(", ")}`,
    });
  }
  return f;
}

/** Runs a local-only verb (no backend, no reconcile) and sets the exit status. */
async function local(json: boolean | undefined, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    process.exitCode = 0;
  } catch (err) {
    process.exitCode = printError(err, json === true);
  }
}

/** Stops the server on SIGTERM/SIGINT (and, when spawned, at end of file on stdin: Warren is gone). */
function stopOnExit(server: DriverServer, watchStdin: boolean): void {
  const stop = (): void => {
    server.close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  if (watchStdin) {
    process.stdin.on("data", () => undefined);
    process.stdin.once("end", stop);
    process.stdin.once("error", stop);
  }
}

/**
 * `serve NAME`: with `--socket`, serves on that path (state dir from the config) and prints the
 * ready line; without, runs the bootstrap handshake on stdin/stdout and picks a private socket.
 */
async function serve(name: string, f: { socket?: string; stateDir?: string }): Promise<void> {
  if (f.socket !== undefined) {
    return local(false, async () => {
      const config = resolveConfig(f.stateDir ? { stateDir: f.stateDir } : {});
      const driver = builtin(name).create({ stateDir: config.stateDir, sandboxUid: config.sandboxUid });
      const log = createLogger(config.logLevel);
      const server = await serveDriver(driver, resolve(f.socket!), { log });
      answerBootstrap({
        protocolVersion: PROTOCOL_VERSION,
        socket: server.socket,
        capabilities: driver.capabilities,
      });
      stopOnExit(server, false);
    });
  }
  try {
    const hello = await readHello(process.stdin);
    const config = resolveConfig({ stateDir: hello.stateDir, logLevel: hello.logLevel });
    const driver = builtin(name).create({ stateDir: config.stateDir, sandboxUid: config.sandboxUid });
    // Only this user may connect (the socket is mode 0600); Warren removes it if this process is killed.
    const socket = join(
      tmpdir(),
      `warren-driver-${name}-${process.pid}-${randomBytes(4).toString("hex")}.sock`,
    );
    const server = await serveDriver(driver, socket, { log: createLogger(config.logLevel), mode: 0o600 });
    answerBootstrap({
      protocolVersion: PROTOCOL_VERSION,
      socket: server.socket,
      capabilities: driver.capabilities,
    });
    stopOnExit(server, true);
  } catch (err) {
    const e = toWarrenError(err);
    answerBootstrap({ protocolVersion: PROTOCOL_VERSION, error: { code: e.code, message: e.message } });
    process.stderr.write(`error: ${e.message}\n`);
    process.exitCode = 2;
    process.stdin.destroy();
  }
}

/**
 * Registers the driver serving `socket` with a local backend and returns the name to create with
 * (`warren create --driver-socket PATH`): `name` if given, else the name the driver reports.
 * @throws InvalidArgumentError with a remote backend (the socket is on the server's host)
 */
export async function driverFromSocket(backend: Backend, socket: string, name?: string): Promise<string> {
  if (!(backend instanceof LocalBackend)) {
    throw new InvalidArgumentError("--driver-socket works only with the local backend", {
      hint: "on a server, register the driver there with `warren driver add NAME --socket PATH`",
    });
  }
  const { warren } = backend;
  const spec: ExternalDriverSpec = { socket: resolve(socket) };
  const r = await registerExternalDriver(warren.config.stateDir, spec, { name, reserved: BUILTIN_NAMES });
  warren.registry.register(externalDriverFactory(r.name, r.registration));
  return r.name;
}

export function driverCommand(): Command {
  const cmd = new Command("driver").description("out-of-process drivers: serve, list, register, remove");
  cmd
    .command("serve")
    .description(
      "run a built-in driver out-of-process over driver protocol v1 (spawned by Warren, or on --socket)",
    )
    .argument("<name>", `built-in driver: ${BUILTIN_NAMES.join(", ")}`)
    .option("--socket <path>", "serve on this Unix socket; without it, do the bootstrap handshake on stdin")
    .option("--state-dir <dir>", "state directory with --socket (default: WARREN_HOME or its default)")
    .action(serve);
  withJson(cmd.command("ls").description("list drivers: built-in and registered out-of-process ones")).action(
    (f: { json?: boolean }) =>
      local(f.json, async () => {
        const { stateDir } = resolveConfig();
        const rows = [
          ...BUILTIN_DRIVERS.map((d) => ({ name: d.name, kind: "built-in", where: "in-process" })),
          ...Object.entries(readRegistrations(stateDir)).map(([name, r]) => ({
            name,
            kind: "external",
            where: describeSpec(r),
            capabilities: r.capabilities,
          })),
        ];
        if (f.json) return printJson(rows);
        process.stdout.write(
          table(
            ["NAME", "KIND", "WHERE"],
            rows.map((r) => [r.name, r.kind, r.where]),
          ),
        );
      }),
  );
  withJson(
    cmd
      .command("add")
      .description(
        "register an out-of-process driver (it is reached once to check it): a socket, a built-in, or a command after --",
      )
      .argument("<name>", "name to use with --driver")
      .argument("[command...]", "driver binary and arguments, spawned through the bootstrap handshake")
      .option("--socket <path>", "a driver someone else serves on this Unix socket")
      .option("--builtin <driver>", "run this built-in driver out-of-process (`warren driver serve`)")
      .option("--replace", "replace a registration of the same name"),
  ).action(
    (
      name: string,
      command: string[],
      f: { socket?: string; builtin?: string; replace?: boolean; json?: boolean },
    ) =>
      local(f.json, async () => {
        const given = [f.socket, f.builtin, command.length ? command : undefined].filter(
          (x) => x !== undefined,
        );
        if (given.length !== 1) {
          throw new InvalidArgumentError(
            "give exactly one of --socket PATH, --builtin DRIVER, or -- COMMAND...",
          );
        }
        const spec: ExternalDriverSpec = f.socket
          ? { socket: resolve(f.socket) }
          : f.builtin
            ? { builtin: builtin(f.builtin).name }
            : { command };
        const { stateDir } = resolveConfig();
        const r = await registerExternalDriver(stateDir, spec, {
          name,
          reserved: BUILTIN_NAMES,
          replace: f.replace,
          requiresOptIn: f.builtin ? builtin(f.builtin).requiresOptIn : undefined,
        });
        if (f.json) return printJson({ name: r.name, ...r.registration, pid: r.info.pid });
        process.stdout.write(
          `registered ${r.name}: ${describeSpec(r.registration)} (driver ${r.info.driverName}, isolation ${r.info.capabilities.isolation})\n`,
        );
      }),
  );
  withJson(
    cmd.command("rm").description("remove a registered out-of-process driver").argument("<name>"),
  ).action((name: string, f: { json?: boolean }) =>
    local(f.json, async () => {
      if (!removeRegistration(resolveConfig().stateDir, name)) {
        throw new NotFoundError(`no registered out-of-process driver "${name}"`, {
          hint: "list them with `warren driver ls`",
        });
      }
      if (f.json) printJson({ removed: name });
    }),
  );
  return cmd;
}
