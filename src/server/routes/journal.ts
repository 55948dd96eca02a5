/** A sandbox's journal of commands and its driver's own log. */
import { z } from "zod/v4";
import { JournalEntrySchema, doc } from "../schemas.js";
import { queryInt, type Api, type RouteContext } from "../route.js";
import { SandboxParams } from "./sandboxes.js";

const JournalQuery = z.strictObject({
  sinceSequence: doc(queryInt, "only entries after this sequence number").optional(),
  limit: doc(queryInt.min(1), "at most this many entries").optional(),
});

/** GET /v1/sandboxes/{ref}/journal and /driver-log. */
export function journalRoutes(api: Api, { backend }: RouteContext): void {
  api.add({
    method: "GET",
    path: "/v1/sandboxes/{ref}/journal",
    operationId: "journal",
    summary:
      "Every command run in the sandbox, with status, exit code and output (deleted sandboxes keep theirs)",
    tag: "journal",
    params: SandboxParams,
    query: JournalQuery,
    responses: { 200: { description: "journal entries, oldest first", schema: z.array(JournalEntrySchema) } },
    handler: ({ params, query }) => backend.journal(params.ref, query),
  });
  api.add({
    method: "GET",
    path: "/v1/sandboxes/{ref}/driver-log",
    operationId: "driverLog",
    summary: "The driver's own log of the sandbox (not command output)",
    tag: "journal",
    params: SandboxParams,
    responses: { 200: { description: "the log as text", contentType: "text/plain" } },
    handler: async ({ params, reply }) => {
      const text = await backend.driverLog(params.ref);
      reply.type("text/plain; charset=utf-8");
      return text;
    },
  });
}
