/**
 * The remote backend: the Backend interface over Warren's HTTP API (`warren serve`), with Node's
 * global fetch. Errors are rebuilt from the wire into the same WarrenError subclasses the local
 * backend throws; streaming calls (exec, run, attach, pull, file reads) read NDJSON or raw bodies
 * as they arrive and feed the same callbacks.
 */
import {
  DriverUnavailableError,
  InternalError,
  InvalidArgumentError,
  TimeoutError,
  UnauthorizedError,
  errorFromWire,
  toWarrenError,
  type WarrenError,
} from "../core/errors.js";
import type {
  ExecResult,
  FileEntry,
  JournalEntry,
  ProcessInfo,
  ProcessOutput,
  Sandbox,
} from "../core/types.js";
import type {
  AgentInfo,
  AgentRun,
  AgentSource,
  CreateOptions,
  EnvironmentInfo,
  ListOptions,
  PoolStats,
  PullProgress,
  ReapAction,
} from "../service/index.js";
import { packageTar, readPackageDir } from "../service/agents-package.js";
import type {
  AgentRunRequest,
  Backend,
  BackendInfo,
  DriverReport,
  ExecRequest,
  ProcessRequest,
  StreamCallbacks,
} from "./backend.js";

/** How to reach a Warren server. */
export interface RemoteBackendOptions {
  /** Base URL of `warren serve`, e.g. `http://127.0.0.1:7377`. */
  url: string;
  /** The server's bearer token. @default process.env.WARREN_API_KEY */
  apiKey?: string;
}

/** Longest single wait request; longer waits are made of several (idle HTTP timeouts). */
const WAIT_SLICE_MS = 60000;

type Query = Record<string, string | number | boolean | string[] | undefined>;
interface CallOptions {
  query?: Query;
  json?: unknown;
  raw?: { body: Uint8Array | string; contentType: string };
  ndjson?: boolean;
  signal?: AbortSignal;
}
type Event = Record<string, unknown> & { type: string };

const toBytes = (data: string, encoding: unknown): Buffer =>
  Buffer.from(data, encoding === "base64" ? "base64" : "utf8");

/** Passes a stdout or stderr event to its callback. */
function feed(e: Event, s: StreamCallbacks): void {
  if (e.type === "stdout") s.onStdout?.(toBytes(e.data as string, e.encoding));
  else if (e.type === "stderr") s.onStderr?.(toBytes(e.data as string, e.encoding));
}

const enc = (s: string): string => encodeURIComponent(s);

/** Backend over the HTTP API of a Warren server. */
export class RemoteBackend implements Backend {
  private readonly base: string;
  private readonly apiKey: string | undefined;

  /** @throws InvalidArgumentError when `url` is not an http(s) URL */
  constructor(options: RemoteBackendOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch (err) {
      throw new InvalidArgumentError(`invalid Warren server URL "${options.url}"`, {
        hint: "use e.g. http://127.0.0.1:7377",
        cause: err,
      });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new InvalidArgumentError(`invalid Warren server URL "${options.url}"`, {
        hint: "use an http:// or https:// URL",
      });
    }
    this.base = url.toString().replace(/\/+$/, "");
    this.apiKey = options.apiKey ?? process.env.WARREN_API_KEY;
  }

  /** Sends a request; a non-2xx answer becomes the WarrenError it carries. */
  private async call(method: string, path: string, o: CallOptions = {}): Promise<Response> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(o.query ?? {})) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(one));
    }
    const headers: Record<string, string> = {};
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (o.ndjson) headers.accept = "application/x-ndjson";
    let body: string | Uint8Array | undefined;
    if (o.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(o.json);
    } else if (o.raw) {
      headers["content-type"] = o.raw.contentType;
      body = o.raw.body;
    }
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body, signal: o.signal });
    } catch (err) {
      throw this.transportError(err, o.signal);
    }
    if (!res.ok) throw await this.httpError(res);
    return res;
  }

  private transportError(err: unknown, signal?: AbortSignal): WarrenError {
    if (signal?.aborted) return toWarrenError(signal.reason);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return new DriverUnavailableError(
      `cannot reach the Warren server at ${this.base}: ${cause?.code ?? cause?.message ?? String(err)}`,
      { hint: `is \`warren serve\` running at ${this.base}?`, details: { url: this.base }, cause: err },
    );
  }

  private async httpError(res: Response): Promise<WarrenError> {
    const text = await res.text().catch(() => "");
    let wire: unknown;
    try {
      wire = (JSON.parse(text) as { error?: unknown }).error;
    } catch {
      wire = undefined;
    }
    if (res.status === 401) {
      const w = (wire ?? {}) as { message?: string };
      return new UnauthorizedError(w.message ?? "the Warren server refused the API token", {
        hint: "set WARREN_API_KEY (or apiKey) to the token in the server's token file (`warren serve` prints where it is)",
        details: { url: this.base },
      });
    }
    if (wire === undefined) {
      return new InternalError(`HTTP ${res.status} from ${this.base}: ${text.slice(0, 200)}`, {
        details: { status: res.status },
      });
    }
    return errorFromWire(wire);
  }

  private async json<T>(method: string, path: string, o: CallOptions = {}): Promise<T> {
    return (await (await this.call(method, path, o)).json()) as T;
  }

  private async none(method: string, path: string, o: CallOptions = {}): Promise<void> {
    await (await this.call(method, path, o)).arrayBuffer();
  }

  /** Reads a response body chunk by chunk. */
  private async *chunks(res: Response, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    if (!res.body) return;
    const reader = res.body.getReader();
    try {
      for (;;) {
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await reader.read();
        } catch (err) {
          if (signal?.aborted) throw toWarrenError(signal.reason);
          throw new InternalError(`the stream from ${this.base} broke off`, { cause: err });
        }
        if (r.done) return;
        yield r.value;
      }
    } finally {
      reader.releaseLock();
    }
  }

  /** Runs an NDJSON request; `onEvent` sees every line until one it returns a value for. */
  private async stream<T>(
    method: string,
    path: string,
    o: CallOptions,
    onEvent: (e: Event) => T | undefined,
  ): Promise<T> {
    const res = await this.call(method, path, { ...o, ndjson: true });
    const decoder = new TextDecoder();
    let pending = "";
    for await (const bytes of this.chunks(res, o.signal)) {
      pending += decoder.decode(bytes, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (!line) continue;
        const event = JSON.parse(line) as Event;
        if (event.type === "error") throw errorFromWire(event.error);
        const done = onEvent(event);
        if (done !== undefined) return done;
      }
    }
    throw new InternalError(`the server at ${this.base} ended the stream before its last event`);
  }

  /** An exec-style stream: chunks to the callbacks, then the `exit` result. */
  private execStream(path: string, body: unknown, s: StreamCallbacks): Promise<ExecResult> {
    return this.stream("POST", path, { json: body, signal: s.signal }, (e) => {
      feed(e, s);
      return e.type === "exit" ? (e.result as ExecResult) : undefined;
    });
  }

  private sbx(ref: string, rest = ""): string {
    return `/v1/sandboxes/${enc(ref)}${rest}`;
  }

  async info(): Promise<BackendInfo> {
    const server = await this.json<BackendInfo>("GET", "/v1/info");
    return { kind: "remote", location: this.base, defaultDriver: server.defaultDriver };
  }

  createSandbox(options: CreateOptions): Promise<Sandbox> {
    return this.json("POST", "/v1/sandboxes", { json: options });
  }
  getSandbox(ref: string): Promise<Sandbox> {
    return this.json("GET", this.sbx(ref));
  }
  listSandboxes(o: ListOptions = {}): Promise<Sandbox[]> {
    const label = Object.entries(o.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    return this.json("GET", "/v1/sandboxes", {
      query: { all: o.all ? 1 : undefined, state: o.states, label },
    });
  }
  startSandbox(ref: string): Promise<Sandbox> {
    return this.json("POST", this.sbx(ref, "/start"));
  }
  stopSandbox(ref: string): Promise<Sandbox> {
    return this.json("POST", this.sbx(ref, "/stop"));
  }
  deleteSandbox(ref: string): Promise<Sandbox> {
    return this.json("DELETE", this.sbx(ref));
  }
  reap(): Promise<ReapAction[]> {
    return this.json("POST", "/v1/reap");
  }

  exec(ref: string, r: ExecRequest, s: StreamCallbacks = {}): Promise<ExecResult> {
    return this.execStream(this.sbx(ref, "/exec"), execBody(r), s);
  }
  run(create: CreateOptions, r: ExecRequest, s: StreamCallbacks = {}): Promise<ExecResult> {
    return this.execStream("/v1/run", { ...execBody(r), create }, s);
  }
  journal(ref: string, o: { sinceSequence?: number; limit?: number } = {}): Promise<JournalEntry[]> {
    return this.json("GET", this.sbx(ref, "/journal"), { query: o });
  }
  async driverLog(ref: string): Promise<string> {
    return (await this.call("GET", this.sbx(ref, "/driver-log"))).text();
  }

  async readFile(ref: string, path: string, s: { onChunk?: (c: Buffer) => void } = {}): Promise<Buffer> {
    const res = await this.call("GET", this.sbx(ref, "/files/content"), { query: { path } });
    const parts: Buffer[] = [];
    for await (const bytes of this.chunks(res)) {
      const chunk = Buffer.from(bytes);
      parts.push(chunk);
      s.onChunk?.(chunk);
    }
    return Buffer.concat(parts);
  }
  writeFile(
    ref: string,
    path: string,
    data: string | Uint8Array,
    o: { mode?: number } = {},
  ): Promise<FileEntry> {
    return this.json("PUT", this.sbx(ref, "/files/content"), {
      query: { path, mode: o.mode },
      raw: { body: data, contentType: "application/octet-stream" },
    });
  }
  listFiles(ref: string, path: string, o: { depth?: number } = {}): Promise<FileEntry[]> {
    return this.json("GET", this.sbx(ref, "/files"), { query: { path, depth: o.depth } });
  }
  statFile(ref: string, path: string): Promise<FileEntry> {
    return this.json("GET", this.sbx(ref, "/files/stat"), { query: { path } });
  }
  async exists(ref: string, path: string): Promise<boolean> {
    return (await this.json<{ exists: boolean }>("GET", this.sbx(ref, "/files/exists"), { query: { path } }))
      .exists;
  }
  makeDir(ref: string, path: string): Promise<FileEntry> {
    return this.json("POST", this.sbx(ref, "/files/mkdir"), { json: { path } });
  }
  removeFile(ref: string, path: string, o: { recursive?: boolean } = {}): Promise<void> {
    return this.none("DELETE", this.sbx(ref, "/files"), {
      query: { path, recursive: o.recursive ? 1 : undefined },
    });
  }
  renameFile(ref: string, from: string, to: string): Promise<FileEntry> {
    return this.json("POST", this.sbx(ref, "/files/rename"), { json: { from, to } });
  }
  uploadTar(ref: string, dir: string, tar: Uint8Array): Promise<void> {
    return this.none("PUT", this.sbx(ref, "/files/tar"), {
      query: { dir },
      raw: { body: tar, contentType: "application/x-tar" },
    });
  }
  async downloadTar(ref: string, dir: string): Promise<Buffer> {
    const res = await this.call("GET", this.sbx(ref, "/files/tar"), { query: { dir } });
    return Buffer.from(await res.arrayBuffer());
  }

  startProcess(ref: string, r: ProcessRequest): Promise<ProcessInfo> {
    return this.json("POST", this.sbx(ref, "/processes"), { json: r });
  }
  listProcesses(ref: string): Promise<ProcessInfo[]> {
    return this.json("GET", this.sbx(ref, "/processes"));
  }
  getProcess(ref: string, processId: string): Promise<ProcessInfo> {
    return this.json("GET", this.sbx(ref, `/processes/${enc(processId)}`));
  }
  async processOutput(
    ref: string,
    processId: string,
    o: { stdoutOffset?: number; stderrOffset?: number } = {},
  ): Promise<ProcessOutput> {
    type Wire = Omit<ProcessOutput, "stdout" | "stderr"> & {
      stdout: string;
      stderr: string;
      encoding: string;
    };
    const path = this.sbx(ref, `/processes/${enc(processId)}/output`);
    const { encoding, stdout, stderr, ...rest } = await this.json<Wire>("GET", path, { query: o });
    return { ...rest, stdout: toBytes(stdout, encoding), stderr: toBytes(stderr, encoding) };
  }
  async attachProcess(
    ref: string,
    processId: string,
    o: StreamCallbacks & { stdoutOffset?: number; stderrOffset?: number },
  ): Promise<ProcessInfo> {
    const path = this.sbx(ref, `/processes/${enc(processId)}/attach`);
    const query = { stdoutOffset: o.stdoutOffset, stderrOffset: o.stderrOffset };
    try {
      return await this.stream("GET", path, { query, signal: o.signal }, (e) => {
        feed(e, o);
        return e.type === "end" ? (e.process as ProcessInfo) : undefined;
      });
    } catch (err) {
      // As in-process: an aborted attach is not an error; it returns the process as it is now.
      if (o.signal?.aborted) return this.getProcess(ref, processId);
      throw err;
    }
  }
  writeStdin(ref: string, processId: string, data: string | Uint8Array): Promise<void> {
    return this.none("POST", this.sbx(ref, `/processes/${enc(processId)}/stdin`), {
      raw: { body: data, contentType: "application/octet-stream" },
    });
  }
  closeStdin(ref: string, processId: string): Promise<void> {
    return this.none("POST", this.sbx(ref, `/processes/${enc(processId)}/stdin/close`));
  }
  signalProcess(ref: string, processId: string, signal = "SIGTERM"): Promise<ProcessInfo> {
    return this.json("POST", this.sbx(ref, `/processes/${enc(processId)}/signal`), { json: { signal } });
  }
  async waitProcess(ref: string, processId: string, o: { timeoutMs?: number } = {}): Promise<ProcessInfo> {
    const path = this.sbx(ref, `/processes/${enc(processId)}/wait`);
    const deadline = o.timeoutMs === undefined ? Infinity : Date.now() + o.timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      const timeoutMs = Math.max(0, Math.round(Math.min(left, WAIT_SLICE_MS)));
      try {
        return await this.json("POST", path, { query: { timeoutMs } });
      } catch (err) {
        if (err instanceof TimeoutError && left > WAIT_SLICE_MS) continue;
        throw err;
      }
    }
  }

  listEnvironments(): Promise<EnvironmentInfo[]> {
    return this.json("GET", "/v1/environments");
  }
  inspectEnvironment(name: string): Promise<EnvironmentInfo> {
    return this.json("GET", `/v1/environments/${enc(name)}`);
  }
  pullEnvironment(name: string, onProgress?: PullProgress): Promise<EnvironmentInfo> {
    return this.stream("POST", `/v1/environments/${enc(name)}/pull`, {}, (e) => {
      if (e.type === "progress") onProgress?.({ phase: e.phase as string, detail: e.detail as string });
      else if (e.type === "end") return e.environment as EnvironmentInfo;
      return undefined;
    });
  }
  removeEnvironment(name: string): Promise<EnvironmentInfo> {
    return this.json("DELETE", `/v1/environments/${enc(name)}`);
  }

  drivers(): Promise<DriverReport[]> {
    return this.json("GET", "/v1/drivers");
  }
  pool(): Promise<PoolStats> {
    return this.json("GET", "/v1/pool");
  }

  /** A directory is read and checked here, then sent as a tar archive. */
  async addAgent(source: AgentSource): Promise<AgentInfo> {
    const tar = "dir" in source ? packageTar(readPackageDir(source.dir)) : source.tar;
    return this.json("POST", "/v1/agents", { raw: { body: tar, contentType: "application/x-tar" } });
  }
  listAgents(): Promise<AgentInfo[]> {
    return this.json("GET", "/v1/agents");
  }
  getAgent(name: string): Promise<AgentInfo> {
    return this.json("GET", `/v1/agents/${enc(name)}`);
  }
  removeAgent(name: string): Promise<AgentInfo> {
    return this.json("DELETE", `/v1/agents/${enc(name)}`);
  }
  runAgent(name: string, r: AgentRunRequest = {}, s: StreamCallbacks = {}): Promise<AgentRun> {
    const binary = r.input !== undefined && typeof r.input !== "string";
    const body = {
      input: binary ? Buffer.from(r.input as Uint8Array).toString("base64") : r.input,
      inputEncoding: binary ? "base64" : undefined,
    };
    return this.stream("POST", `/v1/agents/${enc(name)}/runs`, { json: body, signal: s.signal }, (e) => {
      feed(e, s);
      return e.type === "end" ? (e.run as AgentRun) : undefined;
    });
  }
  listRuns(name: string, o: { limit?: number } = {}): Promise<AgentRun[]> {
    return this.json("GET", `/v1/agents/${enc(name)}/runs`, { query: o });
  }
  getRun(name: string, runId: string): Promise<AgentRun> {
    return this.json("GET", `/v1/agents/${enc(name)}/runs/${enc(runId)}`);
  }
  async runResult(name: string, runId: string): Promise<Buffer> {
    const res = await this.call("GET", `/v1/agents/${enc(name)}/runs/${enc(runId)}/result`);
    return Buffer.from(await res.arrayBuffer());
  }

  /** Nothing to release: connections belong to fetch's pool. */
  async close(): Promise<void> {}
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The JSON body of an exec request (bytes of stdin go as base64). */
function execBody(r: ExecRequest): Record<string, unknown> {
  const binary = r.stdin !== undefined && typeof r.stdin !== "string";
  return {
    argv: r.argv,
    cwd: r.cwd,
    env: r.env,
    stdin: binary ? Buffer.from(r.stdin as Uint8Array).toString("base64") : r.stdin,
    stdinEncoding: binary ? "base64" : undefined,
    timeoutMs: r.timeoutMs,
  };
}
