/** The file tools: read, write and list files inside a running sandbox. */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import type { Backend } from "../sdk/backend.js";
import { mutating, ok, readOnly, type Safe } from "./result.js";
import { fileEntrySchema, outputSchema, sandboxRef } from "./schemas.js";
import { fileBytes, fileMode, readContent } from "./support.js";

/** What the file tools share with the rest. */
export interface FileToolContext {
  safe: Safe;
  /** Refuses sandboxes this server may not run things in. */
  guard: (ref: string) => Promise<void>;
}

/** Registers file_read, file_write and file_list. */
export function registerFileTools(
  server: McpServer,
  backend: Backend,
  { safe, guard }: FileToolContext,
): void {
  server.registerTool(
    "file_read",
    {
      title: "Read a file from a sandbox",
      description:
        "Read a file inside a running sandbox. Relative paths are under /workspace. Text comes back as UTF-8; " +
        "a file that is not valid UTF-8 comes back base64-encoded (see encoding), unless you ask for one.",
      inputSchema: {
        sandbox: sandboxRef,
        path: z.string().min(1).describe("Path inside the sandbox, e.g. /workspace/out.txt or out.txt."),
        encoding: z
          .enum(["utf8", "base64"])
          .optional()
          .describe("How to return the content. Default: utf8 when the file is valid UTF-8, else base64."),
        maxBytes: z
          .number()
          .int()
          .positive()
          .optional()
          .describe("Return at most this many bytes (truncated: true when cut). Default 1048576."),
      },
      outputSchema: outputSchema({
        path: z.string(),
        encoding: z.enum(["utf8", "base64"]),
        content: z.string(),
        sizeBytes: z.number().describe("Size of the whole file"),
        truncated: z.boolean(),
      }),
      annotations: readOnly,
    },
    safe(async (a) => {
      await guard(a.sandbox);
      const data = await backend.readFile(a.sandbox, a.path);
      const r = readContent(data, a.encoding, a.maxBytes ?? 1048576);
      return ok({ path: a.path, ...r }, r.content);
    }),
  );

  server.registerTool(
    "file_write",
    {
      title: "Write a file into a sandbox",
      description:
        "Create or replace a file inside a running sandbox (atomically; parent directories are created). " +
        "Relative paths are under /workspace. Content is UTF-8 text unless encoding is base64.",
      inputSchema: {
        sandbox: sandboxRef,
        path: z.string().min(1).describe("Path inside the sandbox, e.g. /workspace/main.py or main.py."),
        content: z.string().describe("The file's new content."),
        encoding: z.enum(["utf8", "base64"]).optional().describe("How content is encoded. Default utf8."),
        mode: z
          .string()
          .optional()
          .describe(
            'Permission bits in octal, e.g. "755" for a script. Default: kept, or 644 for a new file.',
          ),
      },
      outputSchema: outputSchema(fileEntrySchema.shape),
      annotations: { ...mutating, idempotentHint: true },
    },
    safe(async (a) => {
      await guard(a.sandbox);
      const e = await backend.writeFile(a.sandbox, a.path, fileBytes(a.content, a.encoding), {
        mode: fileMode(a.mode),
      });
      return ok(e, `wrote ${e.sizeBytes} bytes to ${e.path} (mode ${e.mode.toString(8)})`);
    }),
  );

  server.registerTool(
    "file_list",
    {
      title: "List files in a sandbox",
      description:
        "List a directory inside a running sandbox, sorted by path: each entry's type, size, mode and " +
        "modification time. depth 2 or more also lists subdirectories' contents.",
      inputSchema: {
        sandbox: sandboxRef,
        path: z.string().optional().describe("Directory inside the sandbox. Default /workspace."),
        depth: z
          .number()
          .int()
          .optional()
          .describe("Levels to descend, 1-64 (1 = only its entries). Default 1."),
      },
      outputSchema: outputSchema({ entries: z.array(fileEntrySchema) }),
      annotations: readOnly,
    },
    safe(async (a) => {
      await guard(a.sandbox);
      const entries = await backend.listFiles(a.sandbox, a.path ?? "/workspace", { depth: a.depth });
      const lines = entries.map(
        (e) =>
          `${e.type.padEnd(9)} ${e.mode.toString(8).padStart(4, "0")} ${String(e.sizeBytes).padStart(9)} ${e.path}`,
      );
      return ok({ entries }, lines.join("\n") || "(empty)");
    }),
  );
}
