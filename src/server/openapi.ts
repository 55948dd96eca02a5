/**
 * The OpenAPI 3.1 document, generated from the route definitions and their zod schemas (the same
 * ones that validate requests). Named schemas become `components.schemas`; every route that needs
 * a token declares the bearer scheme and the error responses.
 */
import { z } from "zod/v4";
import { HTTP_STATUS } from "./error-map.js";
import { apiRegistry, ErrorSchema } from "./schemas.js";
import type { RouteDef } from "./route.js";

type Json = Record<string, unknown>;

/** JSON Schema of a zod schema, with named schemas moved to `defs` and referenced there. */
function jsonSchema(schema: z.ZodType, io: "input" | "output", defs: Record<string, Json>): Json {
  const out = z.toJSONSchema(schema, { io, metadata: apiRegistry, unrepresentable: "any" }) as Json;
  const local = (out.$defs ?? {}) as Record<string, Json>;
  delete out.$defs;
  delete out.$schema;
  for (const [id, def] of Object.entries(local)) defs[id] ??= rewrite(def) as Json;
  // zod inlines the root schema even when it is named: refer to it like any other component.
  const id = apiRegistry.get(schema)?.id;
  if (!id) return rewrite(out) as Json;
  defs[id] ??= rewrite(out) as Json;
  return { $ref: `#/components/schemas/${id}` };
}

/** Points `#/$defs/X` refs at `#/components/schemas/X` and drops the registry's `id` keys. */
function rewrite(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewrite);
  if (node === null || typeof node !== "object") return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "id" && typeof v === "string") continue;
    if (k === "$ref" && typeof v === "string") out[k] = v.replace("#/$defs/", "#/components/schemas/");
    else out[k] = rewrite(v);
  }
  return out;
}

/** Query or path parameters from an object schema. */
function parameters(
  schema: z.ZodType | undefined,
  where: "path" | "query",
  defs: Record<string, Json>,
): Json[] {
  if (!schema) return [];
  const s = jsonSchema(schema, "input", defs);
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries(props).map(([name, p]) => {
    const { description, ...rest } = p;
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

/** Status codes of the errors a route may answer with. */
const ERROR_STATUSES = [...new Set(Object.values(HTTP_STATUS))].sort();

/** Builds the OpenAPI 3.1 document of `routes`. */
export function openApiDocument(routes: RouteDef[], version: string): Json {
  const defs: Record<string, Json> = {};
  const errorRef = { $ref: "#/components/schemas/Error" };
  jsonSchema(ErrorSchema, "output", defs);
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const responses: Json = {};
    for (const [status, res] of Object.entries(r.responses)) {
      const content: Json = {};
      if (res.schema) content["application/json"] = { schema: jsonSchema(res.schema, "output", defs) };
      if (res.ndjson) content["application/x-ndjson"] = { schema: jsonSchema(res.ndjson, "output", defs) };
      if (res.contentType) content[res.contentType] = { schema: { type: "string", format: "binary" } };
      responses[status] = {
        description: res.description,
        ...(Object.keys(content).length ? { content } : {}),
      };
    }
    for (const status of r.public ? [] : ERROR_STATUSES) {
      responses[String(status)] ??= {
        description: Object.entries(HTTP_STATUS)
          .filter(([, s]) => s === status)
          .map(([code]) => code)
          .join(", "),
        content: { "application/json": { schema: errorRef } },
      };
    }
    const op: Json = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [r.tag],
      parameters: [...parameters(r.params, "path", defs), ...parameters(r.query, "query", defs)],
      responses,
      ...(r.public ? { security: [] } : {}),
    };
    if (r.body) {
      op.requestBody = {
        required: true,
        content: { "application/json": { schema: jsonSchema(r.body, "input", defs) } },
      };
    } else if (r.rawBody) {
      op.requestBody = {
        required: true,
        description: `${r.rawBody.description} (at most ${r.rawBody.limitBytes} bytes)`,
        content: { [r.rawBody.contentType]: { schema: { type: "string", format: "binary" } } },
      };
    }
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Warren API",
      version,
      description:
        'Self-hosted sandboxes for AI agents. Every route but /healthz needs `Authorization: Bearer <token>`. Errors are `{"error":{"code","message","hint","details"}}`. See docs/api.md.',
    },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: defs,
    },
  };
}
