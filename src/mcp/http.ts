/**
 * The MCP server over streamable HTTP, as routes any Fastify instance can mount (`warren serve`
 * mounts them behind its bearer token). Stateless, the SDK's recommended pattern for a server
 * that keeps no per-client state: every POST gets a fresh McpServer and transport, which stream
 * that request's responses (and progress notifications) back and are closed with it. GET (a
 * server-initiated stream) and DELETE (ending a session) have nothing to serve and answer 405.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Backend } from "../sdk/backend.js";
import { createMcpServer, whenIdle, type McpServerOptions } from "./server.js";

/** How to mount the MCP routes. */
export interface McpRouteOptions extends McpServerOptions {
  /** @default "/mcp" */
  path?: string;
  /** Largest request body (a file_write carries the file). @default the app's bodyLimit */
  bodyLimitBytes?: number;
}

/** A JSON-RPC error body (the transport's own form for errors outside any request). */
function rpcError(code: number, message: string): string {
  return JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null });
}

/** The request body as a JSON value, whatever content parser Fastify used. */
function jsonBody(request: FastifyRequest): unknown {
  const body = request.body;
  if (Buffer.isBuffer(body) || typeof body === "string") return JSON.parse(body.toString());
  return body;
}

/**
 * Registers `POST /mcp` (and 405 answers for GET and DELETE) on `app`. Authentication is the
 * app's: mount this where its bearer-token check applies.
 */
export function registerMcpRoutes(
  app: FastifyInstance,
  backend: Backend,
  options: McpRouteOptions = {},
): void {
  const path = options.path ?? "/mcp";
  const live = new Set<McpServer>();

  app.post(
    path,
    options.bodyLimitBytes === undefined ? {} : { bodyLimit: options.bodyLimitBytes },
    async (request, reply) => {
      let body: unknown;
      try {
        body = jsonBody(request);
      } catch {
        return reply
          .code(400)
          .type("application/json")
          .send(rpcError(-32700, "Parse error: body is not JSON"));
      }
      const server = createMcpServer(backend, { allowHost: options.allowHost });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      transport.onerror = (err) => request.log.warn({ err }, "mcp transport error");
      live.add(server);
      const res: ServerResponse = reply.raw;
      // The transport answers on the raw response (JSON or an SSE stream); Fastify must not.
      reply.hijack();
      res.on("close", () => {
        // A client gone mid-call aborts its running commands; the server is dropped once they settle.
        void transport
          .close()
          .then(() => server.close())
          .then(() => whenIdle(server))
          .finally(() => live.delete(server));
      });
      try {
        await server.connect(transport);
        await transport.handleRequest(request.raw as IncomingMessage, res, body);
      } catch (err) {
        request.log.error({ err }, "mcp request failed");
        if (!res.headersSent) {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(rpcError(-32603, "Internal server error"));
        }
      }
    },
  );

  const notAllowed = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(405)
      .header("allow", "POST")
      .type("application/json")
      .send(
        rpcError(-32000, "Method not allowed: this MCP endpoint is stateless; POST JSON-RPC messages to it"),
      );
  app.get(path, notAllowed);
  app.delete(path, notAllowed);

  // On shutdown, end every live call and wait for it, so the backend closes after them.
  app.addHook("onClose", async () => {
    await Promise.all(
      [...live].map(async (server) => {
        await server.close();
        await whenIdle(server);
      }),
    );
  });
}
