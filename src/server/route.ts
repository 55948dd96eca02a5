/**
 * Route definitions: each route declares its path, parameters, query, body and responses as zod
 * schemas once; `Api` registers it with Fastify (validating every request against those schemas)
 * and hands the same definitions to the OpenAPI generator.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod/v4";
import { InvalidArgumentError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import type { Backend } from "../sdk/backend.js";

/** HTTP methods the API uses. */
export type Method = "GET" | "POST" | "PUT" | "DELETE";

/** One documented response of a route. */
export interface ResponseDef {
  description: string;
  /** JSON body schema (omit for raw or empty bodies). */
  schema?: z.ZodType;
  /** Content type when the body is neither JSON nor NDJSON (`application/octet-stream`, ...). */
  contentType?: string;
  /** Schema of one line, when the route can answer with an NDJSON stream. */
  ndjson?: z.ZodType;
}

/** What a handler receives. */
export interface HandlerContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** The raw body, for routes declared with `rawBody`. */
  raw: Buffer;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** A route of the API. */
export interface RouteDef<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
> {
  method: Method;
  /** OpenAPI-style path, e.g. `/v1/sandboxes/{ref}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  params?: P;
  query?: Q;
  /** JSON request body. */
  body?: B;
  /** A raw (non-JSON) request body, read as bytes up to `limitBytes`. */
  rawBody?: { contentType: string; description: string; limitBytes: number };
  /** Responses by status; the first 2xx one is the status of a handler's returned value. */
  responses: Record<number, ResponseDef>;
  /** No bearer token needed (only /healthz). */
  public?: boolean;
  /** Returns the JSON body, or nothing (204 unless the handler sent or hijacked the reply). */
  handler(ctx: HandlerContext<z.output<P>, z.output<Q>, z.output<B>>): Promise<unknown>;
}

/** What route modules get to build their handlers. */
export interface RouteContext {
  backend: Backend;
  log: Logger;
  /** Aborted when the server shuts down and in-flight streams must end. */
  shutdown: AbortSignal;
  /** Interval of heartbeat lines on silent NDJSON streams. */
  heartbeatMs: number;
}

/** Parses input against a schema. @throws InvalidArgumentError listing the problems */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
  const first = issues[0];
  throw new InvalidArgumentError(`invalid ${where}: ${first.path ? `${first.path}: ` : ""}${first.message}`, {
    hint: "see GET /v1/openapi.json for the request format",
    details: { issues },
  });
}

/** The routes of the API, registered with Fastify and described in OpenAPI. */
export class Api {
  readonly routes: RouteDef[] = [];

  /** Adds a route (typed by its schemas). */
  add<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(def: RouteDef<P, Q, B>): void {
    this.routes.push(def as unknown as RouteDef);
  }

  /** Registers the JSON routes in `app` and the raw-body ones in a child context with a byte parser. */
  async register(app: FastifyInstance): Promise<void> {
    for (const def of this.routes.filter((r) => !r.rawBody)) this.mount(app, def);
    await app.register(async (child) => {
      child.removeAllContentTypeParsers();
      child.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
      for (const def of this.routes.filter((r) => r.rawBody)) this.mount(child, def);
    });
  }

  private mount(app: FastifyInstance, def: RouteDef): void {
    const okStatus = Number(Object.keys(def.responses).find((s) => s.startsWith("2")) ?? 200);
    app.route({
      method: def.method,
      url: def.path.replace(/\{(\w+)\}/g, ":$1"),
      bodyLimit: def.rawBody?.limitBytes,
      config: { public: def.public === true },
      handler: async (request, reply) => {
        const params = def.params ? parseInput(def.params, request.params, "path") : {};
        const query = def.query ? parseInput(def.query, request.query ?? {}, "query") : {};
        const raw = def.rawBody ? toBuffer(request.body) : Buffer.alloc(0);
        const body = def.body ? parseInput(def.body, request.body ?? {}, "body") : undefined;
        const out = await def.handler({ params, query, body, raw, request, reply });
        if (reply.sent) return reply;
        if (out === undefined) return reply.code(204).send();
        return reply.code(okStatus).send(out);
      },
    });
  }
}

function toBuffer(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
}

/** A boolean in a query string: `1`/`true` or `0`/`false`. */
export const queryFlag = z.enum(["1", "0", "true", "false"]).transform((v) => v === "1" || v === "true");

/** A non-negative integer in a query string. */
export const queryInt = z.coerce.number().int().min(0);
