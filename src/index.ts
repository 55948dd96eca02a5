/**
 * Warren's public API: `import { Sandbox } from "warren"`. See docs/sdk.md.
 */
export { Sandbox } from "./sdk/sandbox.js";
export type {
  ConnectionOptions,
  SandboxCreateOptions,
  SandboxInfo,
  SandboxListOptions,
} from "./sdk/sandbox.js";
export { CommandHandle, Commands } from "./sdk/commands.js";
export type {
  CommandResult,
  CommandSpec,
  OutputCallbacks,
  ProcessResult,
  RunOptions,
} from "./sdk/commands.js";
export { Files } from "./sdk/files.js";
export type { ReadOptions } from "./sdk/files.js";
export { agents } from "./sdk/agents.js";
export type { AgentRunOptions } from "./sdk/agents.js";

export { planBackend, resolveBackend } from "./sdk/resolve.js";
export type {
  BackendPlan,
  BackendSource,
  RemoteTarget,
  ResolvedBackend,
  ResolveOptions,
} from "./sdk/resolve.js";
export {
  addProfile,
  getProfile,
  readProfiles,
  redactKey,
  redactProfile,
  removeProfile,
  useProfile,
} from "./sdk/profiles.js";
export type { AddProfileOptions, LocalProfile, Profile, ProfileSet, RemoteProfile } from "./sdk/profiles.js";

export { LocalBackend, openLocalBackend } from "./sdk/local.js";
export type { LocalBackendOptions } from "./sdk/local.js";
export { RemoteBackend } from "./sdk/remote.js";
export type { RemoteBackendOptions } from "./sdk/remote.js";
export type {
  AgentRunRequest,
  Backend,
  BackendInfo,
  DriverReport,
  ExecRequest,
  ProcessRequest,
  StreamCallbacks,
} from "./sdk/backend.js";

export {
  AlreadyExistsError,
  DriverUnavailableError,
  InternalError,
  InvalidArgumentError,
  InvalidStateError,
  LimitExceededError,
  NotFoundError,
  NotSupportedError,
  TimeoutError,
  UnauthorizedError,
  WarrenError,
} from "./core/errors.js";
export type { ErrorCode, WarrenErrorOptions } from "./core/errors.js";

export type {
  ExecResult,
  FileEntry,
  FileType,
  IsolationLevel,
  JournalEntry,
  JournalStatus,
  NetworkPolicy,
  OnTimeout,
  ProcessInfo,
  ProcessOutput,
  ProcessState,
  Resources,
  SandboxState,
} from "./core/types.js";
export type { CreateOptions, EnvironmentInfo, ListOptions } from "./service/index.js";
export type { AgentInfo, AgentManifest, AgentRun, AgentSource } from "./service/index.js";
export type { AgentRunStatus, AgentRunTimings } from "./core/store/agents.js";
