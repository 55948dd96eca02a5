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
