/** The environment catalog: list, inspect, pull (with NDJSON progress), remove. */
import { z } from "zod/v4";
import { EnvironmentInfoSchema, ErrorSchema, doc, named } from "../schemas.js";
import type { Api, RouteContext } from "../route.js";
import { NdjsonStream } from "../stream.js";
import { wantsStream } from "./exec.js";
import { queryFlag } from "../route.js";

const EnvParams = z.object({ name: doc(z.string().min(1), "environment name, e.g. debian-bookworm") });
/** One line of a pull NDJSON stream. */
export const PullEvent = named(
  "PullEvent",
  z.union([
    z.object({ type: z.literal("progress"), phase: z.string(), detail: z.string() }),
    z.object({ type: z.literal("heartbeat") }),
    z.object({ type: z.literal("end"), environment: EnvironmentInfoSchema }),
    z.object({ type: z.literal("error"), error: ErrorSchema.shape.error }),
  ]),
  "One line of a pull stream: progress events, then one end or error line",
);
const info = { 200: { description: "the environment", schema: EnvironmentInfoSchema } };
const pulled = {
  200: {
    description: "the environment, or PullEvent lines",
    schema: EnvironmentInfoSchema,
    ndjson: PullEvent,
  },
};

/** The /v1/environments routes. */
export function environmentRoutes(api: Api, { backend, shutdown, heartbeatMs }: RouteContext): void {
  const tag = "environments";
  api.add({
    method: "GET",
    path: "/v1/environments",
    operationId: "listEnvironments",
    summary: "Every environment the server knows, installed or not",
    tag,
    responses: { 200: { description: "the catalog", schema: z.array(EnvironmentInfoSchema) } },
    handler: () => backend.listEnvironments(),
  });
  api.add({
    method: "GET",
    path: "/v1/environments/{name}",
    operationId: "inspectEnvironment",
    summary: "One environment",
    tag,
    params: EnvParams,
    responses: info,
    handler: ({ params }) => backend.inspectEnvironment(params.name),
  });
  api.add({
    method: "POST",
    path: "/v1/environments/{name}/pull",
    operationId: "pullEnvironment",
    summary: "Build or download an environment",
    description:
      "Blocking: the EnvironmentInfo. With `Accept: application/x-ndjson` or `?stream=1`: PullEvent lines.",
    tag,
    params: EnvParams,
    query: z.strictObject({ stream: queryFlag.optional() }),
    responses: pulled,
    handler: async ({ params, query, request, reply }) => {
      if (!wantsStream(request, query)) return backend.pullEnvironment(params.name);
      const out = new NdjsonStream(reply, { shutdown, heartbeatMs });
      await out.run(
        () => backend.pullEnvironment(params.name, (e) => out.send({ type: "progress", ...e })),
        (environment) => ({ type: "end", environment }),
      );
    },
  });
  api.add({
    method: "DELETE",
    path: "/v1/environments/{name}",
    operationId: "removeEnvironment",
    summary: "Remove an installed environment (refused while sandboxes use it)",
    tag,
    params: EnvParams,
    responses: info,
    handler: ({ params }) => backend.removeEnvironment(params.name),
  });
}
