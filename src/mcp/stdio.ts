/**
 * The MCP server over stdio. Stdout carries nothing but protocol messages: the transport writes
 * through the real stdout, and everything else that would write there (console.log, a library
 * writing to process.stdout) is sent to stderr instead.
 */
import { Writable } from "node:stream";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { Backend } from "../sdk/backend.js";
import { createMcpServer, whenIdle, type McpServerOptions } from "./server.js";

/**
 * Takes stdout for the protocol: returns a stream that writes to the real stdout, and points
 * `process.stdout.write` and the console's stdout methods at stderr from then on. Calling it
 * again returns the same stream.
 */
export function claimStdout(): Writable {
  if (claimed) return claimed;
  const realWrite = process.stdout.write.bind(process.stdout) as (
    chunk: string | Uint8Array,
    callback: (err?: Error | null) => void,
  ) => boolean;
  const protocol = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      realWrite(chunk, (err) => callback(err ?? null));
    },
  });
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.dir = toStderr;
  claimed = protocol;
  return protocol;
}

let claimed: Writable | null = null;

/**
 * Serves MCP on stdin/stdout until stdin closes; resolves when the client is gone and every call
 * has settled (commands still running are aborted). The backend is not closed here.
 */
export async function serveStdio(backend: Backend, options: McpServerOptions = {}): Promise<void> {
  const stdout = claimStdout();
  const server = createMcpServer(backend, options);
  const transport = new StdioServerTransport(process.stdin, stdout);
  // SIGTERM/SIGINT end the session like a closed stdin: running commands are aborted, then settle.
  const stop = () => process.stdin.destroy();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = resolve;
    process.stdin.once("end", resolve);
    process.stdin.once("close", resolve);
  });
  process.once("SIGTERM", stop).once("SIGINT", stop);
  await server.connect(transport);
  await closed;
  process.off("SIGTERM", stop).off("SIGINT", stop);
  await server.close();
  await whenIdle(server);
  await new Promise<void>((resolve) => stdout.end(resolve));
}
