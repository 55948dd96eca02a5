/**
 * Agent packages and their runs: rows in, plain objects out. A package row names the current
 * version (a content hash) of an agent and where its files are; a run row is written when a run
 * starts (`running`, with its owner process) and completed when it ends, so a run whose Warren
 * process died can be told from one still going.
 */
import { isAlive, type ProcessIdentity } from "../proc.js";
import type { Db } from "./database.js";

/** Where a run is: `running` until it ends, then `succeeded` (exit 0) or `failed`. */
export type AgentRunStatus = "running" | "succeeded" | "failed";

/** How long each phase of a run took, in milliseconds (null: the phase did not happen). */
export interface AgentRunTimings {
  /** Creating (or checking out) the sandbox. */
  createMs: number | null;
  /** Copying the package into it. */
  uploadMs: number | null;
  /** Running the entrypoint. */
  execMs: number | null;
  /** Copying the workspace out. */
  collectMs: number | null;
}

/** One run of an agent, as stored and as every front end returns it. */
export interface AgentRun {
  /** `run-` and 12 hex digits. */
  id: string;
  agent: string;
  /** The package version (content hash) that ran. */
  version: string;
  status: AgentRunStatus;
  /** The entrypoint's exit code; null when it did not end on its own. */
  exitCode: number | null;
  timedOut: boolean;
  /** The sandbox it ran in (released when the run ends). */
  sandboxId: string | null;
  /** Output of the entrypoint, capped at the server's maxOutputBytes per stream. */
  stdout: string;
  stderr: string;
  truncated: boolean;
  inputBytes: number;
  /** Host directory holding the workspace as the run left it; null when it was not collected. */
  resultDir: string | null;
  /** Why the run failed, when it did. */
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  timings: AgentRunTimings;
}

/** A stored package: the current version of one agent. */
export interface AgentRecord {
  name: string;
  version: string;
  /** The manifest as validated (JSON). */
  manifest: Record<string, unknown>;
  /** Host directory of this version's files. */
  path: string;
  sizeBytes: number;
  fileCount: number;
  addedAt: string;
}

interface AgentRow {
  name: string;
  version: string;
  manifest: string;
  path: string;
  size_bytes: number;
  file_count: number;
  added_at: number;
}

interface RunRow {
  id: string;
  agent: string;
  version: string;
  status: AgentRunStatus;
  sandbox_id: string | null;
  exit_code: number | null;
  timed_out: number;
  stdout: Buffer | null;
  stderr: Buffer | null;
  truncated: number;
  input_bytes: number;
  result_dir: string | null;
  error: string | null;
  timings: string;
  started_at: number;
  finished_at: number | null;
  owner_pid: number | null;
  owner_start: number | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Timings of a run that has not done anything yet. */
export const NO_TIMINGS: AgentRunTimings = { createMs: null, uploadMs: null, execMs: null, collectMs: null };

function agentFromRow(r: AgentRow): AgentRecord {
  return {
    name: r.name,
    version: r.version,
    manifest: JSON.parse(r.manifest),
    path: r.path,
    sizeBytes: r.size_bytes,
    fileCount: r.file_count,
    addedAt: iso(r.added_at)!,
  };
}

function runFromRow(r: RunRow): AgentRun {
  return {
    id: r.id,
    agent: r.agent,
    version: r.version,
    status: r.status,
    exitCode: r.exit_code,
    timedOut: r.timed_out === 1,
    sandboxId: r.sandbox_id,
    stdout: r.stdout ? r.stdout.toString("utf8") : "",
    stderr: r.stderr ? r.stderr.toString("utf8") : "",
    truncated: r.truncated === 1,
    inputBytes: r.input_bytes,
    resultDir: r.result_dir,
    error: r.error,
    startedAt: iso(r.started_at)!,
    finishedAt: iso(r.finished_at),
    durationMs: r.finished_at === null ? null : r.finished_at - r.started_at,
    timings: { ...NO_TIMINGS, ...JSON.parse(r.timings) },
  };
}

/** Fields a run may change while it goes and when it ends. */
export interface AgentRunPatch {
  status?: AgentRunStatus;
  sandboxId?: string | null;
  exitCode?: number | null;
  timedOut?: boolean;
  stdout?: Buffer;
  stderr?: Buffer;
  truncated?: boolean;
  resultDir?: string | null;
  error?: string | null;
  timings?: AgentRunTimings;
  /** Milliseconds since the epoch; setting it also clears the owner. */
  finishedAt?: number;
}

/** Reads and writes agent packages and runs. */
export class AgentTables {
  constructor(private readonly db: Db) {}

  /** The current version of an agent, or null. */
  get(name: string): AgentRecord | null {
    const row = this.db.prepare(`SELECT * FROM agents WHERE name = ?`).get(name) as AgentRow | undefined;
    return row ? agentFromRow(row) : null;
  }

  /** Every agent, by name. */
  list(): AgentRecord[] {
    return (this.db.prepare(`SELECT * FROM agents ORDER BY name`).all() as AgentRow[]).map(agentFromRow);
  }

  /** Makes `a` the current version of its agent (inserted, or replacing the row). */
  put(a: AgentRecord): void {
    this.db
      .prepare(
        `INSERT INTO agents (name, version, manifest, path, size_bytes, file_count, added_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET version = excluded.version, manifest = excluded.manifest,
           path = excluded.path, size_bytes = excluded.size_bytes, file_count = excluded.file_count,
           added_at = excluded.added_at`,
      )
      .run(
        a.name,
        a.version,
        JSON.stringify(a.manifest),
        a.path,
        a.sizeBytes,
        a.fileCount,
        Date.parse(a.addedAt),
      );
  }

  /** Removes an agent's row; true when there was one. */
  remove(name: string): boolean {
    return this.db.prepare(`DELETE FROM agents WHERE name = ?`).run(name).changes > 0;
  }

  /** Writes a `running` run owned by `owner`. */
  beginRun(
    run: { id: string; agent: string; version: string; inputBytes: number; startedAt: number },
    owner: ProcessIdentity,
  ): AgentRun {
    this.db
      .prepare(
        `INSERT INTO agent_runs (id, agent, version, status, input_bytes, timings, started_at, owner_pid, owner_start)
         VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)`,
      )
      .run(
        run.id,
        run.agent,
        run.version,
        run.inputBytes,
        JSON.stringify(NO_TIMINGS),
        run.startedAt,
        owner.pid,
        owner.startTime,
      );
    return this.getRun(run.id)!;
  }

  /** Changes a run and returns it as it is now. */
  updateRun(id: string, p: AgentRunPatch): AgentRun {
    const sets: string[] = [];
    const values: unknown[] = [];
    const set = (column: string, value: unknown) => {
      sets.push(`${column} = ?`);
      values.push(value);
    };
    if (p.status !== undefined) set("status", p.status);
    if (p.sandboxId !== undefined) set("sandbox_id", p.sandboxId);
    if (p.exitCode !== undefined) set("exit_code", p.exitCode);
    if (p.timedOut !== undefined) set("timed_out", p.timedOut ? 1 : 0);
    if (p.stdout !== undefined) set("stdout", p.stdout);
    if (p.stderr !== undefined) set("stderr", p.stderr);
    if (p.truncated !== undefined) set("truncated", p.truncated ? 1 : 0);
    if (p.resultDir !== undefined) set("result_dir", p.resultDir);
    if (p.error !== undefined) set("error", p.error);
    if (p.timings !== undefined) set("timings", JSON.stringify(p.timings));
    if (p.finishedAt !== undefined) {
      set("finished_at", p.finishedAt);
      set("owner_pid", null);
      set("owner_start", null);
    }
    if (sets.length) {
      this.db.prepare(`UPDATE agent_runs SET ${sets.join(", ")} WHERE id = ?`).run(...values, id);
    }
    return this.getRun(id)!;
  }

  /** One run, or null. */
  getRun(id: string): AgentRun | null {
    const row = this.db.prepare(`SELECT * FROM agent_runs WHERE id = ?`).get(id) as RunRow | undefined;
    return row ? runFromRow(row) : null;
  }

  /** Runs of an agent, newest first. */
  listRuns(agent: string, limit = 100): AgentRun[] {
    const rows = this.db
      .prepare(`SELECT * FROM agent_runs WHERE agent = ? ORDER BY started_at DESC, rowid DESC LIMIT ?`)
      .all(agent, limit) as RunRow[];
    return rows.map(runFromRow);
  }

  /**
   * Marks `running` runs whose owner process is gone as failed with `reason` and returns them
   * (as they were: their sandboxes still need releasing).
   */
  failOrphanedRuns(reason: string, now = Date.now()): AgentRun[] {
    const rows = this.db.prepare(`SELECT * FROM agent_runs WHERE status = 'running'`).all() as RunRow[];
    const orphans = rows.filter(
      (r) => r.owner_pid === null || !isAlive({ pid: r.owner_pid, startTime: r.owner_start ?? -1 }),
    );
    const fail = this.db.prepare(
      `UPDATE agent_runs SET status = 'failed', error = ?, finished_at = ?, owner_pid = NULL, owner_start = NULL
       WHERE id = ? AND status = 'running'`,
    );
    return orphans.filter((r) => fail.run(reason, now, r.id).changes > 0).map(runFromRow);
  }
}
