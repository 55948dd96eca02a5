/**
 * Streaming responses: NDJSON event streams (exec, attach, pull) and raw byte streams (file read).
 *
 * The status line is sent lazily, with the first bytes: an error that comes before any output
 * (unknown sandbox, not running, bad path) is a normal JSON error response with its HTTP status;
 * one that comes later is the stream's last line `{"type":"error","error":{...}}` (NDJSON) or a cut
 * connection (raw bytes). A client that disconnects aborts the operation through `signal`, and so
 * does the server's shutdown once its drain time is over. While an NDJSON stream is silent, a
 * `{"type":"heartbeat"}` line goes out every `heartbeatMs`, so clients and proxies with idle
 * timeouts keep waiting for long, quiet commands.
 */
import type { FastifyReply } from "fastify";
import { errorBody, httpStatusOf, toHttpError } from "./error-map.js";

/** Interval of heartbeat lines on a silent NDJSON stream. */
export const HEARTBEAT_MS = 15000;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes as a JSON string: UTF-8 text when every buffer is valid UTF-8, else base64. */
export function encodeBytes(...buffers: Buffer[]): { encoding: "utf8" | "base64"; values: string[] } {
  try {
    return { encoding: "utf8", values: buffers.map((b) => utf8.decode(b)) };
  } catch {
    return { encoding: "base64", values: buffers.map((b) => b.toString("base64")) };
  }
}

/** A response whose status is sent with its first bytes. */
export class LazyResponse {
  private readonly controller = new AbortController();
  private committed = false;
  private ended = false;
  private lastWrite = Date.now();
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly extraHeaders: Record<string, string>;

  /** Aborted when the client goes away or the server's drain time is over. */
  readonly signal: AbortSignal = this.controller.signal;

  constructor(
    private readonly reply: FastifyReply,
    private readonly contentType: string,
    o: { shutdown: AbortSignal; heartbeatMs?: number; headers?: Record<string, string> },
  ) {
    this.extraHeaders = o.headers ?? {};
    reply.hijack();
    const raw = reply.raw;
    raw.on("close", () => {
      if (!raw.writableFinished) this.controller.abort(new Error("the client disconnected"));
      this.stopHeartbeat();
    });
    const onShutdown = (): void => this.controller.abort(new Error("the server is shutting down"));
    if (o.shutdown.aborted) onShutdown();
    else o.shutdown.addEventListener("abort", onShutdown, { once: true });
    raw.on("close", () => o.shutdown.removeEventListener("abort", onShutdown));
    if (o.heartbeatMs) {
      const every = o.heartbeatMs;
      this.heartbeat = setInterval(() => {
        if (Date.now() - this.lastWrite >= every) this.write('{"type":"heartbeat"}\n');
      }, every);
      this.heartbeat.unref();
    }
  }

  /** Whether the status line went out. */
  get isCommitted(): boolean {
    return this.committed;
  }

  private commit(): void {
    if (this.committed) return;
    this.committed = true;
    this.reply.raw.writeHead(200, {
      "content-type": this.contentType,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      ...this.extraHeaders,
    });
  }

  /** Writes bytes (sending the status line first if needed). */
  write(chunk: Buffer | string): void {
    if (this.ended || this.reply.raw.destroyed) return;
    this.commit();
    this.lastWrite = Date.now();
    this.reply.raw.write(chunk);
  }

  /** Ends the response (an empty 200 if nothing was written). */
  end(): void {
    if (this.ended) return;
    this.commit();
    this.finish();
    this.reply.raw.end();
  }

  /**
   * Ends with an error: a JSON error response while nothing was sent; afterwards the `lastLine`
   * of the stream (NDJSON), or a cut connection when there is no way to say it in-band.
   */
  fail(err: unknown, lastLine?: (e: ReturnType<typeof toHttpError>) => string): void {
    if (this.ended) return;
    const e = toHttpError(err);
    const raw = this.reply.raw;
    if (!this.committed) {
      this.committed = true;
      this.finish();
      raw.writeHead(httpStatusOf(e), { "content-type": "application/json; charset=utf-8" });
      raw.end(JSON.stringify(errorBody(e)));
    } else if (lastLine) {
      raw.write(lastLine(e));
      this.finish();
      raw.end();
    } else {
      this.finish();
      raw.destroy(e);
    }
  }

  private finish(): void {
    this.ended = true;
    this.stopHeartbeat();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}

/** An NDJSON event stream: one JSON object per line. */
export class NdjsonStream {
  private readonly res: LazyResponse;

  constructor(reply: FastifyReply, o: { shutdown: AbortSignal; heartbeatMs?: number }) {
    const { shutdown, heartbeatMs = HEARTBEAT_MS } = o;
    this.res = new LazyResponse(reply, "application/x-ndjson; charset=utf-8", { shutdown, heartbeatMs });
  }

  /** Aborted when the client goes away or the server's drain time is over. */
  get signal(): AbortSignal {
    return this.res.signal;
  }

  /** Sends one event. */
  send(event: Record<string, unknown>): void {
    this.res.write(JSON.stringify(event) + "\n");
  }

  /** A stdout/stderr chunk event; `offset` is the chunk's byte offset in its stream, when known. */
  chunk(type: "stdout" | "stderr", data: Buffer, offset?: number): void {
    const { encoding, values } = encodeBytes(data);
    this.send(
      offset === undefined
        ? { type, data: values[0], encoding }
        : { type, data: values[0], encoding, offset },
    );
  }

  /** Sends the last event and ends the stream. */
  close(last: Record<string, unknown>): void {
    this.send(last);
    this.res.end();
  }

  /** Ends with an error (an HTTP error while nothing was sent; else an `error` line). */
  fail(err: unknown): void {
    this.res.fail(err, (e) => JSON.stringify({ type: "error", ...errorBody(e) }) + "\n");
  }

  /** Runs `work`, streaming what it sends, then closes with `last(result)` or fails. */
  async run<T>(
    work: (signal: AbortSignal) => Promise<T>,
    last: (r: T) => Record<string, unknown>,
  ): Promise<void> {
    try {
      this.close(last(await work(this.signal)));
    } catch (err) {
      this.fail(err);
    }
  }
}
