/** Commands: exec in a sandbox and one-shot run, as blocking JSON or a streamed NDJSON response. */
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod/v4";
import type { ExecRequest, StreamCallbacks } from "../../sdk/backend.js";
import type { ExecResult } from "../../core/types.js";
import { CreateOptionsSchema, Encoding, ErrorSchema, ExecResultSchema, doc, named } from "../schemas.js";
import { queryFlag, type Api, type RouteContext } from "../route.js";
import { NdjsonStream } from "../stream.js";
import { SandboxParams } from "./sandboxes.js";

const execFields = {
  argv: doc(z.array(z.string()).min(1), "the command and its arguments (no shell)"),
  cwd: doc(z.string(), "working directory; default /workspace").optional(),
  env: z.record(z.string(), z.string()).optional(),
  stdin: doc(z.string(), "input for the command, read fully before it starts").optional(),
  stdinEncoding: doc(Encoding, "encoding of `stdin`; default utf8").optional(),
  timeoutMs: doc(z.number().positive(), "per-command timeout; the command is killed (exit 124)").optional(),
};

export const ExecBody = named("ExecRequest", z.strictObject(execFields), "A command to run");
const RunBody = named(
  "RunRequest",
  z.strictObject({ ...execFields, create: CreateOptionsSchema.optional() }),
  "A one-shot command: a sandbox is created with `create`, runs it, and is deleted",
);
const StreamQuery = z.strictObject({
  stream: doc(queryFlag, "stream NDJSON events (same as Accept: application/x-ndjson)").optional(),
});

const chunk = (type: "stdout" | "stderr") =>
  z.object({ type: z.literal(type), data: z.string(), encoding: Encoding });
/** One line of an exec/run NDJSON stream. */
export const ExecEvent = named(
  "ExecEvent",
  z.union([
    chunk("stdout"),
    chunk("stderr"),
    z.object({ type: z.literal("heartbeat") }),
    z.object({ type: z.literal("exit"), result: ExecResultSchema }),
    z.object({ type: z.literal("error"), error: ErrorSchema.shape.error }),
  ]),
  "One line of an exec stream: output chunks in order as produced, then exactly one exit or error line",
);

/** Whether the client asked for an NDJSON stream. */
export function wantsStream(request: FastifyRequest, query: { stream?: boolean }): boolean {
  return query.stream === true || /application\/x-ndjson/i.test(request.headers.accept ?? "");
}

/** The backend's request from the JSON body. */
export function execRequestOf(body: z.output<typeof ExecBody>): ExecRequest {
  return {
    argv: body.argv,
    cwd: body.cwd,
    env: body.env,
    stdin:
      body.stdin === undefined
        ? undefined
        : body.stdinEncoding === "base64"
          ? Buffer.from(body.stdin, "base64")
          : body.stdin,
    timeoutMs: body.timeoutMs,
  };
}

const responses = {
  200: {
    description:
      "the result (JSON), or with `Accept: application/x-ndjson` / `?stream=1` an NDJSON stream of ExecEvent lines",
    schema: ExecResultSchema,
    ndjson: ExecEvent,
  },
};

/** POST /v1/sandboxes/{ref}/exec and POST /v1/run. */
export function execRoutes(api: Api, { backend, shutdown, heartbeatMs }: RouteContext): void {
  /** Runs blocking, or streams; a disconnect (or shutdown past the drain time) aborts the command. */
  const exec = async (
    reply: FastifyReply,
    stream: boolean,
    work: (s: StreamCallbacks) => Promise<ExecResult>,
  ): Promise<ExecResult | undefined> => {
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
      (result) => ({ type: "exit", result }),
    );
    return undefined;
  };

  api.add({
    method: "POST",
    path: "/v1/sandboxes/{ref}/exec",
    operationId: "exec",
    summary: "Run a command in a running sandbox (journaled)",
    description:
      "Blocking: the ExecResult as JSON. Streaming (`Accept: application/x-ndjson` or `?stream=1`): ExecEvent lines as output is produced, then one `exit` or `error` line. Closing the connection kills the command.",
    tag: "exec",
    params: SandboxParams,
    query: StreamQuery,
    body: ExecBody,
    responses,
    handler: ({ params, query, body, request, reply }) =>
      exec(reply, wantsStream(request, query), (s) => backend.exec(params.ref, execRequestOf(body), s)),
  });
  api.add({
    method: "POST",
    path: "/v1/run",
    operationId: "run",
    summary: "One-shot: create a sandbox, run one command, delete the sandbox (whatever happens)",
    tag: "exec",
    query: StreamQuery,
    body: RunBody,
    responses,
    handler: ({ query, body, request, reply }) =>
      exec(reply, wantsStream(request, query), (s) => backend.run(body.create ?? {}, execRequestOf(body), s)),
  });
}
