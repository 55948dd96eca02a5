/** Health, server info and the API's own description. */
import { z } from "zod/v4";
import { BackendInfoSchema, named } from "../schemas.js";
import type { Api, RouteContext } from "../route.js";
import { openApiDocument } from "../openapi.js";

const Health = named(
  "Health",
  z.object({ status: z.literal("ok"), version: z.string() }),
  "The server answers (no token needed)",
);

/** Version of the API and the server. */
export const SERVER_VERSION = "0.1.0";

/** GET /healthz, GET /v1/info, GET /v1/openapi.json. */
export function healthRoutes(api: Api, { backend }: RouteContext): void {
  api.add({
    method: "GET",
    path: "/healthz",
    operationId: "health",
    summary: "Liveness check; the only route without a token",
    tag: "server",
    public: true,
    responses: { 200: { description: "the server is up", schema: Health } },
    handler: async () => ({ status: "ok", version: SERVER_VERSION }),
  });
  api.add({
    method: "GET",
    path: "/v1/info",
    operationId: "info",
    summary: "Where the server keeps its state and which driver it uses by default",
    tag: "server",
    responses: { 200: { description: "server info", schema: BackendInfoSchema } },
    handler: () => backend.info(),
  });
  api.add({
    method: "GET",
    path: "/v1/openapi.json",
    operationId: "openapi",
    summary: "This API as an OpenAPI 3.1 document",
    tag: "server",
    responses: { 200: { description: "the OpenAPI document", schema: z.record(z.string(), z.unknown()) } },
    handler: async () => openApiDocument(api.routes, SERVER_VERSION),
  });
}
