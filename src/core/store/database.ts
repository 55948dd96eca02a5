/**
 * Opens the SQLite store (WAL, busy timeout) and owns the schema. Migrations are numbered and run
 * in order inside one transaction each; `PRAGMA user_version` records how far a file has come.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

/** The better-sqlite3 handle type. */
export type Db = Database.Database;

const MIGRATIONS: string[] = [
  `CREATE TABLE sandboxes (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     driver TEXT NOT NULL,
     environment TEXT NOT NULL,
     state TEXT NOT NULL,
     isolation TEXT NOT NULL,
     vcpu_count INTEGER NOT NULL,
     memory_mib INTEGER NOT NULL,
     pids_max INTEGER NOT NULL,
     network TEXT NOT NULL,
     labels TEXT NOT NULL,
     env TEXT NOT NULL,
     ttl_seconds INTEGER NOT NULL,
     on_timeout TEXT NOT NULL,
     workspace_dir TEXT NOT NULL,
     driver_state TEXT,
     owner_pid INTEGER,
     owner_start INTEGER,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     started_at INTEGER,
     expires_at INTEGER,
     last_error TEXT
   );
   CREATE UNIQUE INDEX sandboxes_live_name ON sandboxes(name) WHERE state != 'deleted';
   CREATE INDEX sandboxes_state ON sandboxes(state);
   CREATE TABLE journal (
     sandbox_id TEXT NOT NULL REFERENCES sandboxes(id),
     sequence INTEGER NOT NULL,
     argv TEXT NOT NULL,
     cwd TEXT NOT NULL,
     status TEXT NOT NULL,
     exit_code INTEGER,
     stdout BLOB,
     stderr BLOB,
     truncated INTEGER NOT NULL DEFAULT 0,
     timed_out INTEGER NOT NULL DEFAULT 0,
     started_at INTEGER NOT NULL,
     finished_at INTEGER,
     duration_ms INTEGER,
     error TEXT,
     owner_pid INTEGER NOT NULL,
     owner_start INTEGER NOT NULL,
     PRIMARY KEY (sandbox_id, sequence)
   );
   CREATE INDEX journal_running ON journal(status) WHERE status = 'running';
   CREATE TABLE locks (
     name TEXT PRIMARY KEY,
     owner_pid INTEGER NOT NULL,
     owner_start INTEGER NOT NULL,
     acquired_at INTEGER NOT NULL
   );`,
  // 2: background processes are journal rows that carry a process id; the process service, not
  // the owner's liveness, completes them.
  `ALTER TABLE journal ADD COLUMN process_id TEXT;`,
  // 3: agent packages (the current version of each) and their runs (see agents.ts).
  `CREATE TABLE agents (
     name TEXT PRIMARY KEY,
     version TEXT NOT NULL,
     manifest TEXT NOT NULL,
     path TEXT NOT NULL,
     size_bytes INTEGER NOT NULL,
     file_count INTEGER NOT NULL,
     added_at INTEGER NOT NULL
   );
   CREATE TABLE agent_runs (
     id TEXT PRIMARY KEY,
     agent TEXT NOT NULL,
     version TEXT NOT NULL,
     status TEXT NOT NULL,
     sandbox_id TEXT,
     exit_code INTEGER,
     timed_out INTEGER NOT NULL DEFAULT 0,
     stdout BLOB,
     stderr BLOB,
     truncated INTEGER NOT NULL DEFAULT 0,
     input_bytes INTEGER NOT NULL,
     result_dir TEXT,
     error TEXT,
     timings TEXT NOT NULL,
     started_at INTEGER NOT NULL,
     finished_at INTEGER,
     owner_pid INTEGER,
     owner_start INTEGER
   );
   CREATE INDEX agent_runs_agent ON agent_runs(agent, started_at);
   CREATE INDEX agent_runs_running ON agent_runs(status) WHERE status = 'running';`,
  // 4: the warm pool (see pool.ts): started, unused instances by creation spec, and its counters.
  `CREATE TABLE pool (
     id TEXT PRIMARY KEY,
     spec_key TEXT NOT NULL,
     spec TEXT NOT NULL,
     workspace_dir TEXT NOT NULL,
     state TEXT NOT NULL,
     driver_state TEXT,
     owner_pid INTEGER,
     owner_start INTEGER,
     local_only INTEGER NOT NULL DEFAULT 0,
     affinity TEXT,
     created_at INTEGER NOT NULL,
     idle_since INTEGER NOT NULL
   );
   CREATE INDEX pool_key ON pool(spec_key, state);
   CREATE TABLE pool_counters (
     spec_key TEXT PRIMARY KEY,
     hits INTEGER NOT NULL DEFAULT 0,
     misses INTEGER NOT NULL DEFAULT 0,
     reused INTEGER NOT NULL DEFAULT 0,
     invalidated INTEGER NOT NULL DEFAULT 0,
     refills INTEGER NOT NULL DEFAULT 0,
     refill_failures INTEGER NOT NULL DEFAULT 0,
     refill_ms TEXT NOT NULL DEFAULT '[]'
   );`,
];

/** Schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Opens (creating if needed) the store at `path` and brings its schema up to date. */
export function openDatabase(path: string): Db {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(
      `store schema version ${current} is newer than this warren (${SCHEMA_VERSION}); upgrade warren`,
    );
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      // Another process may have migrated between our read and this write transaction.
      if ((db.pragma("user_version", { simple: true }) as number) > v) return;
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}
