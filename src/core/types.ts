/** Plain data shared by the store, the service and the front ends. */

/** Lifecycle of a sandbox. `failed` carries `lastError`. */
export type SandboxState = "creating" | "running" | "stopped" | "deleted" | "failed";

/** Network policy: `none` (only loopback, the default) or `host` (the host's network). */
export type NetworkPolicy = "none" | "host";

/** What happens when a sandbox outlives its TTL. */
export type OnTimeout = "stop" | "delete";

/** Isolation level a driver gives. */
export type IsolationLevel = "none" | "namespace" | "container" | "vm";

/** Resources requested for a sandbox. */
export interface Resources {
  /** CPUs worth of quota. @default 1 */
  vcpuCount: number;
  /** Memory limit in MiB. @default 512 */
  memoryMiB: number;
  /** Maximum number of processes and threads. @default 512 */
  pidsMax: number;
}

/** A sandbox as the store keeps it and the front ends show it. */
export interface Sandbox {
  id: string;
  name: string;
  driver: string;
  environment: string;
  state: SandboxState;
  isolation: IsolationLevel;
  resources: Resources;
  network: NetworkPolicy;
  labels: Record<string, string>;
  env: Record<string, string>;
  ttlSeconds: number;
  onTimeout: OnTimeout;
  /** Host directory mounted at /workspace. */
  workspaceDir: string;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  /** When the TTL runs out (ISO time), while running. */
  expiresAt: string | null;
  lastError: string | null;
}

/** Status of one journal entry. `lost` means its owner process died before it finished. */
export type JournalStatus = "running" | "completed" | "timed_out" | "lost" | "failed";

/** One command in a sandbox's journal. */
export interface JournalEntry {
  sandboxId: string;
  sequence: number;
  argv: string[];
  cwd: string;
  status: JournalStatus;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  timedOut: boolean;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  error: string | null;
  /** Set when the entry is a background process (see ProcessInfo). */
  processId: string | null;
}

/** Result of one command. A non-zero exit code is a result, not an error. */
export interface ExecResult {
  sandboxId: string;
  sequence: number;
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  truncated: boolean;
  isolation: IsolationLevel;
}

/** Kind of a file-system entry. */
export type FileType = "file" | "directory" | "symlink" | "other";

/** One entry of a sandbox's file system. `path` is the sandbox path. */
export interface FileEntry {
  path: string;
  name: string;
  type: FileType;
  sizeBytes: number;
  /** Permission bits, e.g. 0o644. */
  mode: number;
  /** Last modification (ISO time). */
  modifiedAt: string;
  /** Target of a symlink, else null. */
  linkTarget: string | null;
}

/** State of a background process. */
export type ProcessState = "running" | "exited" | "lost";

/** A background process started in a sandbox. */
export interface ProcessInfo {
  sandboxId: string;
  /** Short id, unique in its sandbox. */
  processId: string;
  /** Its entry in the sandbox's journal. */
  sequence: number;
  argv: string[];
  cwd: string;
  state: ProcessState;
  /** Exit code once exited; 128+N when killed by signal N. */
  exitCode: number | null;
  startedAt: string;
  finishedAt: string | null;
  /** Whether its stdin is still open. */
  stdinOpen: boolean;
}

/** Output of a background process from given byte offsets. */
export interface ProcessOutput {
  stdout: Buffer;
  stderr: Buffer;
  /** Offsets to pass next time to get only new output. */
  stdoutOffset: number;
  stderrOffset: number;
  state: ProcessState;
  exitCode: number | null;
}
