/** The server's drivers and whether each can run on its host. */
import { z } from "zod/v4";
import { DriverReportSchema, ReapActionSchema } from "../schemas.js";
import type { Api, RouteContext } from "../route.js";

/** GET /v1/drivers, POST /v1/reap. */
export function driverRoutes(api: Api, { backend }: RouteContext): void {
  api.add({
    method: "GET",
    path: "/v1/drivers",
    operationId: "listDrivers",
    summary: "Every driver, whether it is usable on the server's host, why not and how to fix it",
    tag: "drivers",
    responses: { 200: { description: "one report per driver", schema: z.array(DriverReportSchema) } },
    handler: () => backend.drivers(),
  });
  api.add({
    method: "POST",
    path: "/v1/reap",
    operationId: "reap",
    summary: "Stop or delete sandboxes past their TTL now (the server also does it periodically)",
    tag: "sandboxes",
    responses: { 200: { description: "what was done", schema: z.array(ReapActionSchema) } },
    handler: () => backend.reap(),
  });
}
