/** The local backend: the service in this process, on a state directory. */
import { createBuiltinRegistry } from "../drivers/index.js";
import {
  openWarren,
  type AgentSource,
  type CreateOptions,
  type ListOptions,
  type PullProgress,
  type Warren,
} from "../service/index.js";
import type { WarrenConfig } from "../core/config.js";
import type {
  AgentRunRequest,
  Backend,
  BackendInfo,
  DriverReport,
  ExecRequest,
  ProcessRequest,
  StreamCallbacks,
} from "./backend.js";

/** How to open a local backend. */
export interface LocalBackendOptions {
  /** Config over `WARREN_*` variables and defaults (e.g. `stateDir`). */
  config?: Partial<WarrenConfig>;
  env?: NodeJS.ProcessEnv;
}

/** Opens Warren in this process (reconcile and reap run first). */
export async function openLocalBackend(options: LocalBackendOptions = {}): Promise<LocalBackend> {
  const warren = await openWarren({
    config: options.config,
    env: options.env,
    registry: createBuiltinRegistry,
  });
  return new LocalBackend(warren);
}

/** Backend over an open Warren; closing it closes Warren. */
export class LocalBackend implements Backend {
  constructor(readonly warren: Warren) {}

  async info(): Promise<BackendInfo> {
    return {
      kind: "local",
      location: this.warren.config.stateDir,
      defaultDriver: this.warren.config.defaultDriver,
    };
  }

  createSandbox(o: CreateOptions) {
    return this.warren.sandboxes.create(o);
  }
  async getSandbox(ref: string) {
    return this.warren.sandboxes.status(ref);
  }
  async listSandboxes(o: ListOptions = {}) {
    return this.warren.sandboxes.list(o);
  }
  startSandbox(ref: string) {
    return this.warren.sandboxes.start(ref);
  }
  stopSandbox(ref: string) {
    return this.warren.sandboxes.stop(ref);
  }
  deleteSandbox(ref: string) {
    return this.warren.sandboxes.delete(ref);
  }
  reap() {
    return this.warren.sandboxes.reap();
  }

  exec(ref: string, r: ExecRequest, s: StreamCallbacks = {}) {
    return this.warren.sandboxes.exec(ref, { ...r, ...s });
  }
  run(create: CreateOptions, r: ExecRequest, s: StreamCallbacks = {}) {
    return this.warren.sandboxes.run(create, { ...r, ...s });
  }
  async journal(ref: string, o: { sinceSequence?: number; limit?: number } = {}) {
    return this.warren.sandboxes.journal(ref, o);
  }
  driverLog(ref: string) {
    return this.warren.sandboxes.driverLog(ref);
  }

  readFile(ref: string, path: string, s: { onChunk?: (c: Buffer) => void } = {}) {
    return this.warren.files.read(ref, path, s);
  }
  writeFile(ref: string, path: string, data: string | Uint8Array, o: { mode?: number } = {}) {
    return this.warren.files.write(ref, path, data, o);
  }
  listFiles(ref: string, path: string, o: { depth?: number } = {}) {
    return this.warren.files.list(ref, path, o);
  }
  statFile(ref: string, path: string) {
    return this.warren.files.stat(ref, path);
  }
  exists(ref: string, path: string) {
    return this.warren.files.exists(ref, path);
  }
  makeDir(ref: string, path: string) {
    return this.warren.files.mkdir(ref, path);
  }
  removeFile(ref: string, path: string, o: { recursive?: boolean } = {}) {
    return this.warren.files.remove(ref, path, o);
  }
  renameFile(ref: string, from: string, to: string) {
    return this.warren.files.rename(ref, from, to);
  }
  uploadTar(ref: string, dir: string, tar: Uint8Array) {
    return this.warren.files.uploadTar(ref, dir, tar);
  }
  downloadTar(ref: string, dir: string) {
    return this.warren.files.downloadTar(ref, dir);
  }

  startProcess(ref: string, r: ProcessRequest) {
    return this.warren.processes.start(ref, r);
  }
  listProcesses(ref: string) {
    return this.warren.processes.list(ref);
  }
  getProcess(ref: string, processId: string) {
    return this.warren.processes.get(ref, processId);
  }
  processOutput(ref: string, processId: string, o: { stdoutOffset?: number; stderrOffset?: number } = {}) {
    return this.warren.processes.output(ref, processId, o);
  }
  attachProcess(
    ref: string,
    processId: string,
    o: StreamCallbacks & { stdoutOffset?: number; stderrOffset?: number },
  ) {
    return this.warren.processes.attach(ref, processId, o);
  }
  writeStdin(ref: string, processId: string, data: string | Uint8Array) {
    return this.warren.processes.writeStdin(ref, processId, data);
  }
  closeStdin(ref: string, processId: string) {
    return this.warren.processes.closeStdin(ref, processId);
  }
  signalProcess(ref: string, processId: string, signal = "SIGTERM") {
    return this.warren.processes.signal(ref, processId, signal);
  }
  waitProcess(ref: string, processId: string, o: { timeoutMs?: number } = {}) {
    return this.warren.processes.wait(ref, processId, o);
  }

  async listEnvironments() {
    return this.warren.environments.list();
  }
  async inspectEnvironment(name: string) {
    return this.warren.environments.inspect(name);
  }
  pullEnvironment(name: string, onProgress?: PullProgress, options: { force?: boolean } = {}) {
    return this.warren.environments.pull(name, { onProgress, force: options.force });
  }
  async removeEnvironment(name: string) {
    const users = this.warren.sandboxes
      .list()
      .filter((s) => s.environment === name)
      .map((s) => s.id);
    return this.warren.environments.remove(name, users);
  }

  async drivers(): Promise<DriverReport[]> {
    const { registry, config } = this.warren;
    const rows: DriverReport[] = [];
    for (const factory of registry.factoriesList()) {
      const driver = registry.get(factory.name);
      const probe = await driver.probe();
      rows.push({
        driver: factory.name,
        description: factory.description,
        default: factory.name === config.defaultDriver,
        requiresOptIn: factory.requiresOptIn,
        capabilities: driver.capabilities,
        ...probe,
      });
    }
    return rows;
  }

  async pool() {
    return this.warren.pool.stats();
  }

  addAgent(source: AgentSource) {
    return this.warren.agents.add(source);
  }
  async listAgents() {
    return this.warren.agents.list();
  }
  async getAgent(name: string) {
    return this.warren.agents.get(name);
  }
  removeAgent(name: string) {
    return this.warren.agents.remove(name);
  }
  runAgent(name: string, r: AgentRunRequest = {}, s: StreamCallbacks = {}) {
    return this.warren.agents.run(name, { ...r, ...s });
  }
  async listRuns(name: string, o: { limit?: number } = {}) {
    return this.warren.agents.listRuns(name, o);
  }
  async getRun(name: string, runId: string) {
    return this.warren.agents.getRun(name, runId);
  }
  async runResult(name: string, runId: string) {
    return this.warren.agents.resultTar(name, runId);
  }

  async close(): Promise<void> {
    this.warren.close();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
