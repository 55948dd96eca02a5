/** The store: one SQLite file under the state directory holding sandboxes, the journal and locks. */
import { join } from "node:path";
import { openDatabase, type Db } from "./database.js";
import { JournalTable } from "./journal.js";
import { LockTable } from "./locks.js";
import { PoolTable } from "./pool.js";
import { SandboxTable } from "./sandboxes.js";

export type { SandboxRecord, SandboxPatch } from "./sandboxes.js";
export type { JournalCompletion } from "./journal.js";
export type { PoolCounters, PoolSpec, PooledRecord } from "./pool.js";

/** Everything Warren persists, behind one handle. */
export interface Store {
  readonly path: string;
  readonly sandboxes: SandboxTable;
  readonly journal: JournalTable;
  readonly locks: LockTable;
  /** The warm pool's instances and counters. */
  readonly pool: PoolTable;
  /** Runs `fn` in one write transaction (BEGIN IMMEDIATE). */
  transaction<T>(fn: () => T): T;
  close(): void;
}

/** Opens the store in `stateDir` (file `warren.db`). */
export function openStore(stateDir: string): Store {
  const path = join(stateDir, "warren.db");
  const db: Db = openDatabase(path);
  return {
    path,
    sandboxes: new SandboxTable(db),
    journal: new JournalTable(db),
    locks: new LockTable(db),
    pool: new PoolTable(db),
    transaction: <T>(fn: () => T): T => db.transaction(fn).immediate(),
    close: () => db.close(),
  };
}
