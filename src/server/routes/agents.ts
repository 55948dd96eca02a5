/**
 * Agent packages and runs: add (a tar of the package directory), list, inspect, remove; start a
 * run (blocking JSON, or NDJSON output then the run record), list runs, one run, and the
 * workspace a run left as a tar archive.
 */
import type { FastifyReply } from "fastify";
import { z } from "zod/v4";
import type { AgentRun } from "../../core/store/agents.js";
import type { StreamCallbacks } from "../../sdk/backend.js";
import { MAX_PACKAGE_BYTES } from "../../service/agents-package.js";
import type { AgentInfo } from "../../service/index.js";
import { Encoding, ErrorSchema, doc, named } from "../schemas.js";
import { queryFlag, queryInt, type Api, type RouteContext } from "../route.js";
import { NdjsonStream } from "../stream.js";
import { wantsStream } from "./exec.js";

const isoTime = doc(z.string(), "ISO 8601 time");
const msOrNull = z.number().nullable();

export const AgentManifestSchema = named(
  "AgentManifest",
  z.object({
    name: z.string(),
    description: z.string(),
    entrypoint: doc(z.array(z.string()), "argv of the entrypoint (a string in the file becomes sh -c)"),
    environment: doc(z.string().nullable(), "null: the server's default environment"),
    driver: doc(z.string().nullable(), "null: the server's default driver"),
    resources: z.object({
      vcpuCount: z.number().optional(),
      memoryMiB: z.number().optional(),
      pidsMax: z.number().optional(),
    }),
    env: z.record(z.string(), z.string()),
    network: z.enum(["none", "host"]),
    timeoutSeconds: z.number(),
    reuse: z.boolean(),
  }),
  "A validated warren-agent.json with its defaults applied",
);

export const AgentInfoSchema = named(
  "AgentInfo",
  z.object({
    name: z.string(),
    version: doc(z.string(), "content hash of the package (16 hex digits)"),
    description: z.string(),
    manifest: AgentManifestSchema,
    path: doc(z.string(), "the package's directory on the server"),
    sizeBytes: z.number(),
    fileCount: z.number(),
    addedAt: isoTime,
  }),
  "An agent package (its current version)",
);

export const AgentRunSchema = named(
  "AgentRun",
  z.object({
    id: doc(z.string(), "run- and 12 hex digits"),
    agent: z.string(),
    version: z.string(),
    status: z.enum(["running", "succeeded", "failed"]),
    exitCode: doc(z.number().nullable(), "the entrypoint's exit code; null when it did not end on its own"),
    timedOut: z.boolean(),
    sandboxId: z.string().nullable(),
    stdout: z.string(),
    stderr: z.string(),
    truncated: doc(z.boolean(), "output was cut at the server's maxOutputBytes"),
    inputBytes: z.number(),
    resultDir: doc(z.string().nullable(), "the workspace as the run left it, on the server"),
    error: doc(z.string().nullable(), "why the run failed"),
    startedAt: isoTime,
    finishedAt: isoTime.nullable(),
    durationMs: msOrNull,
    timings: z.object({ createMs: msOrNull, uploadMs: msOrNull, execMs: msOrNull, collectMs: msOrNull }),
  }),
  "One run of an agent; a failed run is a result, not an error",
);

const chunk = (type: "stdout" | "stderr") =>
  z.object({ type: z.literal(type), data: z.string(), encoding: Encoding });
/** One line of a run's NDJSON stream. */
export const AgentRunEvent = named(
  "AgentRunEvent",
  z.union([
    chunk("stdout"),
    chunk("stderr"),
    z.object({ type: z.literal("heartbeat") }),
    z.object({ type: z.literal("end"), run: AgentRunSchema }),
    z.object({ type: z.literal("error"), error: ErrorSchema.shape.error }),
  ]),
  "One line of a run stream: the entrypoint's output as produced, then exactly one end or error line",
);

const RunBody = named(
  "AgentRunRequest",
  z.strictObject({
    input: doc(z.string(), "given to the entrypoint on stdin").optional(),
    inputEncoding: doc(Encoding, "encoding of `input`; default utf8").optional(),
  }),
  "Input of a run",
);
const AgentParams = z.object({ name: doc(z.string().min(1), "agent name") });
const RunParams = z.object({ name: AgentParams.shape.name, id: doc(z.string().min(1), "run id") });
const info = { 200: { description: "the agent", schema: AgentInfoSchema } };
const oneRun = { 200: { description: "the run", schema: AgentRunSchema } };

/** The /v1/agents routes. */
export function agentRoutes(api: Api, { backend, shutdown, heartbeatMs }: RouteContext): void {
  const tag = "agents";
  /** Runs blocking (aborted if the client goes away), or streams output then the record. */
  const run = async (
    reply: FastifyReply,
    stream: boolean,
    work: (s: StreamCallbacks) => Promise<AgentRun>,
  ): Promise<AgentRun | undefined> => {
    if (!stream) {
      const controller = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableFinished) controller.abort(new Error("the client disconnected"));
      };
      reply.raw.on("close", onClose);
      try {
        return await work({ signal: AbortSignal.any([controller.signal, shutdown]) });
      } finally {
        reply.raw.off("close", onClose);
      }
    }
    const out = new NdjsonStream(reply, { shutdown, heartbeatMs });
    await out.run(
      (signal) =>
        work({ signal, onStdout: (c) => out.chunk("stdout", c), onStderr: (c) => out.chunk("stderr", c) }),
      (r) => ({ type: "end", run: r }),
    );
    return undefined;
  };

  api.add({
    method: "GET",
    path: "/v1/agents",
    operationId: "listAgents",
    summary: "Every agent package, by name",
    tag,
    responses: { 200: { description: "the agents", schema: z.array(AgentInfoSchema) } },
    handler: () => backend.listAgents(),
  });
  api.add({
    method: "POST",
    path: "/v1/agents",
    operationId: "addAgent",
    summary: "Add an agent package (or a new version of it) from a tar archive of its directory",
    description:
      "The body is a tar of the package directory, warren-agent.json at its root (`tar -c -C DIR .`). Only files and directories; everything is checked before anything is stored.",
    tag,
    rawBody: {
      contentType: "application/x-tar",
      description: "tar of the package directory",
      limitBytes: MAX_PACKAGE_BYTES + 64 * 1024 * 1024,
    },
    responses: { 201: { description: "the agent as stored", schema: AgentInfoSchema } },
    handler: ({ raw }) => backend.addAgent({ tar: raw }),
  });
  api.add({
    method: "GET",
    path: "/v1/agents/{name}",
    operationId: "getAgent",
    summary: "One agent package",
    tag,
    params: AgentParams,
    responses: info,
    handler: ({ params }) => backend.getAgent(params.name),
  });
  api.add({
    method: "DELETE",
    path: "/v1/agents/{name}",
    operationId: "removeAgent",
    summary: "Remove an agent package (its runs and their results stay)",
    tag,
    params: AgentParams,
    responses: info,
    handler: ({ params }) => backend.removeAgent(params.name),
  });
  api.add({
    method: "POST",
    path: "/v1/agents/{name}/runs",
    operationId: "runAgent",
    summary: "Run an agent in a fresh sandbox and return the run record",
    description:
      "Blocking: the AgentRun as JSON once the run ended. Streaming (`Accept: application/x-ndjson` or `?stream=1`): the entrypoint's output as AgentRunEvent lines, then one `end` (with the AgentRun) or `error` line. A run that fails (non-zero exit, timeout, a sandbox that died) is a 200 with status `failed`; closing the connection kills the entrypoint.",
    tag,
    params: AgentParams,
    query: z.strictObject({ stream: doc(queryFlag, "stream NDJSON events").optional() }),
    body: RunBody,
    responses: {
      200: {
        description: "the run record, or AgentRunEvent lines",
        schema: AgentRunSchema,
        ndjson: AgentRunEvent,
      },
    },
    handler: ({ params, query, body, request, reply }) => {
      const input =
        body.input === undefined
          ? undefined
          : body.inputEncoding === "base64"
            ? Buffer.from(body.input, "base64")
            : body.input;
      return run(reply, wantsStream(request, query), (s) => backend.runAgent(params.name, { input }, s));
    },
  });
  api.add({
    method: "GET",
    path: "/v1/agents/{name}/runs",
    operationId: "listAgentRuns",
    summary: "Runs of an agent, newest first",
    tag,
    params: AgentParams,
    query: z.strictObject({ limit: doc(queryInt.min(1).max(10000), "default 100").optional() }),
    responses: { 200: { description: "the runs", schema: z.array(AgentRunSchema) } },
    handler: ({ params, query }) => backend.listRuns(params.name, { limit: query.limit }),
  });
  api.add({
    method: "GET",
    path: "/v1/agents/{name}/runs/{id}",
    operationId: "getAgentRun",
    summary: "One run: status, exit code, timings, output, result directory",
    tag,
    params: RunParams,
    responses: oneRun,
    handler: ({ params }) => backend.getRun(params.name, params.id),
  });
  api.add({
    method: "GET",
    path: "/v1/agents/{name}/runs/{id}/result",
    operationId: "getAgentRunResult",
    summary: "The workspace a run left, as a tar archive",
    tag,
    params: RunParams,
    responses: { 200: { description: "tar of the result directory", contentType: "application/x-tar" } },
    handler: async ({ params, reply }) => {
      const tar = await backend.runResult(params.name, params.id);
      return reply.code(200).type("application/x-tar").send(tar);
    },
  });
}

// Compile-time checks: the wire schemas are exactly the service's types.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const assertSame = <T extends true>(): T => true as T;
void [
  assertSame<Same<z.output<typeof AgentRunSchema>, AgentRun>>(),
  assertSame<Same<z.output<typeof AgentInfoSchema>, AgentInfo>>(),
];
