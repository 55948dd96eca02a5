/** Everything the CLI prints goes through here: tables, JSON, errors with hints. */
import { toWarrenError, type WarrenError } from "../core/errors.js";
import type { ErrorCode } from "../core/errors.js";
import type { Sandbox } from "../core/types.js";

/** Exit status of the CLI for each error code. */
const EXIT: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 2,
  NOT_FOUND: 3,
  ALREADY_EXISTS: 4,
  INVALID_STATE: 5,
  NOT_SUPPORTED: 6,
  LIMIT_EXCEEDED: 7,
  TIMEOUT: 8,
  DRIVER_UNAVAILABLE: 9,
  UNAUTHORIZED: 10,
  INTERNAL: 1,
};

/** Exit status for an error. */
export function exitCodeOf(err: WarrenError): number {
  return EXIT[err.code] ?? 1;
}

/** Writes one JSON document to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** Prints an error (JSON on stdout with --json, text on stderr otherwise) and returns the exit status. */
export function printError(err: unknown, json: boolean): number {
  const e = toWarrenError(err);
  if (json) {
    printJson({ error: { code: e.code, message: e.message, hint: e.hint, details: e.details } });
  } else {
    process.stderr.write(`error: ${e.message}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
    if (e.code === "INTERNAL" && process.env.WARREN_DEBUG && e.stack) process.stderr.write(e.stack + "\n");
  }
  return exitCodeOf(e);
}

/** Formats rows as left-aligned columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** "3m ago", "in 58m" style relative time. */
export function relative(iso: string | null, now = Date.now()): string {
  if (!iso) return "-";
  const diff = Date.parse(iso) - now;
  const abs = Math.abs(diff) / 1000;
  const text =
    abs < 60
      ? `${Math.round(abs)}s`
      : abs < 3600
        ? `${Math.round(abs / 60)}m`
        : `${(abs / 3600).toFixed(1)}h`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

/** Human-readable description of one sandbox. */
export function describeSandbox(s: Sandbox): string {
  const lines = [
    ["id", s.id],
    ["name", s.name],
    ["state", s.state],
    ["driver", `${s.driver} (isolation: ${s.isolation})`],
    ["environment", s.environment],
    ["resources", `${s.resources.vcpuCount} cpu, ${s.resources.memoryMiB} MiB, ${s.resources.pidsMax} pids`],
    ["network", s.network],
    ["workspace", s.workspaceDir],
    ["ttl", `${s.ttlSeconds}s, then ${s.onTimeout}${s.expiresAt ? ` (${relative(s.expiresAt)})` : ""}`],
    [
      "labels",
      Object.entries(s.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ") || "-",
    ],
    ["created", s.createdAt],
    ["last error", s.lastError ?? "-"],
  ];
  return lines.map(([k, v]) => `${k.padEnd(12)} ${v}`).join("\n") + "\n";
}
