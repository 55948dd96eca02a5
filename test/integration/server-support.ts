/**
 * Fixtures of the HTTP server tests: an API server on a free port over a test Warren, raw HTTP
 * requests (with any Host header), and NDJSON reading with arrival times.
 */
import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import type { WarrenConfig } from "../../src/core/config.js";
import { LocalBackend } from "../../src/sdk/local.js";
import { RemoteBackend } from "../../src/sdk/remote.js";
import { buildServer, type WarrenServer } from "../../src/server/app.js";
import { testWarren, type TestWarren } from "../helpers/warren.js";

/** A running server and what it runs on. */
export interface TestServer {
  t: TestWarren;
  local: LocalBackend;
  remote: RemoteBackend;
  server: WarrenServer;
  url: string;
  token: string;
  /** fetch on the server with the token (unless `headers.authorization` says otherwise). */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Closes the server, then deletes every sandbox and checks for leaks. */
  dispose(): Promise<void>;
}

/** Starts an API server on 127.0.0.1 and a free port over a fresh test Warren. */
export async function startTestServer(
  config: Partial<WarrenConfig> = {},
  options: { heartbeatMs?: number } = {},
): Promise<TestServer> {
  const t = await testWarren(config);
  const local = new LocalBackend(t.warren);
  const token = randomBytes(24).toString("base64url");
  const server = await buildServer({ backend: local, token, port: 0, drainTimeoutMs: 2000, ...options });
  const url = await server.listen();
  const remote = new RemoteBackend({ url, apiKey: token });
  return {
    t,
    local,
    remote,
    server,
    url,
    token,
    api: (path, init = {}) =>
      fetch(url + path, {
        ...init,
        headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
      }),
    async dispose() {
      try {
        await server.close();
      } finally {
        await t.dispose();
      }
    },
  };
}

/** One HTTP request with full control of the headers (fetch will not send a custom Host). */
export function rawRequest(
  url: string,
  o: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, method: o.method ?? "GET", path: o.path, headers: o.headers },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

/** An NDJSON line and when it arrived (ms after the request was sent). */
export interface TimedLine {
  at: number;
  event: Record<string, unknown> & { type: string };
}

/** Reads an NDJSON response line by line, noting arrival times. */
export async function readNdjson(res: Response, started: number): Promise<TimedLine[]> {
  const lines: TimedLine[] = [];
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim()) lines.push({ at: Date.now() - started, event: JSON.parse(line) });
    }
  }
  if (pending.trim()) throw new Error(`stream ended inside a line: ${pending}`);
  return lines;
}

/** A URL path with `{params}` filled with harmless values. */
export function fillPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, (_m, name: string) => (name === "pid" ? "p1" : `no-such-${name}`));
}
