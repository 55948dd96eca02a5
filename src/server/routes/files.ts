/** Files inside a running sandbox: raw content, JSON writes, listing, stat, mkdir, remove, rename, tar. */
import { z } from "zod/v4";
import { MAX_READ_BYTES, MAX_TAR_BYTES } from "../../service/files.js";
import { Encoding, FileEntrySchema, doc, named } from "../schemas.js";
import { queryFlag, queryInt, type Api, type RouteContext } from "../route.js";
import { LazyResponse } from "../stream.js";
import { SandboxParams } from "./sandboxes.js";

/** Bytes of a file read held back (and sent whole when the file is no bigger). */
const HOLD_BYTES = 1 << 20;

const path = doc(z.string().min(1), "absolute path inside the sandbox");
const PathQuery = z.strictObject({ path });
const mode = doc(z.number().int().min(0).max(0o7777), "permission bits, e.g. 420 for 0o644");

const WriteBody = named(
  "WriteFileRequest",
  z.strictObject({
    path,
    content: z.string(),
    encoding: doc(Encoding, "encoding of `content`; default utf8").optional(),
    mode: mode.optional(),
  }),
  "A file to write (JSON form; PUT .../files/content takes raw bytes)",
);
const Exists = named("Exists", z.object({ exists: z.boolean() }));
const entry = { 200: { description: "the entry", schema: FileEntrySchema } };

/** The /v1/sandboxes/{ref}/files routes. */
export function fileRoutes(api: Api, { backend, shutdown }: RouteContext): void {
  const tag = "files";
  api.add({
    method: "GET",
    path: "/v1/sandboxes/{ref}/files/content",
    operationId: "readFile",
    summary: `Read a file as raw bytes, streamed as it is read (at most ${MAX_READ_BYTES} bytes)`,
    tag,
    params: SandboxParams,
    query: PathQuery,
    responses: { 200: { description: "the file's bytes", contentType: "application/octet-stream" } },
    handler: async ({ params, query, reply }) => {
      const res = new LazyResponse(reply, "application/octet-stream", { shutdown });
      // Errors can only be an HTTP status before the first byte goes out. So the start of the file
      // is held back: a small file is sent whole (any error is a status), and a large one streams
      // once a stat says it is within the limit (over it, the read fails with LIMIT_EXCEEDED).
      const held: Buffer[] = [];
      let heldBytes = 0;
      let streaming = false;
      let checked: Promise<void> | null = null;
      const flush = (): void => {
        streaming = true;
        for (const c of held.splice(0)) res.write(c);
      };
      const onChunk = (c: Buffer): void => {
        if (streaming) return res.write(c);
        held.push(c);
        heldBytes += c.length;
        checked ??=
          heldBytes < HOLD_BYTES
            ? null
            : backend.statFile(params.ref, query.path).then(
                (e) => (e.sizeBytes <= MAX_READ_BYTES ? flush() : undefined),
                () => undefined,
              );
      };
      try {
        await backend.readFile(params.ref, query.path, { onChunk });
        await checked;
        flush();
        res.end();
      } catch (err) {
        await checked;
        res.fail(err);
      }
    },
  });
  api.add({
    method: "PUT",
    path: "/v1/sandboxes/{ref}/files/content",
    operationId: "writeFileRaw",
    summary: "Write a file from the raw request body (atomically; parent directories are created)",
    tag,
    params: SandboxParams,
    query: z.strictObject({ path, mode: doc(queryInt.max(0o7777), "permission bits (decimal)").optional() }),
    rawBody: {
      contentType: "application/octet-stream",
      description: "the file's bytes, whatever the content type",
      limitBytes: MAX_READ_BYTES,
    },
    responses: entry,
    handler: ({ params, query, raw }) => backend.writeFile(params.ref, query.path, raw, { mode: query.mode }),
  });
  api.add({
    method: "POST",
    path: "/v1/sandboxes/{ref}/files/write",
    operationId: "writeFile",
    summary: "Write a file from JSON (text, or base64 with encoding: base64)",
    tag,
    params: SandboxParams,
    body: WriteBody,
    responses: entry,
    handler: ({ params, body }) =>
      backend.writeFile(
        params.ref,
        body.path,
        body.encoding === "base64" ? Buffer.from(body.content, "base64") : body.content,
        { mode: body.mode },
      ),
  });
  api.add({
    method: "GET",
    path: "/v1/sandboxes/{ref}/files",
    operationId: "listFiles",
    summary: "List a directory, `depth` levels deep, sorted by path",
    tag,
    params: SandboxParams,
    query: z.strictObject({ path, depth: doc(queryInt.min(1).max(64), "default 1").optional() }),
    responses: { 200: { description: "the entries", schema: z.array(FileEntrySchema) } },
    handler: ({ params, query }) => backend.listFiles(params.ref, query.path, { depth: query.depth }),
  });
  api.add({
    method: "GET",
    path: "/v1/sandboxes/{ref}/files/stat",
    operationId: "statFile",
    summary: "Describe one entry (a symlink is described, not followed)",
    tag,
    params: SandboxParams,
    query: PathQuery,
    responses: entry,
    handler: ({ params, query }) => backend.statFile(params.ref, query.path),
  });
  api.add({
    method: "GET",
    path: "/v1/sandboxes/{ref}/files/exists",
    operationId: "fileExists",
    summary: "Whether a path exists (a dangling symlink counts)",
    tag,
    params: SandboxParams,
    query: PathQuery,
    responses: { 200: { description: "whether it exists", schema: Exists } },
    handler: async ({ params, query }) => ({ exists: await backend.exists(params.ref, query.path) }),
  });
  api.add({
    method: "POST",
    path: "/v1/sandboxes/{ref}/files/mkdir",
    operationId: "makeDir",
    summary: "Create a directory and its parents (an existing directory is fine)",
    tag,
    params: SandboxParams,
    body: z.strictObject({ path }),
    responses: entry,
    handler: ({ params, body }) => backend.makeDir(params.ref, body.path),
  });
  api.add({
    method: "DELETE",
    path: "/v1/sandboxes/{ref}/files",
    operationId: "removeFile",
    summary: "Remove a file, symlink or directory (a non-empty one only with recursive=1)",
    tag,
    params: SandboxParams,
    query: z.strictObject({ path, recursive: queryFlag.optional() }),
    responses: { 204: { description: "removed" } },
    handler: async ({ params, query }) => {
      await backend.removeFile(params.ref, query.path, { recursive: query.recursive });
    },
  });
  api.add({
    method: "POST",
    path: "/v1/sandboxes/{ref}/files/rename",
    operationId: "renameFile",
    summary: "Rename (move) a path; the target's parents are created",
    tag,
    params: SandboxParams,
    body: z.strictObject({ from: path, to: path }),
    responses: { 200: { description: "the entry at its new path", schema: FileEntrySchema } },
    handler: ({ params, body }) => backend.renameFile(params.ref, body.from, body.to),
  });
  const dirQuery = z.strictObject({ dir: doc(z.string().min(1), "directory inside the sandbox") });
  api.add({
    method: "PUT",
    path: "/v1/sandboxes/{ref}/files/tar",
    operationId: "uploadTar",
    summary: "Unpack a tar archive (the body) into a directory, created if missing",
    tag,
    params: SandboxParams,
    query: dirQuery,
    rawBody: { contentType: "application/x-tar", description: "a tar archive", limitBytes: MAX_TAR_BYTES },
    responses: { 204: { description: "unpacked" } },
    handler: async ({ params, query, raw }) => {
      await backend.uploadTar(params.ref, query.dir, raw);
    },
  });
  api.add({
    method: "GET",
    path: "/v1/sandboxes/{ref}/files/tar",
    operationId: "downloadTar",
    summary: "Pack a directory into a tar archive",
    tag,
    params: SandboxParams,
    query: dirQuery,
    responses: { 200: { description: "the archive", contentType: "application/x-tar" } },
    handler: async ({ params, query, reply }) => {
      const tar = await backend.downloadTar(params.ref, query.dir);
      reply.type("application/x-tar");
      return tar;
    },
  });
}
