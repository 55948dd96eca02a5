/**
 * The one interface every front end talks to: a local backend (the service in this process) and a
 * remote one (the HTTP API) implement it identically, so the SDK, the CLI and the MCP server work
 * the same against either. Only plain data crosses it; streaming goes through callbacks.
 */
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
import type {
  ExecResult,
  FileEntry,
  JournalEntry,
  ProcessInfo,
  ProcessOutput,
  Sandbox,
} from "../core/types.js";
import type { DriverCapabilities } from "../core/driver.js";

/** A command to run, as front ends send it. */
export interface ExecRequest {
  argv: string[];
  /** @default "/workspace" */
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string | Uint8Array;
  /** Per-command timeout, separate from the sandbox's TTL. */
  timeoutMs?: number;
}

/** Streaming callbacks of a command: output in order as produced. */
export interface StreamCallbacks {
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

/** A background command to start. */
export interface ProcessRequest {
  argv: string[];
  /** @default "/workspace" */
  cwd?: string;
  env?: Record<string, string>;
}

/** Input of an agent run. */
export interface AgentRunRequest {
  /** Given to the entrypoint on stdin. @default empty */
  input?: string | Uint8Array;
}

/** What `doctor` reports for one driver. */
export interface DriverReport {
  driver: string;
  description: string;
  default: boolean;
  requiresOptIn: boolean;
  capabilities: DriverCapabilities;
  usable: boolean;
  reason: string;
  hint?: string;
  details?: Record<string, unknown>;
}

/** Where the backend is and what it runs on. */
export interface BackendInfo {
  kind: "local" | "remote";
  /** State dir (local) or server URL (remote). */
  location: string;
  defaultDriver: string;
}

/** Everything Warren can do, local or remote. Errors are WarrenError subclasses either way. */
export interface Backend extends AsyncDisposable {
  info(): Promise<BackendInfo>;

  createSandbox(options: CreateOptions): Promise<Sandbox>;
  getSandbox(ref: string): Promise<Sandbox>;
  listSandboxes(options?: ListOptions): Promise<Sandbox[]>;
  startSandbox(ref: string): Promise<Sandbox>;
  stopSandbox(ref: string): Promise<Sandbox>;
  deleteSandbox(ref: string): Promise<Sandbox>;
  reap(): Promise<ReapAction[]>;

  exec(ref: string, request: ExecRequest, stream?: StreamCallbacks): Promise<ExecResult>;
  /** One-shot: create, exec, delete (deleted whatever happens). */
  run(create: CreateOptions, request: ExecRequest, stream?: StreamCallbacks): Promise<ExecResult>;
  journal(ref: string, options?: { sinceSequence?: number; limit?: number }): Promise<JournalEntry[]>;
  driverLog(ref: string): Promise<string>;

  readFile(ref: string, path: string, stream?: { onChunk?: (chunk: Buffer) => void }): Promise<Buffer>;
  writeFile(
    ref: string,
    path: string,
    data: string | Uint8Array,
    options?: { mode?: number },
  ): Promise<FileEntry>;
  listFiles(ref: string, path: string, options?: { depth?: number }): Promise<FileEntry[]>;
  statFile(ref: string, path: string): Promise<FileEntry>;
  exists(ref: string, path: string): Promise<boolean>;
  makeDir(ref: string, path: string): Promise<FileEntry>;
  removeFile(ref: string, path: string, options?: { recursive?: boolean }): Promise<void>;
  renameFile(ref: string, from: string, to: string): Promise<FileEntry>;
  /** Unpacks a tar archive into a sandbox directory (created if missing). */
  uploadTar(ref: string, dir: string, tar: Uint8Array): Promise<void>;
  /** Packs a sandbox directory into a tar archive. */
  downloadTar(ref: string, dir: string): Promise<Buffer>;

  startProcess(ref: string, request: ProcessRequest): Promise<ProcessInfo>;
  listProcesses(ref: string): Promise<ProcessInfo[]>;
  getProcess(ref: string, processId: string): Promise<ProcessInfo>;
  /** Output from byte offsets (0 = from the start), without waiting. */
  processOutput(
    ref: string,
    processId: string,
    offsets?: { stdoutOffset?: number; stderrOffset?: number },
  ): Promise<ProcessOutput>;
  /** Streams output from the offsets until the process ends (or the signal aborts). */
  attachProcess(
    ref: string,
    processId: string,
    options: StreamCallbacks & { stdoutOffset?: number; stderrOffset?: number },
  ): Promise<ProcessInfo>;
  writeStdin(ref: string, processId: string, data: string | Uint8Array): Promise<void>;
  closeStdin(ref: string, processId: string): Promise<void>;
  /** Sends a signal (default SIGTERM) to the process's whole group. */
  signalProcess(ref: string, processId: string, signal?: string): Promise<ProcessInfo>;
  /** Waits until the process ends; TimeoutError after timeoutMs. */
  waitProcess(ref: string, processId: string, options?: { timeoutMs?: number }): Promise<ProcessInfo>;

  listEnvironments(): Promise<EnvironmentInfo[]>;
  inspectEnvironment(name: string): Promise<EnvironmentInfo>;
  /** Builds or downloads an environment; `force` rebuilds an installed one. */
  pullEnvironment(
    name: string,
    onProgress?: PullProgress,
    options?: { force?: boolean },
  ): Promise<EnvironmentInfo>;
  removeEnvironment(name: string): Promise<EnvironmentInfo>;

  drivers(): Promise<DriverReport[]>;
  /** The warm pool: what is ready per spec key, hits and misses, refill times. */
  pool(): Promise<PoolStats>;

  /** Adds an agent package (a directory on the caller's host, or a tar of one); replaces its old version. */
  addAgent(source: AgentSource): Promise<AgentInfo>;
  listAgents(): Promise<AgentInfo[]>;
  getAgent(name: string): Promise<AgentInfo>;
  /** Removes an agent's package; its runs and their results stay. */
  removeAgent(name: string): Promise<AgentInfo>;
  /** Runs an agent in a fresh sandbox; the record says how it ended (a failed run is not an error). */
  runAgent(name: string, request?: AgentRunRequest, stream?: StreamCallbacks): Promise<AgentRun>;
  /** Runs of an agent, newest first. */
  listRuns(name: string, options?: { limit?: number }): Promise<AgentRun[]>;
  getRun(name: string, runId: string): Promise<AgentRun>;
  /** The workspace a run left, as a tar archive. */
  runResult(name: string, runId: string): Promise<Buffer>;

  close(): Promise<void>;
}
