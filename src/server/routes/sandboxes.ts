/** Sandbox lifecycle: create, list, get, start, stop, delete. */
import { z } from "zod/v4";
import { parsePairs } from "../../core/names.js";
import { CreateOptionsSchema, SandboxSchema, SandboxState, doc } from "../schemas.js";
import { queryFlag, type Api, type RouteContext } from "../route.js";

/** `{ref}`: a sandbox id (`sbx-` + 12 hex digits) or name. */
export const SandboxParams = z.object({ ref: doc(z.string().min(1), "sandbox id or name") });

/** A query parameter that may be repeated, as a list. */
export const repeated = <T extends z.ZodType>(item: T) =>
  z.union([item, z.array(item)]).transform((v) => (Array.isArray(v) ? v : [v]));

const ListQuery = z.strictObject({
  all: doc(queryFlag, "include deleted sandboxes").optional(),
  state: doc(repeated(SandboxState), "only these states (repeatable)").optional(),
  label: doc(repeated(z.string()), "KEY=VALUE that must match (repeatable)").optional(),
});

const sandbox = { description: "the sandbox", schema: SandboxSchema };

/** The /v1/sandboxes routes. */
export function sandboxRoutes(api: Api, { backend }: RouteContext): void {
  api.add({
    method: "POST",
    path: "/v1/sandboxes",
    operationId: "createSandbox",
    summary: "Create and start a sandbox",
    tag: "sandboxes",
    body: CreateOptionsSchema,
    responses: { 201: { description: "the running sandbox", schema: SandboxSchema } },
    handler: ({ body }) => backend.createSandbox(body),
  });
  api.add({
    method: "GET",
    path: "/v1/sandboxes",
    operationId: "listSandboxes",
    summary: "List sandboxes, newest first",
    tag: "sandboxes",
    query: ListQuery,
    responses: { 200: { description: "the sandboxes", schema: z.array(SandboxSchema) } },
    handler: ({ query }) =>
      backend.listSandboxes({
        all: query.all,
        states: query.state,
        labels: query.label ? parsePairs(query.label, "label") : undefined,
      }),
  });
  api.add({
    method: "GET",
    path: "/v1/sandboxes/{ref}",
    operationId: "getSandbox",
    summary: "One sandbox (deleted ones too)",
    tag: "sandboxes",
    params: SandboxParams,
    responses: { 200: sandbox },
    handler: ({ params }) => backend.getSandbox(params.ref),
  });
  api.add({
    method: "POST",
    path: "/v1/sandboxes/{ref}/start",
    operationId: "startSandbox",
    summary: "Start a stopped or failed sandbox; a running one is left as it is",
    tag: "sandboxes",
    params: SandboxParams,
    responses: { 200: sandbox },
    handler: ({ params }) => backend.startSandbox(params.ref),
  });
  api.add({
    method: "POST",
    path: "/v1/sandboxes/{ref}/stop",
    operationId: "stopSandbox",
    summary: "Stop a sandbox; its workspace is kept",
    tag: "sandboxes",
    params: SandboxParams,
    responses: { 200: sandbox },
    handler: ({ params }) => backend.stopSandbox(params.ref),
  });
  api.add({
    method: "DELETE",
    path: "/v1/sandboxes/{ref}",
    operationId: "deleteSandbox",
    summary: "Delete a sandbox and its workspace (idempotent); the journal is kept",
    tag: "sandboxes",
    params: SandboxParams,
    responses: { 200: { description: "the deleted sandbox", schema: SandboxSchema } },
    handler: ({ params }) => backend.deleteSandbox(params.ref),
  });
}
