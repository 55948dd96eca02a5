/** The sandbox table: rows in, plain `Sandbox` objects out. */
import { AlreadyExistsError } from "../errors.js";
import type { PersistedState } from "../driver.js";
import type { IsolationLevel, NetworkPolicy, OnTimeout, Sandbox, SandboxState } from "../types.js";
import type { ProcessIdentity } from "../proc.js";
import type { Db } from "./database.js";

interface Row {
  id: string;
  name: string;
  driver: string;
  environment: string;
  state: SandboxState;
  isolation: IsolationLevel;
  vcpu_count: number;
  memory_mib: number;
  pids_max: number;
  network: NetworkPolicy;
  labels: string;
  env: string;
  ttl_seconds: number;
  on_timeout: OnTimeout;
  workspace_dir: string;
  driver_state: string | null;
  owner_pid: number | null;
  owner_start: number | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  expires_at: number | null;
  last_error: string | null;
}

/** A sandbox plus what only the service needs. */
export interface SandboxRecord extends Sandbox {
  driverState: PersistedState | null;
  /** Process that is creating the sandbox, while state is `creating`. */
  owner: ProcessIdentity | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function fromRow(r: Row): SandboxRecord {
  return {
    id: r.id,
    name: r.name,
    driver: r.driver,
    environment: r.environment,
    state: r.state,
    isolation: r.isolation,
    resources: { vcpuCount: r.vcpu_count, memoryMiB: r.memory_mib, pidsMax: r.pids_max },
    network: r.network,
    labels: JSON.parse(r.labels),
    env: JSON.parse(r.env),
    ttlSeconds: r.ttl_seconds,
    onTimeout: r.on_timeout,
    workspaceDir: r.workspace_dir,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
    startedAt: iso(r.started_at),
    expiresAt: iso(r.expires_at),
    lastError: r.last_error,
    driverState: r.driver_state ? JSON.parse(r.driver_state) : null,
    owner:
      r.owner_pid === null || r.owner_start === null ? null : { pid: r.owner_pid, startTime: r.owner_start },
  };
}

/** Fields that can change after creation. */
export interface SandboxPatch {
  state?: SandboxState;
  driverState?: PersistedState | null;
  startedAt?: number | null;
  expiresAt?: number | null;
  lastError?: string | null;
  owner?: ProcessIdentity | null;
}

/** Reads and writes sandbox rows. */
export class SandboxTable {
  constructor(private readonly db: Db) {}

  /**
   * Inserts a new sandbox in state `creating`.
   * @throws AlreadyExistsError when a live sandbox has the same name.
   */
  insert(s: Sandbox, owner: ProcessIdentity): void {
    const now = Date.now();
    try {
      this.db
        .prepare(
          `INSERT INTO sandboxes (id, name, driver, environment, state, isolation, vcpu_count, memory_mib,
             pids_max, network, labels, env, ttl_seconds, on_timeout, workspace_dir, owner_pid, owner_start,
             created_at, updated_at)
           VALUES (@id, @name, @driver, @environment, 'creating', @isolation, @vcpu, @mem, @pids, @network,
             @labels, @env, @ttl, @onTimeout, @ws, @ownerPid, @ownerStart, @now, @now)`,
        )
        .run({
          id: s.id,
          name: s.name,
          driver: s.driver,
          environment: s.environment,
          isolation: s.isolation,
          vcpu: s.resources.vcpuCount,
          mem: s.resources.memoryMiB,
          pids: s.resources.pidsMax,
          network: s.network,
          labels: JSON.stringify(s.labels),
          env: JSON.stringify(s.env),
          ttl: s.ttlSeconds,
          onTimeout: s.onTimeout,
          ws: s.workspaceDir,
          ownerPid: owner.pid,
          ownerStart: owner.startTime,
          now,
        });
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") {
        throw new AlreadyExistsError(`a sandbox named "${s.name}" already exists`, {
          hint: `pick another --name, or remove the old one with \`warren rm ${s.name}\``,
          details: { name: s.name },
        });
      }
      throw err;
    }
  }

  /** Applies a patch; returns the updated record or null when the id is unknown. */
  update(id: string, patch: SandboxPatch): SandboxRecord | null {
    const columns: Record<keyof SandboxPatch, [string, unknown]> = {
      state: ["state", patch.state],
      driverState: ["driver_state", patch.driverState === null ? null : JSON.stringify(patch.driverState)],
      startedAt: ["started_at", patch.startedAt],
      expiresAt: ["expires_at", patch.expiresAt],
      lastError: ["last_error", patch.lastError],
      owner: ["owner_pid", patch.owner?.pid ?? null],
    };
    const sets: string[] = ["updated_at = @now"];
    const params: Record<string, unknown> = { id, now: Date.now() };
    for (const key of Object.keys(columns) as Array<keyof SandboxPatch>) {
      if (patch[key] === undefined) continue;
      const [column, value] = columns[key];
      sets.push(`${column} = @${column}`);
      params[column] = value;
    }
    if (patch.owner !== undefined) {
      sets.push("owner_start = @owner_start");
      params.owner_start = patch.owner?.startTime ?? null;
    }
    this.db.prepare(`UPDATE sandboxes SET ${sets.join(", ")} WHERE id = @id`).run(params);
    return this.get(id);
  }

  /** The sandbox with this id, or null. */
  get(id: string): SandboxRecord | null {
    const row = this.db.prepare(`SELECT * FROM sandboxes WHERE id = ?`).get(id) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  /** The live (not deleted) sandbox with this name, or else the newest deleted one, or null. */
  getByName(name: string): SandboxRecord | null {
    const row = this.db
      .prepare(`SELECT * FROM sandboxes WHERE name = ? ORDER BY state = 'deleted', created_at DESC LIMIT 1`)
      .get(name) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  /** Sandboxes, newest first, optionally only in the given states. */
  list(states?: SandboxState[]): SandboxRecord[] {
    const rows = states
      ? (this.db
          .prepare(
            `SELECT * FROM sandboxes WHERE state IN (${states.map(() => "?").join(",")}) ORDER BY created_at DESC`,
          )
          .all(...states) as Row[])
      : (this.db.prepare(`SELECT * FROM sandboxes ORDER BY created_at DESC`).all() as Row[]);
    return rows.map(fromRow);
  }

  /** Number of sandboxes creating or running. */
  countActive(): number {
    const row = this.db
      .prepare(`SELECT COUNT(*) AS n FROM sandboxes WHERE state IN ('creating', 'running')`)
      .get() as { n: number };
    return row.n;
  }
}
