/**
 * Helpers of the MCP tools: argument conversion, the host-driver guard, streaming as progress
 * notifications, and the short texts that go next to structured results.
 */
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import { DriverUnavailableError, InvalidArgumentError } from "../core/errors.js";
import type { ExecResult, Sandbox } from "../core/types.js";
import type { Backend, StreamCallbacks } from "../sdk/backend.js";

/** What the SDK passes to a tool handler besides its arguments. */
export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** A string command runs through the shell; an array is the argv itself. */
export function toArgv(command: string | string[]): string[] {
  return typeof command === "string" ? ["/bin/sh", "-c", command] : command;
}

const optInDrivers = new WeakMap<Backend, Promise<Set<string>>>();

/** Drivers that need the host opt-in (no isolation), asked once per backend. */
function driversNeedingOptIn(backend: Backend): Promise<Set<string>> {
  let found = optInDrivers.get(backend);
  if (!found) {
    found = backend
      .drivers()
      .then((rows) => new Set(rows.filter((r) => r.requiresOptIn).map((r) => r.driver)));
    found.catch(() => optInDrivers.delete(backend));
    optInDrivers.set(backend, found);
  }
  return found;
}

function refused(what: string): DriverUnavailableError {
  return new DriverUnavailableError(`${what} gives no isolation and this MCP server refuses it`, {
    hint: 'use the default driver (or "bwrap"); only the operator can allow it, by starting the server with `warren mcp --allow-host`',
  });
}

/**
 * Refuses a create that names a driver needing the host opt-in, unless the server allows it.
 * @throws DriverUnavailableError
 */
export async function refuseOptInDriver(
  backend: Backend,
  driver: string | undefined,
  allowHost: boolean,
): Promise<void> {
  if (allowHost || driver === undefined) return;
  if ((await driversNeedingOptIn(backend)).has(driver)) throw refused(`the ${driver} driver`);
}

/**
 * Refuses to run anything in an existing sandbox whose driver needs the host opt-in (made by
 * someone who had it), so that naming such a sandbox cannot stand in for the operator's opt-in.
 * @throws NotFoundError, DriverUnavailableError
 */
export async function guardOptIn(backend: Backend, ref: string): Promise<void> {
  const s = await backend.getSandbox(ref);
  if ((await driversNeedingOptIn(backend)).has(s.driver)) {
    throw refused(`sandbox ${s.name} uses the ${s.driver} driver, which`);
  }
}

/**
 * Streaming callbacks for a tool call: cancellation from the client aborts the command, and when
 * the client asked for progress, output goes out as progress notifications as it comes (which
 * also keeps a client's request timeout from firing while a long command prints).
 */
export function streamOf(extra: Extra): StreamCallbacks {
  const token = extra._meta?.progressToken;
  if (token === undefined) return { signal: extra.signal };
  let bytes = 0;
  const send = (chunk: Buffer) => {
    bytes += chunk.length;
    const message = chunk.toString("utf8").slice(0, 4096);
    extra
      .sendNotification({
        method: "notifications/progress",
        params: { progressToken: token, progress: bytes, message },
      })
      .catch(() => undefined);
  };
  return { signal: extra.signal, onStdout: send, onStderr: send };
}

/** Bytes of file content as the caller encoded it. @throws InvalidArgumentError for bad base64 */
export function fileBytes(content: string, encoding: "utf8" | "base64" = "utf8"): string | Buffer {
  if (encoding === "utf8") return content;
  const compact = content.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
    throw new InvalidArgumentError("content is not valid base64", {
      hint: 'encode the bytes as standard base64, or pass encoding "utf8" for text',
    });
  }
  return Buffer.from(compact, "base64");
}

/** An octal mode string ("755", "0644") as a number. @throws InvalidArgumentError */
export function fileMode(mode: string | undefined): number | undefined {
  if (mode === undefined) return undefined;
  const m = /^(?:0o?)?([0-7]{3,4})$/.exec(mode.trim());
  if (!m) {
    throw new InvalidArgumentError(`mode must be octal permission bits, got "${mode}"`, {
      hint: 'pass e.g. "644" for a file or "755" for a script',
    });
  }
  return parseInt(m[1], 8);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A file's content for a tool result: UTF-8 when asked or when it is valid UTF-8, else base64. */
export function readContent(
  data: Buffer,
  encoding: "utf8" | "base64" | undefined,
  maxBytes: number,
): { encoding: "utf8" | "base64"; content: string; sizeBytes: number; truncated: boolean } {
  const truncated = data.length > maxBytes;
  let part = truncated ? data.subarray(0, maxBytes) : data;
  let chosen = encoding;
  if (chosen === undefined) {
    // A cut may split a multi-byte character: drop its incomplete tail before judging.
    if (truncated) part = part.subarray(0, utf8Boundary(part));
    try {
      strictUtf8.decode(part);
      chosen = "utf8";
    } catch {
      chosen = "base64";
      part = truncated ? data.subarray(0, maxBytes) : data;
    }
  }
  return {
    encoding: chosen,
    content: part.toString(chosen),
    sizeBytes: data.length,
    truncated,
  };
}

/** Length of `b` without a trailing incomplete UTF-8 sequence. */
function utf8Boundary(b: Buffer): number {
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const byte = b[b.length - back];
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead byte
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > back ? b.length - back : b.length;
  }
  return b.length;
}

/** Short text for a command's result: the exit status, then its output. */
export function describeExec(r: ExecResult): string {
  const head =
    `exit code ${r.exitCode}${r.timedOut ? " (timed out)" : ""} in ${Math.round(r.durationMs)} ms ` +
    `(sandbox ${r.sandboxId}, journal #${r.sequence})`;
  const parts = [head];
  if (r.stdout) parts.push(`--- stdout ---\n${r.stdout.replace(/\n$/, "")}`);
  if (r.stderr) parts.push(`--- stderr ---\n${r.stderr.replace(/\n$/, "")}`);
  if (r.truncated) parts.push("(output truncated)");
  return parts.join("\n");
}

/** Short text for a sandbox. */
export function describeSandbox(s: Sandbox): string {
  const lines = [
    `sandbox ${s.name} (${s.id}) is ${s.state}`,
    `driver ${s.driver} (isolation: ${s.isolation}), environment ${s.environment}, network ${s.network}`,
    `${s.resources.vcpuCount} cpu, ${s.resources.memoryMiB} MiB, ${s.resources.pidsMax} pids; ` +
      `ttl ${s.ttlSeconds}s then ${s.onTimeout}${s.expiresAt ? ` (at ${s.expiresAt})` : ""}`,
  ];
  if (s.lastError) lines.push(`last error: ${s.lastError}`);
  return lines.join("\n");
}
