/** Background processes: start, list, get, output, attach (NDJSON), stdin, signal, wait. */
import { z } from "zod/v4";
import { Encoding, ErrorSchema, ProcessInfoSchema, ProcessOutputSchema, doc, named } from "../schemas.js";
import { queryInt, type Api, type RouteContext } from "../route.js";
import { NdjsonStream, encodeBytes } from "../stream.js";
import { SandboxParams } from "./sandboxes.js";

const ProcessParams = SandboxParams.extend({ pid: doc(z.string().min(1), "process id, e.g. p3") });
const StartBody = named(
  "ProcessRequest",
  z.strictObject({
    argv: z.array(z.string()).min(1),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
  }),
  "A command to start in the background",
);
const Offsets = z.strictObject({
  stdoutOffset: doc(queryInt, "byte offset in stdout; default 0").optional(),
  stderrOffset: doc(queryInt, "byte offset in stderr; default 0").optional(),
});
const chunk = (type: "stdout" | "stderr") =>
  z.object({
    type: z.literal(type),
    data: z.string(),
    encoding: Encoding,
    offset: doc(z.number(), "byte offset of this chunk in its stream"),
  });
/** One line of an attach NDJSON stream. */
export const AttachEvent = named(
  "AttachEvent",
  z.union([
    chunk("stdout"),
    chunk("stderr"),
    z.object({ type: z.literal("heartbeat") }),
    z.object({ type: z.literal("end"), process: ProcessInfoSchema }),
    z.object({ type: z.literal("error"), error: ErrorSchema.shape.error }),
  ]),
  "One line of an attach stream: output from the offsets as produced, then one end or error line",
);
const info = { 200: { description: "the process", schema: ProcessInfoSchema } };

/** The /v1/sandboxes/{ref}/processes routes. */
export function processRoutes(api: Api, { backend, shutdown, heartbeatMs }: RouteContext): void {
  const tag = "processes";
  const base = "/v1/sandboxes/{ref}/processes";
  api.add({
    method: "POST",
    path: base,
    operationId: "startProcess",
    summary: "Start a command in the background; returns once it runs",
    tag,
    params: SandboxParams,
    body: StartBody,
    responses: { 201: { description: "the running process", schema: ProcessInfoSchema } },
    handler: ({ params, body }) => backend.startProcess(params.ref, body),
  });
  api.add({
    method: "GET",
    path: base,
    operationId: "listProcesses",
    summary: "Background processes of a sandbox",
    tag,
    params: SandboxParams,
    responses: { 200: { description: "the processes", schema: z.array(ProcessInfoSchema) } },
    handler: ({ params }) => backend.listProcesses(params.ref),
  });
  api.add({
    method: "GET",
    path: `${base}/{pid}`,
    operationId: "getProcess",
    summary: "One background process",
    tag,
    params: ProcessParams,
    responses: info,
    handler: ({ params }) => backend.getProcess(params.ref, params.pid),
  });
  api.add({
    method: "GET",
    path: `${base}/{pid}/output`,
    operationId: "processOutput",
    summary: "Output from byte offsets, without waiting (at most 4 MiB per stream per call)",
    tag,
    params: ProcessParams,
    query: Offsets,
    responses: { 200: { description: "the output", schema: ProcessOutputSchema } },
    handler: async ({ params, query }) => {
      const out = await backend.processOutput(params.ref, params.pid, query);
      const { encoding, values } = encodeBytes(out.stdout, out.stderr);
      return { ...out, stdout: values[0], stderr: values[1], encoding };
    },
  });
  api.add({
    method: "GET",
    path: `${base}/{pid}/attach`,
    operationId: "attachProcess",
    summary: "Stream output from the offsets as NDJSON until the process ends",
    description: "AttachEvent lines. Disconnecting only stops the stream; the process keeps running.",
    tag,
    params: ProcessParams,
    query: Offsets,
    responses: { 200: { description: "AttachEvent lines", ndjson: AttachEvent } },
    handler: async ({ params, query, reply }) => {
      const out = new NdjsonStream(reply, { shutdown, heartbeatMs });
      let stdoutAt = query.stdoutOffset ?? 0;
      let stderrAt = query.stderrOffset ?? 0;
      await out.run(
        (signal) =>
          backend.attachProcess(params.ref, params.pid, {
            ...query,
            signal,
            onStdout: (c) => {
              out.chunk("stdout", c, stdoutAt);
              stdoutAt += c.length;
            },
            onStderr: (c) => {
              out.chunk("stderr", c, stderrAt);
              stderrAt += c.length;
            },
          }),
        (process) => ({ type: "end", process }),
      );
    },
  });
  api.add({
    method: "POST",
    path: `${base}/{pid}/stdin`,
    operationId: "writeStdin",
    summary: "Write the raw request body to the process's stdin",
    tag,
    params: ProcessParams,
    rawBody: {
      contentType: "application/octet-stream",
      description: "bytes for stdin",
      limitBytes: 16 << 20,
    },
    responses: { 204: { description: "written" } },
    handler: async ({ params, raw }) => {
      await backend.writeStdin(params.ref, params.pid, raw);
    },
  });
  api.add({
    method: "POST",
    path: `${base}/{pid}/stdin/close`,
    operationId: "closeStdin",
    summary: "Close the process's stdin (it reads end-of-file); closing twice is fine",
    tag,
    params: ProcessParams,
    responses: { 204: { description: "closed" } },
    handler: async ({ params }) => {
      await backend.closeStdin(params.ref, params.pid);
    },
  });
  api.add({
    method: "POST",
    path: `${base}/{pid}/signal`,
    operationId: "signalProcess",
    summary: "Send a signal (default SIGTERM) to the process's whole group",
    tag,
    params: ProcessParams,
    body: z.strictObject({
      signal: doc(z.string(), "TERM, KILL, INT, HUP, QUIT, USR1, USR2, STOP, CONT").optional(),
    }),
    responses: info,
    handler: ({ params, body }) => backend.signalProcess(params.ref, params.pid, body.signal ?? "SIGTERM"),
  });
  api.add({
    method: "POST",
    path: `${base}/{pid}/wait`,
    operationId: "waitProcess",
    summary: "Wait until the process ends; 504 TIMEOUT after timeoutMs",
    tag,
    params: ProcessParams,
    query: z.strictObject({
      timeoutMs: doc(queryInt, "give up after this long; default: wait forever").optional(),
    }),
    responses: info,
    handler: ({ params, query }) =>
      backend.waitProcess(params.ref, params.pid, { timeoutMs: query.timeoutMs }),
  });
}
