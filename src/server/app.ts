/**
 * The HTTP API server (`warren serve`): Fastify over a Backend. Every route but /healthz needs the
 * bearer token; on loopback, requests must name a loopback host (DNS-rebinding protection).
 *
 * Extra routes — the MCP endpoint at /mcp, for one — come in as `plugins`: each gets the Fastify
 * instance (inside the authenticated, Host-checked scope, after the API routes) and the route
 * context (backend, log, shutdown signal):
 *
 * ```ts
 * const mcp: ServerPlugin = (app, { backend }) => {
 *   app.post("/mcp", async (request, reply) => { ... });
 * };
 * await buildServer({ backend, token, plugins: [mcp] });
 * ```
 */
import Fastify, { type FastifyInstance } from "fastify";
import { silentLogger, type Logger } from "../core/log.js";
import { MAX_READ_BYTES } from "../service/files.js";
import type { Backend } from "../sdk/backend.js";
import { allowedHostHeaders, checkBearer, checkHostHeader, isLoopbackHost } from "./auth.js";
import { installErrorHandling } from "./error-map.js";
import { Api, type RouteContext } from "./route.js";
import { HEARTBEAT_MS } from "./stream.js";
import { agentRoutes } from "./routes/agents.js";
import { driverRoutes } from "./routes/drivers.js";
import { environmentRoutes } from "./routes/environments.js";
import { execRoutes } from "./routes/exec.js";
import { fileRoutes } from "./routes/files.js";
import { healthRoutes } from "./routes/health.js";
import { journalRoutes } from "./routes/journal.js";
import { poolRoutes } from "./routes/pool.js";
import { processRoutes } from "./routes/processes.js";
import { sandboxRoutes } from "./routes/sandboxes.js";

/** Default port of `warren serve`. */
export const DEFAULT_PORT = 7377;
/** Default address: loopback only. */
export const DEFAULT_HOST = "127.0.0.1";
/** Largest JSON request body: a file of MAX_READ_BYTES in base64, and some. */
export const JSON_BODY_LIMIT = Math.ceil((MAX_READ_BYTES * 4) / 3) + (1 << 20);

/** Adds routes to the server (registered after the API routes, behind auth and the Host check). */
export type ServerPlugin = (app: FastifyInstance, context: RouteContext) => void | Promise<void>;

/** How to build the server. */
export interface ServerOptions {
  backend: Backend;
  /** The bearer token every request but /healthz must carry. */
  token: string;
  /** Address to listen on. @default "127.0.0.1" */
  host?: string;
  /** Port to listen on; 0 picks a free one. @default 7377 */
  port?: number;
  /** Structured log of requests and failures. @default silent */
  log?: Logger;
  /** Extra routes, e.g. the MCP endpoint. */
  plugins?: ServerPlugin[];
  /** How long `close` lets in-flight requests finish before aborting them. @default 10000 */
  drainTimeoutMs?: number;
  /** Interval of `{"type":"heartbeat"}` lines on silent NDJSON streams. @default 15000 */
  heartbeatMs?: number;
}

/** A built server. */
export interface WarrenServer {
  readonly app: FastifyInstance;
  /** The routes of the API (what the OpenAPI document describes). */
  readonly api: Api;
  /** Starts listening; resolves to the base URL, e.g. `http://127.0.0.1:7377`. */
  listen(): Promise<string>;
  /** Base URL once listening. */
  readonly url: string | null;
  /**
   * Stops accepting connections and waits for in-flight requests; after `drainTimeoutMs`, streams
   * are aborted and connections cut. Does not close the backend (nor stop any sandbox).
   */
  close(): Promise<void>;
}

/** Builds the API server (not yet listening). */
export async function buildServer(o: ServerOptions): Promise<WarrenServer> {
  const log = o.log ?? silentLogger;
  const host = o.host ?? DEFAULT_HOST;
  const shutdown = new AbortController();
  const context: RouteContext = {
    backend: o.backend,
    log,
    shutdown: shutdown.signal,
    heartbeatMs: o.heartbeatMs ?? HEARTBEAT_MS,
  };
  const app = Fastify({
    logger: false,
    bodyLimit: JSON_BODY_LIMIT,
    routerOptions: { ignoreTrailingSlash: true },
    // Requests that reach a closing server on a kept-alive connection are served: the backend
    // stays open until the drain ends, and idle connections are cut within 100 ms anyway.
    return503OnClosing: false,
  });
  // An empty body with a JSON content type (curl -X DELETE -H 'content-type: ...') is no body.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) =>
    body === "" ? done(null, undefined) : parseJson(request, body as string, done),
  );
  let allowedHosts: Set<string> | null = null;

  app.addHook("onRequest", async (request) => {
    if (allowedHosts) checkHostHeader(request, allowedHosts);
    if ((request.routeOptions.config as { public?: boolean } | undefined)?.public !== true)
      checkBearer(request, o.token);
  });
  app.addHook("onResponse", async (request, reply) => {
    log.debug("request", {
      method: request.method,
      path: request.url.split("?")[0],
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
    });
  });
  installErrorHandling(app, log);

  const api = new Api();
  for (const routes of [
    healthRoutes,
    sandboxRoutes,
    execRoutes,
    journalRoutes,
    fileRoutes,
    processRoutes,
    environmentRoutes,
    driverRoutes,
    agentRoutes,
    poolRoutes,
  ]) {
    routes(api, context);
  }
  await api.register(app);
  for (const plugin of o.plugins ?? []) await app.register(async (scope) => plugin(scope, context));

  let url: string | null = null;
  return {
    app,
    api,
    get url() {
      return url;
    },
    async listen() {
      await app.listen({ host, port: o.port ?? DEFAULT_PORT });
      const address = app.server.address();
      const port = typeof address === "object" && address ? address.port : (o.port ?? DEFAULT_PORT);
      if (isLoopbackHost(host)) allowedHosts = allowedHostHeaders(host, port);
      url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
      log.info("listening", { url });
      return url;
    },
    async close() {
      const timer = setTimeout(() => {
        log.warn("drain time over: aborting in-flight requests");
        shutdown.abort(new Error("the server is shutting down"));
        app.server.closeAllConnections();
      }, o.drainTimeoutMs ?? 10000);
      // A keep-alive connection whose request finishes during the drain goes idle: cut it then.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
      try {
        await app.close();
      } finally {
        clearTimeout(timer);
        clearInterval(sweep);
      }
    },
  };
}
