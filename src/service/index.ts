/** Opens Warren's service layer on a state directory: config, store, environments, sandboxes. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig, type WarrenConfig } from "../core/config.js";
import { createLogger, type Logger } from "../core/log.js";
import type { DriverRegistry } from "../core/registry.js";
import type { DriverFactoryOptions } from "../core/driver.js";
import { openStore, type Store } from "../core/store/index.js";
import { AgentService } from "./agents.js";
import { Environments } from "./environments.js";
import { FileService } from "./files.js";
import { ProcessService } from "./processes.js";
import { SandboxService, type ReconcileReport, type ReapAction } from "./sandbox-service.js";
import { SandboxShell } from "./sandbox-shell.js";
import type { WarmPool } from "./pool.js";

export { SandboxService } from "./sandbox-service.js";
export type { ExecOptions, ListOptions, ReapAction, ReconcileReport } from "./sandbox-service.js";
export type { CreateOptions } from "./options.js";
export { Environments } from "./environments.js";
export { FileService } from "./files.js";
export { ProcessService } from "./processes.js";
export type { EnvironmentInfo, PullProgress } from "./environments.js";
export { AgentService } from "./agents.js";
export { WarmPool, parsePrewarm, parseSpecKey, specKey } from "./pool.js";
export type { PoolKeyStats, PoolSpec, PoolStats, ReleaseOptions } from "./pool.js";
export type { AgentInfo, AgentManifest, AgentRun, AgentSource, RunAgentOptions } from "./agents.js";

/** An open Warren: everything a front end needs. */
export interface Warren extends AsyncDisposable {
  readonly config: Readonly<WarrenConfig>;
  readonly store: Store;
  readonly registry: DriverRegistry;
  readonly environments: Environments;
  readonly sandboxes: SandboxService;
  /** Files inside running sandboxes. */
  readonly files: FileService;
  /** Background processes in running sandboxes. */
  readonly processes: ProcessService;
  /** Agent packages and their runs. */
  readonly agents: AgentService;
  /** The warm pool every creation goes through (`pool.start()` keeps it filled). */
  readonly pool: WarmPool;
  readonly log: Logger;
  /** What start-up reconcile and reap did. */
  readonly startup: { reconcile: ReconcileReport; reaped: ReapAction[] };
  close(): void;
}

/** How to open Warren. */
export interface OpenWarrenOptions {
  config?: Partial<WarrenConfig>;
  env?: NodeJS.ProcessEnv;
  /** Builds the driver registry (front ends pass the built-in drivers). */
  registry: (options: DriverFactoryOptions) => DriverRegistry;
  log?: Logger;
  /** Run reconcile and the reaper at start. @default true */
  reconcile?: boolean;
}

/** Opens the state directory, reconciles it with reality and reaps expired sandboxes. */
export async function openWarren(o: OpenWarrenOptions): Promise<Warren> {
  const config = resolveConfig(o.config, o.env);
  const log = o.log ?? createLogger(config.logLevel);
  mkdirSync(config.stateDir, { recursive: true, mode: 0o711 });
  // Sandboxed processes run as another uid and must be able to pass through to their workspace.
  for (const sub of ["workspaces", "drivers", "environments"])
    mkdirSync(join(config.stateDir, sub), { recursive: true, mode: 0o711 });
  const store = openStore(config.stateDir);
  const registry = o.registry({ stateDir: config.stateDir, sandboxUid: config.sandboxUid });
  const environments = new Environments(config.stateDir);
  const sandboxes = new SandboxService({ config, store, registry, environments, log });
  const shell = new SandboxShell(sandboxes, registry);
  const files = new FileService(shell);
  const processes = new ProcessService(shell, store, config.maxOutputBytes);
  // A background process that ended before its sandbox stops keeps its exit code and output.
  sandboxes.beforeStop.push((s) => processes.settle(s.id));
  const pool = sandboxes.pool;
  const agents = new AgentService({
    config,
    store,
    sandboxes,
    files,
    log,
    release: async (id, o) => void (await pool.release(id, o)),
  });
  const startup = {
    reconcile: {
      lostCommands: [],
      stoppedSandboxes: [],
      failedCreations: [],
      removedResources: [],
    } as ReconcileReport,
    reaped: [] as ReapAction[],
  };
  if (o.reconcile !== false) {
    startup.reconcile = await sandboxes.reconcile();
    startup.reaped = await sandboxes.reap();
    await agents.reconcile();
  }
  const close = (): void => {
    void pool.stop();
    agents.close();
    store.close();
  };
  return {
    config,
    store,
    registry,
    environments,
    sandboxes,
    files,
    processes,
    agents,
    pool,
    log,
    startup,
    close,
    [Symbol.asyncDispose]: async () => {
      await pool.stop();
      close();
    },
  };
}
