/**
 * Background processes: a command started detached in a sandbox, whose output is kept on disk
 * in the sandbox's workspace (`/workspace/.warren/proc/<id>/`), so a caller can attach from any
 * byte offset later — after it disconnected, or after the server restarted. Each process is a
 * journal row (with a process id); the row is completed when its exit is first observed, and
 * marked `lost` if the sandbox stops first.
 *
 * In the sandbox, a waiter shell starts the command in its own session (so a signal reaches its
 * whole group), waits for it and writes its exit code; a keeper holds the stdin FIFO open until
 * stdin is closed. A marker in the sandbox's /tmp (a tmpfs that ends with the sandbox) tells a
 * live waiter from a reused pid after a restart.
 */
import { InvalidArgumentError, InvalidStateError, NotFoundError, TimeoutError } from "../core/errors.js";
import { validateArgv, validateEnv, validateSandboxPath } from "../core/names.js";
import { selfIdentity } from "../core/proc.js";
import type { Store } from "../core/store/index.js";
import type { JournalEntry, ProcessInfo, ProcessOutput, ProcessState } from "../core/types.js";
import type { SandboxShell } from "./sandbox-shell.js";

/** Where a process's files live in its sandbox. */
const PROC_DIR = "/workspace/.warren/proc";
/** Most output one `output` call returns per stream. */
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
/** Signals a caller may send. */
const SIGNALS = ["TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT"];

const START = `
d=$1; m=$2; shift 2
mkdir -p -- "$d" "$(dirname -- "$m")" || exit 6
rm -f -- "$d/stdin" "$d/exit" "$d/pid" && mkfifo -m 600 -- "$d/stdin" || exit 6
: > "$d/out" && : > "$d/err" && : > "$m" || exit 6
sh -c '
d=$1; shift
echo $$ > "$d/waiter"
sleep infinity 3<>"$d/stdin" &
echo $! > "$d/keeper"
setsid "$@" < "$d/stdin" > "$d/out" 2> "$d/err" &
echo $! > "$d/pid.new" && mv -f "$d/pid.new" "$d/pid"
wait $!
echo $? > "$d/exit.new" && mv -f "$d/exit.new" "$d/exit"
kill "$(cat "$d/keeper")" 2>/dev/null
' warren-process "$d" "$@" < /dev/null > /dev/null 2>&1 &
i=0
while [ ! -e "$d/pid" ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 9; sleep 0.005; done
`;

/** Prints `<name> <state> <exit code or -> <stdin open 0/1>` for each "$dir $marker" pair. */
const STATE = `
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
while [ $# -ge 2 ]; do
  d=$1; m=$2; shift 2; n=$(basename -- "$d")
  if [ ! -d "$d" ]; then s=missing
  elif [ -e "$d/exit" ]; then s="exited $(cat "$d/exit")"
  elif [ -e "$m" ] && alive "$d/waiter"; then s=running
  elif [ -e "$d/exit" ]; then s="exited $(cat "$d/exit")"
  else s=lost; fi
  case $s in exited*) ;; *) s="$s -" ;; esac
  if [ "$s" = "running -" ] && alive "$d/keeper"; then k=1; else k=0; fi
  echo "$n $s $k"
done
`;

/** Live state of one process as its sandbox reports it. */
interface Probe {
  state: ProcessState | "missing";
  exitCode: number | null;
  stdinOpen: boolean;
}

/** Background processes in running sandboxes. */
export class ProcessService {
  private readonly self = selfIdentity();

  constructor(
    private readonly shell: SandboxShell,
    private readonly store: Store,
    private readonly maxJournalBytes: number,
  ) {}

  private dir(processId: string): string {
    return `${PROC_DIR}/${processId}`;
  }

  private marker(sandboxId: string, processId: string): string {
    return `/tmp/.warren-proc/${sandboxId}-${processId}`;
  }

  /** The journal row of a process. @throws NotFoundError */
  private row(sandboxId: string, processId: string): JournalEntry {
    const row = typeof processId === "string" ? this.store.journal.process(sandboxId, processId) : null;
    if (!row) {
      throw new NotFoundError(`no background process "${processId}" in sandbox ${sandboxId}`, {
        hint: `list them with \`warren ps ${sandboxId}\``,
        details: { sandboxId, processId },
      });
    }
    return row;
  }

  /**
   * Starts a command in the background and returns once it runs.
   * @throws NotFoundError, InvalidStateError (sandbox not running), InvalidArgumentError, NotSupportedError
   */
  async start(
    ref: string,
    r: { argv: string[]; cwd?: string; env?: Record<string, string> },
  ): Promise<ProcessInfo> {
    const argv = validateArgv(r.argv);
    const cwd = validateSandboxPath(r.cwd ?? "/workspace", "cwd");
    const env = validateEnv(r.env ?? {});
    const sandboxId = this.shell.sandboxesStatus(ref).id;
    const sequence = this.store.journal.begin(sandboxId, argv, cwd, this.self, (seq) => `p${seq}`);
    const processId = `p${sequence}`;
    try {
      await this.shell.run(
        ref,
        {
          script: START,
          args: [this.marker(sandboxId, processId), ...argv],
          cwd,
          env,
          stdin: "",
          detach: true,
          timeoutMs: 30000,
          maxOutputBytes: 64 * 1024,
          what: `background process ${processId}`,
        },
        (arg) => [arg(this.dir(processId))],
      );
    } catch (err) {
      this.store.journal.fail(sandboxId, sequence, err instanceof Error ? err.message : String(err));
      throw err;
    }
    // It was running a moment ago; asking the sandbox again would only cost another exec.
    return this.info(sandboxId, this.row(sandboxId, processId), {
      state: "running",
      exitCode: null,
      stdinOpen: true,
    });
  }

  /** Background processes of a sandbox (running ones are checked in the sandbox). */
  async list(ref: string): Promise<ProcessInfo[]> {
    const sandbox = this.shell.sandboxesStatus(ref);
    const rows = this.store.journal.processes(sandbox.id);
    const probes =
      sandbox.state === "running" ? await this.probe(sandbox.id, rows) : new Map<string, Probe>();
    return rows.map((row) => this.info(sandbox.id, row, probes.get(row.processId!)));
  }

  /** One background process. @throws NotFoundError */
  async get(ref: string, processId: string): Promise<ProcessInfo> {
    const sandbox = this.shell.sandboxesStatus(ref);
    const row = this.row(sandbox.id, processId);
    const probes =
      sandbox.state === "running" ? await this.probe(sandbox.id, [row]) : new Map<string, Probe>();
    return this.info(sandbox.id, row, probes.get(processId));
  }

  /**
   * Output from byte offsets (0 = the start), at most 4 MiB of each stream per call.
   * @throws NotFoundError, InvalidStateError (the sandbox is not running)
   */
  async output(
    ref: string,
    processId: string,
    o: { stdoutOffset?: number; stderrOffset?: number } = {},
  ): Promise<ProcessOutput> {
    const info = await this.get(ref, processId);
    const outOff = checkOffset(o.stdoutOffset ?? 0, "stdoutOffset");
    const errOff = checkOffset(o.stderrOffset ?? 0, "stderrOffset");
    const { stdout, stderr } = await this.read(info.sandboxId, processId, outOff, errOff, MAX_CHUNK_BYTES);
    return {
      stdout,
      stderr,
      stdoutOffset: outOff + stdout.length,
      stderrOffset: errOff + stderr.length,
      state: info.state,
      exitCode: info.exitCode,
    };
  }

  /**
   * Streams output from the offsets as it is produced until the process ends (or `signal`
   * aborts), then returns its final state.
   */
  async attach(
    ref: string,
    processId: string,
    o: {
      stdoutOffset?: number;
      stderrOffset?: number;
      onStdout?: (c: Buffer) => void;
      onStderr?: (c: Buffer) => void;
      signal?: AbortSignal;
    } = {},
  ): Promise<ProcessInfo> {
    let offsets = { stdoutOffset: o.stdoutOffset ?? 0, stderrOffset: o.stderrOffset ?? 0 };
    let idleMs = 20;
    for (;;) {
      const out = await this.output(ref, processId, offsets);
      if (out.stdout.length) o.onStdout?.(out.stdout);
      if (out.stderr.length) o.onStderr?.(out.stderr);
      offsets = { stdoutOffset: out.stdoutOffset, stderrOffset: out.stderrOffset };
      const got = out.stdout.length + out.stderr.length > 0;
      // State was read before the output: once it is final and nothing new came, all is out.
      if (out.state !== "running" && !got) return this.get(ref, processId);
      if (o.signal?.aborted) return this.get(ref, processId);
      idleMs = got ? 20 : Math.min(idleMs * 2, 250);
      await sleep(idleMs, o.signal);
    }
  }

  /** Writes to the process's stdin. @throws InvalidStateError when stdin is closed or it ended */
  async writeStdin(ref: string, processId: string, data: string | Uint8Array): Promise<void> {
    const info = await this.requireRunning(ref, processId);
    if (!info.stdinOpen) {
      throw new InvalidStateError(`the stdin of process ${processId} is closed`, {
        hint: "start a new process to send more input",
      });
    }
    await this.shell.run(
      ref,
      {
        script: `[ -p "$1/stdin" ] || exit 3; exec timeout 30 sh -c 'cat > "$1"' warren "$1/stdin"`,
        args: [],
        stdin: data,
        maxOutputBytes: 4096,
        what: `stdin of process ${processId}`,
      },
      (arg) => [arg(this.dir(processId))],
    );
  }

  /** Closes the process's stdin (it reads end-of-file). Closing a closed stdin changes nothing. */
  async closeStdin(ref: string, processId: string): Promise<void> {
    const info = await this.get(ref, processId);
    if (info.state !== "running" || !info.stdinOpen) return;
    await this.shell.run(
      ref,
      {
        script: `[ -s "$1/keeper" ] && kill "$(cat "$1/keeper")" 2>/dev/null; exit 0`,
        args: [],
        maxOutputBytes: 4096,
        what: `stdin of process ${processId}`,
      },
      (arg) => [arg(this.dir(processId))],
    );
  }

  /**
   * Sends a signal (default TERM) to the process's whole process group.
   * @throws InvalidArgumentError (unknown signal), InvalidStateError (not running)
   */
  async signal(ref: string, processId: string, signal = "TERM"): Promise<ProcessInfo> {
    const name = signal.toUpperCase().replace(/^SIG/, "");
    if (!SIGNALS.includes(name)) {
      throw new InvalidArgumentError(`unknown signal "${signal}"`, {
        hint: `use one of ${SIGNALS.join(", ")}`,
      });
    }
    await this.requireRunning(ref, processId);
    await this.shell.run(
      ref,
      {
        script: `[ -s "$1/pid" ] || exit 3; kill -s "$2" -- "-$(cat "$1/pid")" 2>/dev/null; exit 0`,
        args: [name],
        maxOutputBytes: 4096,
        what: `process ${processId}`,
      },
      (arg) => [arg(this.dir(processId))],
    );
    return this.get(ref, processId);
  }

  /** Waits until the process is no longer running. @throws TimeoutError after `timeoutMs` */
  async wait(ref: string, processId: string, o: { timeoutMs?: number } = {}): Promise<ProcessInfo> {
    const deadline = o.timeoutMs === undefined ? Infinity : Date.now() + o.timeoutMs;
    let idleMs = 20;
    for (;;) {
      const info = await this.get(ref, processId);
      if (info.state !== "running") return info;
      if (Date.now() >= deadline) {
        throw new TimeoutError(`process ${processId} still runs after ${o.timeoutMs} ms`, {
          hint: "wait again, or signal it",
          details: { processId },
        });
      }
      idleMs = Math.min(idleMs * 2, 250);
      await sleep(Math.min(idleMs, Math.max(0, deadline - Date.now())));
    }
  }

  /**
   * Called before a sandbox stops: records the exit of every process that finished. Where the
   * driver does not end a sandbox's processes itself (no isolation: they are host processes),
   * the ones still running are killed here; they are then `lost` like any other.
   */
  async settle(ref: string): Promise<void> {
    const sandbox = this.shell.sandboxesStatus(ref);
    if (sandbox.state !== "running") return;
    const rows = this.store.journal.processes(sandbox.id).filter((r) => r.status === "running");
    if (!rows.length) return;
    const probes = await this.probe(sandbox.id, rows);
    const running = rows.filter((r) => probes.get(r.processId!)?.state === "running");
    if (sandbox.isolation !== "none" || !running.length) return;
    await this.shell.run(
      sandbox.id,
      {
        script: `for d; do for f in waiter keeper; do [ -s "$d/$f" ] && kill -s KILL "$(cat "$d/$f")"; done; [ -s "$d/pid" ] && kill -s KILL -- "-$(cat "$d/pid")"; done 2>/dev/null; exit 0`,
        args: [],
        maxOutputBytes: 4096,
        what: "background processes",
      },
      (arg) => running.map((r) => arg(this.dir(r.processId!))),
    );
  }

  /** @throws InvalidStateError unless the process runs */
  private async requireRunning(ref: string, processId: string): Promise<ProcessInfo> {
    const info = await this.get(ref, processId);
    if (info.state !== "running") {
      const how = info.state === "exited" ? `has already exited (exit code ${info.exitCode})` : "was lost";
      throw new InvalidStateError(`process ${processId} ${how}`, {
        details: { processId, state: info.state, exitCode: info.exitCode },
      });
    }
    return info;
  }

  /** Asks the sandbox about running rows; completes the journal for those that ended. */
  private async probe(sandboxId: string, rows: JournalEntry[]): Promise<Map<string, Probe>> {
    const live = rows.filter((r) => r.status === "running" && r.processId);
    const probes = new Map<string, Probe>();
    if (!live.length) return probes;
    const { outcome } = await this.shell.run(
      sandboxId,
      { script: STATE, args: [], maxOutputBytes: 1024 * 1024, what: "background processes" },
      (arg) => live.flatMap((r) => [arg(this.dir(r.processId!)), this.marker(sandboxId, r.processId!)]),
    );
    for (const line of outcome.stdout.toString().split("\n")) {
      const [id, state, code, stdin] = line.split(" ");
      if (!id) continue;
      const exitCode = state === "exited" && /^\d+$/.test(code) ? Number(code) : null;
      probes.set(id, { state: state as Probe["state"], exitCode, stdinOpen: stdin === "1" });
    }
    for (const row of live) {
      const p = probes.get(row.processId!);
      if (!p || p.state === "running") continue;
      if (p.state === "exited") {
        const { stdout, stderr } = await this.read(sandboxId, row.processId!, 0, 0, this.maxJournalBytes);
        this.store.journal.complete(sandboxId, row.sequence, {
          status: "completed",
          exitCode: p.exitCode,
          stdout,
          stderr,
          truncated: stdout.length >= this.maxJournalBytes || stderr.length >= this.maxJournalBytes,
          timedOut: false,
          durationMs: Date.now() - Date.parse(row.startedAt),
        });
      } else {
        this.store.journal.loseProcesses(
          sandboxId,
          "its waiter is gone (the process's files were removed?)",
          [row.sequence],
        );
      }
    }
    return probes;
  }

  /** Reads output files from offsets, up to `max` bytes each. */
  private async read(sandboxId: string, processId: string, outOff: number, errOff: number, max: number) {
    const { outcome } = await this.shell.run(
      sandboxId,
      {
        script: `[ -d "$1" ] || exit 3; tail -c "+$2" "$1/out" | head -c "$4"; tail -c "+$3" "$1/err" | head -c "$4" >&2`,
        args: [String(outOff + 1), String(errOff + 1), String(max)],
        maxOutputBytes: max,
        what: `output of process ${processId}`,
      },
      (arg) => [arg(this.dir(processId))],
    );
    return { stdout: outcome.stdout, stderr: outcome.stderr };
  }

  /** ProcessInfo from the journal row and, for a running row, the sandbox's answer. */
  private info(sandboxId: string, row: JournalEntry, probe?: Probe): ProcessInfo {
    const fresh = this.store.journal.get(sandboxId, row.sequence) ?? row;
    let state: ProcessState;
    if (fresh.status === "running") state = probe?.state === "running" ? "running" : "lost";
    else if (fresh.status === "completed") state = "exited";
    else state = "lost";
    return {
      sandboxId,
      processId: fresh.processId!,
      sequence: fresh.sequence,
      argv: fresh.argv,
      cwd: fresh.cwd,
      state,
      exitCode: fresh.exitCode,
      startedAt: fresh.startedAt,
      finishedAt: fresh.finishedAt,
      stdinOpen: state === "running" && (probe?.stdinOpen ?? false),
    };
  }
}

/** @throws InvalidArgumentError unless a non-negative integer */
function checkOffset(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${value}`);
  }
  return value;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
}
