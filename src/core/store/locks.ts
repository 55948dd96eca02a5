/**
 * Named locks shared by every process using one state directory. A lock row names its owner by
 * pid and start time; a lock whose owner died is taken over. Within one process, holders of the
 * same name queue behind each other.
 */
import { TimeoutError } from "../errors.js";
import { isAlive, selfIdentity, type ProcessIdentity } from "../proc.js";
import type { Db } from "./database.js";

/** Cross-process named locks. */
export class LockTable {
  private readonly self: ProcessIdentity = selfIdentity();
  private readonly local = new Map<string, Promise<void>>();

  constructor(private readonly db: Db) {}

  /**
   * Runs `fn` while holding the lock `name`.
   * @throws TimeoutError when the lock is not free within `waitMs`.
   */
  async with<T>(name: string, fn: () => Promise<T>, waitMs = 60000): Promise<T> {
    const previous = this.local.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => mine);
    this.local.set(name, chained);
    await previous;
    try {
      await this.acquire(name, waitMs);
      try {
        return await fn();
      } finally {
        this.db.prepare(`DELETE FROM locks WHERE name = ? AND owner_pid = ?`).run(name, this.self.pid);
      }
    } finally {
      release();
      if (this.local.get(name) === chained) this.local.delete(name);
    }
  }

  private tryAcquire(name: string): ProcessIdentity | null {
    return this.db
      .transaction((): ProcessIdentity | null => {
        const row = this.db.prepare(`SELECT owner_pid, owner_start FROM locks WHERE name = ?`).get(name) as
          { owner_pid: number; owner_start: number } | undefined;
        if (row) {
          const holder = { pid: row.owner_pid, startTime: row.owner_start };
          if (isAlive(holder)) return holder;
        }
        this.db
          .prepare(
            `INSERT OR REPLACE INTO locks (name, owner_pid, owner_start, acquired_at) VALUES (?, ?, ?, ?)`,
          )
          .run(name, this.self.pid, this.self.startTime, Date.now());
        return null;
      })
      .immediate();
  }

  private async acquire(name: string, waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    let delay = 5;
    for (;;) {
      const holder = this.tryAcquire(name);
      if (!holder) return;
      if (Date.now() >= deadline) {
        throw new TimeoutError(`lock "${name}" is held by process ${holder.pid}`, {
          hint: "another warren command is working on this sandbox; wait for it or stop that process",
          details: { lock: name, holderPid: holder.pid },
        });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 100);
    }
  }
}
