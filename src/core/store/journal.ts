/**
 * The command journal. A row is written before a command starts (status `running`) and completed
 * after it ends; a `running` row whose owner process is gone is marked `lost`, never dropped.
 */
import type { JournalEntry, JournalStatus } from "../types.js";
import { isAlive, type ProcessIdentity } from "../proc.js";
import type { Db } from "./database.js";

interface Row {
  sandbox_id: string;
  sequence: number;
  argv: string;
  cwd: string;
  status: JournalStatus;
  exit_code: number | null;
  stdout: Buffer | null;
  stderr: Buffer | null;
  truncated: number;
  timed_out: number;
  started_at: number;
  finished_at: number | null;
  duration_ms: number | null;
  error: string | null;
  owner_pid: number;
  owner_start: number;
  process_id: string | null;
}

function fromRow(r: Row): JournalEntry {
  return {
    sandboxId: r.sandbox_id,
    sequence: r.sequence,
    argv: JSON.parse(r.argv),
    cwd: r.cwd,
    status: r.status,
    exitCode: r.exit_code,
    stdout: r.stdout ? r.stdout.toString("utf8") : "",
    stderr: r.stderr ? r.stderr.toString("utf8") : "",
    truncated: r.truncated === 1,
    timedOut: r.timed_out === 1,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: r.finished_at === null ? null : new Date(r.finished_at).toISOString(),
    durationMs: r.duration_ms,
    error: r.error,
    processId: r.process_id,
  };
}

/** How a command ended, for `complete`. */
export interface JournalCompletion {
  status: Exclude<JournalStatus, "running" | "lost">;
  exitCode: number | null;
  stdout: Buffer;
  stderr: Buffer;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
  error?: string;
}

/** Reads and writes journal rows. */
export class JournalTable {
  constructor(private readonly db: Db) {}

  /** Writes a `running` row with the next sequence number of the sandbox and returns that number. */
  begin(
    sandboxId: string,
    argv: string[],
    cwd: string,
    owner: ProcessIdentity,
    processId: (sequence: number) => string | null = () => null,
  ): number {
    return this.db
      .transaction(() => {
        const { next } = this.db
          .prepare(`SELECT COALESCE(MAX(sequence), 0) + 1 AS next FROM journal WHERE sandbox_id = ?`)
          .get(sandboxId) as { next: number };
        this.db
          .prepare(
            `INSERT INTO journal (sandbox_id, sequence, argv, cwd, status, started_at, owner_pid, owner_start, process_id)
             VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)`,
          )
          .run(
            sandboxId,
            next,
            JSON.stringify(argv),
            cwd,
            Date.now(),
            owner.pid,
            owner.startTime,
            processId(next),
          );
        return next;
      })
      .immediate();
  }

  /** Completes a row written by `begin`. */
  complete(sandboxId: string, sequence: number, c: JournalCompletion): void {
    this.db
      .prepare(
        `UPDATE journal SET status = ?, exit_code = ?, stdout = ?, stderr = ?, truncated = ?, timed_out = ?,
           finished_at = ?, duration_ms = ?, error = ?
         WHERE sandbox_id = ? AND sequence = ? AND status = 'running'`,
      )
      .run(
        c.status,
        c.exitCode,
        c.stdout,
        c.stderr,
        c.truncated ? 1 : 0,
        c.timedOut ? 1 : 0,
        Date.now(),
        c.durationMs,
        c.error ?? null,
        sandboxId,
        sequence,
      );
  }

  /** Completes a row as `failed`: the command could not be run. */
  fail(sandboxId: string, sequence: number, error: string): void {
    this.complete(sandboxId, sequence, {
      status: "failed",
      exitCode: null,
      stdout: Buffer.alloc(0),
      stderr: Buffer.alloc(0),
      truncated: false,
      timedOut: false,
      durationMs: 0,
      error,
    });
  }

  /** Entries of a sandbox in sequence order; `sinceSequence` skips earlier ones. */
  list(sandboxId: string, options: { sinceSequence?: number; limit?: number } = {}): JournalEntry[] {
    const rows = this.db
      .prepare(`SELECT * FROM journal WHERE sandbox_id = ? AND sequence > ? ORDER BY sequence LIMIT ?`)
      .all(sandboxId, options.sinceSequence ?? 0, options.limit ?? -1) as Row[];
    return rows.map(fromRow);
  }

  /** One entry, or null. */
  get(sandboxId: string, sequence: number): JournalEntry | null {
    const row = this.db
      .prepare(`SELECT * FROM journal WHERE sandbox_id = ? AND sequence = ?`)
      .get(sandboxId, sequence) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  /** Background-process rows of a sandbox, in sequence order. */
  processes(sandboxId: string): JournalEntry[] {
    const rows = this.db
      .prepare(`SELECT * FROM journal WHERE sandbox_id = ? AND process_id IS NOT NULL ORDER BY sequence`)
      .all(sandboxId) as Row[];
    return rows.map(fromRow);
  }

  /** The row of one background process, or null. */
  process(sandboxId: string, processId: string): JournalEntry | null {
    const row = this.db
      .prepare(`SELECT * FROM journal WHERE sandbox_id = ? AND process_id = ?`)
      .get(sandboxId, processId) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  /**
   * Marks still-running background processes of a sandbox `lost` (all of them, e.g. when the
   * sandbox stopped, or those with the given sequence numbers).
   */
  loseProcesses(sandboxId: string, reason: string, sequences?: number[]): number {
    const mark = this.db.prepare(
      `UPDATE journal SET status = 'lost', finished_at = ?, error = ?
       WHERE sandbox_id = ? AND process_id IS NOT NULL AND status = 'running' AND (? IS NULL OR sequence = ?)`,
    );
    if (!sequences) return mark.run(Date.now(), reason, sandboxId, null, null).changes;
    return sequences.reduce((n, seq) => n + mark.run(Date.now(), reason, sandboxId, seq, seq).changes, 0);
  }

  /** Marks `running` entries whose owner process died as `lost`; returns them. */
  markLost(): Array<{ sandboxId: string; sequence: number }> {
    const rows = this.db
      .prepare(
        `SELECT sandbox_id, sequence, owner_pid, owner_start FROM journal
         WHERE status = 'running' AND process_id IS NULL`,
      )
      .all() as Array<Pick<Row, "sandbox_id" | "sequence" | "owner_pid" | "owner_start">>;
    const lost = rows.filter((r) => !isAlive({ pid: r.owner_pid, startTime: r.owner_start }));
    const mark = this.db.prepare(
      `UPDATE journal SET status = 'lost', finished_at = ?,
         error = 'the process that ran this command died before it finished'
       WHERE sandbox_id = ? AND sequence = ? AND status = 'running'`,
    );
    this.db.transaction(() => {
      for (const r of lost) mark.run(Date.now(), r.sandbox_id, r.sequence);
    })();
    return lost.map((r) => ({ sandboxId: r.sandbox_id, sequence: r.sequence }));
  }
}
