/**
 * `warren serve`: the HTTP API (docs/api.md). The backend and its drivers are opened once
 * (reconcile and reap run then); a timer applies TTLs while it runs. SIGTERM or SIGINT stops
 * accepting connections, lets in-flight requests finish (up to --drain-timeout), closes the
 * backend and exits 0 — sandboxes keep running and are there after a restart.
 */
import { Command } from "commander";
import { InvalidArgumentError } from "../../core/errors.js";
import { registerMcpRoutes } from "../../mcp/http.js";
import { isLoopbackHost, resolveServerToken } from "../../server/auth.js";
import { buildServer, DEFAULT_HOST, DEFAULT_PORT, type ServerPlugin } from "../../server/app.js";
import type { LocalBackend } from "../../sdk/local.js";
import { openLocalBackend } from "../../sdk/local.js";
import { parsePrewarm } from "../../service/index.js";
import { int } from "../context.js";
import { printError } from "../render.js";

/** Options of `warren serve`. */
interface ServeFlags {
  host: string;
  port: number;
  tokenFile?: string;
  reapInterval: number;
  drainTimeout: number;
  printToken?: boolean;
  prewarm: string[];
}

/** Extra routes mounted behind the API's auth (e.g. the MCP endpoint at /mcp). */
function extraRoutes(): ServerPlugin[] {
  return [
    // One entry per extra route family, e.g. (app, { backend }) => registerMcpRoutes(app, backend),
    (app, { backend }) => registerMcpRoutes(app, backend),
  ];
}

export function serveCommand(): Command {
  return new Command("serve")
    .description(
      "serve the HTTP API (docs/api.md); every route but /healthz needs the bearer token from the token file",
    )
    .option("--host <address>", "address to listen on; anything but loopback exposes the API", DEFAULT_HOST)
    .option("--port <port>", "port to listen on (0: any free port)", int("port"), DEFAULT_PORT)
    .option(
      "--token-file <path>",
      "file holding the bearer token, created with a new one when missing (default: $WARREN_API_KEY if set, else <state dir>/server-token)",
    )
    .option(
      "--reap-interval <seconds>",
      "apply sandbox TTLs every N seconds (0: never)",
      int("reap interval"),
      30,
    )
    .option(
      "--drain-timeout <seconds>",
      "on SIGTERM/SIGINT, how long in-flight requests may finish before they are cut",
      int("drain timeout"),
      10,
    )
    .option("--print-token", "also print the token itself")
    .option(
      "--prewarm <N|KEY=N>",
      "keep N started sandboxes ready for creates (KEY: DRIVER[/ENV][,memory=MiB,...]; default spec without KEY); repeatable, over the config file's pool.prewarm",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .action(async (f: ServeFlags) => {
      try {
        await serve(f);
        process.exitCode = 0;
      } catch (err) {
        process.exitCode = printError(err, false);
      }
    });
}

/** Resolves on the first SIGTERM or SIGINT; a second one exits at once. */
function shutdownRequested(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let seen = false;
    const on = (signal: NodeJS.Signals): void => {
      if (seen) process.exit(1);
      seen = true;
      resolve(signal);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}

async function serve(f: ServeFlags): Promise<void> {
  if (f.port < 0 || f.port > 65535) {
    throw new InvalidArgumentError(`port must be from 0 to 65535, got ${f.port}`);
  }
  const stopping = shutdownRequested();
  const backend: LocalBackend = await openLocalBackend();
  try {
    const { config, log } = backend.warren;
    // The warm pool is kept while the server runs, and drained when it stops.
    backend.warren.pool.start(parsePrewarm(f.prewarm, config.defaultDriver));
    const token = resolveServerToken({ stateDir: config.stateDir, tokenFile: f.tokenFile });
    const server = await buildServer({
      backend,
      token: token.token,
      host: f.host,
      port: f.port,
      log,
      plugins: extraRoutes(),
      drainTimeoutMs: f.drainTimeout * 1000,
    });
    const url = await server.listen();
    const out = (line: string): boolean => process.stdout.write(`warren serve: ${line}\n`);
    out(`listening on ${url} (state: ${config.stateDir})`);
    for (const k of (await backend.pool()).keys.filter((k) => k.target > 0))
      out(`pool: keeping ${k.target} ready for ${k.key}`);
    if (token.source === "env") out("token: the value of WARREN_API_KEY");
    else out(`token: in ${token.path}${token.created ? " (new)" : ""}`);
    if (f.printToken) out(`token value: ${token.token}`);
    if (!isLoopbackHost(f.host)) {
      process.stderr.write(
        `warren serve: warning: listening beyond loopback on ${f.host}; the token is the only protection and traffic is plain HTTP\n`,
      );
    }

    let reaping: Promise<void> | null = null;
    const reaper =
      f.reapInterval > 0
        ? setInterval(() => {
            reaping ??= backend
              .reap()
              .then((actions) => {
                if (actions.length) log.info("reaped", { actions });
              })
              .catch((err) => log.warn("reap failed", { error: String(err) }))
              .finally(() => (reaping = null));
          }, f.reapInterval * 1000)
        : null;
    reaper?.unref();

    const signal = await stopping;
    out(`${signal}: draining requests; sandboxes keep running`);
    if (reaper) clearInterval(reaper);
    await reaping;
    await server.close();
    const drained = await backend.warren.pool.drain();
    if (drained) out(`pool: ${drained} idle instances destroyed`);
    out("stopped");
  } finally {
    await backend.warren.pool.drain().catch(() => 0);
    await backend.close();
  }
}
