/**
 * The one place that turns Warren errors into HTTP responses: a code → status table, the error
 * body `{"error":{"code","message","hint","details"}}`, and the translation of Fastify's own
 * failures (bad JSON, unsupported media type, body too large, unknown route) into Warren errors.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import {
  InvalidArgumentError,
  LimitExceededError,
  NotFoundError,
  toWarrenError,
  type ErrorCode,
  type WarrenError,
} from "../core/errors.js";
import type { Logger } from "../core/log.js";

/** HTTP status of each error code. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  INVALID_ARGUMENT: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  INVALID_STATE: 409,
  LIMIT_EXCEEDED: 429,
  NOT_SUPPORTED: 501,
  TIMEOUT: 504,
  DRIVER_UNAVAILABLE: 503,
  INTERNAL: 500,
});

/**
 * Refinements of the table for errors the server itself raises, keyed by `details.reason`:
 * a request body over the limit is 413 (not 429), a Host header refused by the DNS-rebinding
 * check is 403.
 */
const STATUS_BY_REASON: Readonly<Record<string, number>> = Object.freeze({
  "request-too-large": 413,
  "host-not-allowed": 403,
});

/** The wire form of an error. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> };
}

/** HTTP status for an error. */
export function httpStatusOf(err: WarrenError): number {
  const reason = err.details?.reason;
  if (typeof reason === "string" && reason in STATUS_BY_REASON) return STATUS_BY_REASON[reason];
  return HTTP_STATUS[err.code] ?? 500;
}

/** The response body of an error. */
export function errorBody(err: WarrenError): ErrorBody {
  return { error: err.toJSON() };
}

/** Translates an error thrown while handling a request (Warren's own, Fastify's, or anything). */
export function toHttpError(err: unknown): WarrenError {
  const f = err as Partial<FastifyError> & { validation?: unknown };
  if (typeof f?.code === "string" && f.code.startsWith("FST_") && typeof f.statusCode === "number") {
    if (f.statusCode === 413) {
      return new LimitExceededError(f.message ?? "request body too large", {
        hint: "send less data per request (large trees go through the tar upload route)",
        details: { reason: "request-too-large" },
      });
    }
    if (f.statusCode === 404) return new NotFoundError(f.message ?? "not found");
    if (f.statusCode < 500) {
      return new InvalidArgumentError(f.message ?? "bad request", { details: { fastifyCode: f.code } });
    }
  }
  if (f?.validation !== undefined) {
    return new InvalidArgumentError(f.message ?? "invalid request", { details: { issues: f.validation } });
  }
  return toWarrenError(err);
}

/** Sends an error as JSON on a reply that has not been sent. */
export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toHttpError(err);
  return reply.code(httpStatusOf(e)).type("application/json; charset=utf-8").send(errorBody(e));
}

/** Installs the error and not-found handlers on a Fastify instance. */
export function installErrorHandling(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err, request, reply) => {
    const e = toHttpError(err);
    if (e.code === "INTERNAL") {
      log.error("request failed", { method: request.method, url: request.url, error: String(err) });
    }
    if (e.code === "UNAUTHORIZED") reply.header("www-authenticate", 'Bearer realm="warren"');
    return reply.code(httpStatusOf(e)).type("application/json; charset=utf-8").send(errorBody(e));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new NotFoundError(`no route ${request.method} ${request.url.split("?")[0]}`, {
        hint: "the API reference is at GET /v1/openapi.json",
      }),
    ),
  );
}
