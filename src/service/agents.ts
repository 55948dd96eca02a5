/**
 * Agent packages and runs. A package is a directory with a `warren-agent.json` manifest and its
 * files; `add` copies it into the state directory under its content hash, `remove` deletes it.
 * A run (agents-run.ts) makes a sandbox through the normal create path, copies the package in,
 * gives the input on stdin, records the outcome and copies the workspace out. Run records live in
 * SQLite and survive restarts; a run whose Warren process died is marked failed at the next open.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { WarrenConfig } from "../core/config.js";
import { NotFoundError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { selfIdentity } from "../core/proc.js";
import { openDatabase, type Db } from "../core/store/database.js";
import { AgentTables, type AgentRecord, type AgentRun } from "../core/store/agents.js";
import type { Store } from "../core/store/index.js";
import type { AgentManifest } from "./agents-manifest.js";
import { packageFromTar, readPackageDir, writePackage, type AgentPackage } from "./agents-package.js";
import { runAgent, type RunAgentOptions, type SandboxRelease } from "./agents-run.js";
import { tarOfDir } from "./agents-tar.js";
import type { FileService } from "./files.js";
import type { SandboxService } from "./sandbox-service.js";

export type { AgentRun, AgentRunStatus, AgentRunTimings } from "../core/store/agents.js";
export type { AgentManifest } from "./agents-manifest.js";
export type { RunAgentOptions, SandboxRelease } from "./agents-run.js";

/** An agent package as stored: its current version. */
export interface AgentInfo {
  name: string;
  /** Content hash of the package (16 hex digits). */
  version: string;
  description: string;
  /** The manifest with its defaults applied. */
  manifest: AgentManifest;
  /** Host directory of this version's files. */
  path: string;
  sizeBytes: number;
  /** Files and directories in the package. */
  fileCount: number;
  addedAt: string;
}

/** Where a package comes from: a directory on this host, or a tar archive of one. */
export type AgentSource = { dir: string } | { tar: Uint8Array };

/** What the agent service needs. */
export interface AgentServiceDeps {
  config: Readonly<WarrenConfig>;
  store: Store;
  sandboxes: SandboxService;
  files: FileService;
  log: Logger;
  /**
   * Gives a run's sandbox back. Called with `reusable: true` only for a run that succeeded in a
   * healthy sandbox of an agent whose manifest says `reuse`; everything else is deleted.
   * @default deletes the sandbox
   */
  release?: SandboxRelease;
}

const toInfo = (r: AgentRecord): AgentInfo => ({
  name: r.name,
  version: r.version,
  description: (r.manifest as unknown as AgentManifest).description,
  manifest: r.manifest as unknown as AgentManifest,
  path: r.path,
  sizeBytes: r.sizeBytes,
  fileCount: r.fileCount,
  addedAt: r.addedAt,
});

/** Agent packages and their runs. */
export class AgentService {
  private readonly db: Db;
  private readonly tables: AgentTables;
  private readonly self = selfIdentity();
  /** `<stateDir>/agents/<name>/<version>/`: package files. */
  readonly packagesDir: string;
  /** `<stateDir>/agent-runs/<run id>/`: each run's workspace as it left it. */
  readonly resultsDir: string;

  constructor(private readonly deps: AgentServiceDeps) {
    // A connection of its own to the store's file: the tables are this service's alone.
    this.db = openDatabase(deps.store.path);
    this.tables = new AgentTables(this.db);
    this.packagesDir = join(deps.config.stateDir, "agents");
    this.resultsDir = join(deps.config.stateDir, "agent-runs");
    mkdirSync(this.packagesDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.resultsDir, { recursive: true, mode: 0o700 });
  }

  /** The stored package of an agent. @throws NotFoundError */
  private record(name: string): AgentRecord {
    const rec = this.tables.get(name);
    if (!rec) {
      throw new NotFoundError(`no agent "${name}"`, {
        hint: "list agents with `warren agent ls`; add one with `warren agent add DIR`",
        details: { agent: name },
      });
    }
    return rec;
  }

  /**
   * Adds a package, or a new version of it (the previous version's files are removed). Adding
   * the same content again changes nothing. Everything is checked before anything is written.
   * @throws NotFoundError (no directory or manifest), InvalidArgumentError (bad manifest, links,
   *   special files, a damaged archive), LimitExceededError (too large)
   */
  async add(source: AgentSource): Promise<AgentInfo> {
    const pkg: AgentPackage =
      "dir" in source ? readPackageDir(source.dir) : packageFromTar(Buffer.from(source.tar));
    const { name } = pkg.manifest;
    return this.deps.store.locks.with(`agent:${name}`, async () => {
      const agentDir = join(this.packagesDir, name);
      const dest = join(agentDir, pkg.version);
      if (!existsSync(dest)) {
        const staging = join(this.packagesDir, `.staging-${randomBytes(6).toString("hex")}`);
        try {
          writePackage(pkg, staging);
          mkdirSync(agentDir, { recursive: true, mode: 0o755 });
          renameSync(staging, dest);
        } finally {
          rmSync(staging, { recursive: true, force: true });
        }
      }
      const current = this.tables.get(name);
      if (current?.version !== pkg.version) {
        this.tables.put({
          name,
          version: pkg.version,
          manifest: pkg.manifest as unknown as Record<string, unknown>,
          path: dest,
          sizeBytes: pkg.sizeBytes,
          fileCount: pkg.files.length + pkg.dirs.length,
          addedAt: new Date().toISOString(),
        });
        this.deps.log.info("agent added", { agent: name, version: pkg.version });
      }
      for (const old of readdirSync(agentDir)) {
        if (old !== pkg.version) rmSync(join(agentDir, old), { recursive: true, force: true });
      }
      return toInfo(this.record(name));
    });
  }

  /** Every agent, by name. */
  list(): AgentInfo[] {
    return this.tables.list().map(toInfo);
  }

  /** One agent. @throws NotFoundError */
  get(name: string): AgentInfo {
    return toInfo(this.record(name));
  }

  /** Removes an agent's package (its run records and results stay). @throws NotFoundError */
  async remove(name: string): Promise<AgentInfo> {
    return this.deps.store.locks.with(`agent:${name}`, async () => {
      const info = toInfo(this.record(name));
      this.tables.remove(name);
      rmSync(join(this.packagesDir, name), { recursive: true, force: true });
      this.deps.log.info("agent removed", { agent: name });
      return info;
    });
  }

  /**
   * Runs an agent: see agents-run.ts. Returns the run record whatever the entrypoint did (a
   * non-zero exit, a timeout or a sandbox that died is a `failed` run, not an error).
   * @throws NotFoundError (no such agent); errors of sandbox creation and package upload (the
   *   run is then recorded as failed too)
   */
  async run(name: string, o: RunAgentOptions = {}): Promise<AgentRun> {
    let rec = this.record(name);
    let pkg: AgentPackage;
    try {
      pkg = readPackageDir(rec.path);
    } catch (err) {
      // A new version may have replaced the files between reading the row and reading them.
      if (!(err instanceof NotFoundError)) throw err;
      rec = this.record(name);
      pkg = readPackageDir(rec.path);
    }
    const { config, sandboxes, files, log } = this.deps;
    return runAgent(
      {
        config,
        sandboxes,
        files,
        log,
        tables: this.tables,
        owner: this.self,
        resultsDir: this.resultsDir,
        release: this.deps.release ?? (async (id) => void (await sandboxes.delete(id))),
      },
      pkg,
      o,
    );
  }

  /** Runs of an agent, newest first (an agent removed since keeps its runs). */
  listRuns(name: string, o: { limit?: number } = {}): AgentRun[] {
    return this.tables.listRuns(name, o.limit ?? 100);
  }

  /** One run of an agent. @throws NotFoundError */
  getRun(name: string, id: string): AgentRun {
    const run = this.tables.getRun(id);
    if (!run || run.agent !== name) {
      throw new NotFoundError(`no run "${id}" of agent "${name}"`, {
        hint: `list its runs with \`warren agent runs ${name}\``,
        details: { agent: name, run: id },
      });
    }
    return run;
  }

  /**
   * The workspace a run left, as a tar archive.
   * @throws NotFoundError (no such run, or its workspace was not collected)
   */
  resultTar(name: string, id: string): Buffer {
    const run = this.getRun(name, id);
    if (!run.resultDir || !existsSync(run.resultDir)) {
      throw new NotFoundError(`run ${id} has no result directory`, {
        hint: "the workspace is copied out only when the run's sandbox was still alive at its end",
        details: { run: id, status: run.status, error: run.error },
      });
    }
    return tarOfDir(run.resultDir);
  }

  /**
   * Marks runs whose Warren process died as failed and deletes their sandboxes (never reused).
   * Part of start-up reconcile.
   */
  async reconcile(): Promise<AgentRun[]> {
    const orphans = this.tables.failOrphanedRuns("the Warren process running it died");
    for (const run of orphans) {
      if (!run.sandboxId) continue;
      await this.deps.sandboxes.delete(run.sandboxId).catch((err) =>
        this.deps.log.warn("could not delete an orphaned run's sandbox", {
          run: run.id,
          sandboxId: run.sandboxId,
          error: String(err),
        }),
      );
    }
    if (orphans.length) this.deps.log.info("failed orphaned agent runs", { runs: orphans.map((r) => r.id) });
    return orphans;
  }

  /** Closes the service's store connection. */
  close(): void {
    this.db.close();
  }
}
