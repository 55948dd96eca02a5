/**
 * Density: how much host memory an idle sandbox costs. Measured two ways: the drop of MemAvailable
 * while N sandboxes sit idle, and the proportional set size (PSS) of their holder processes.
 */
import { readFileSync, readdirSync } from "node:fs";

/** MemAvailable in KiB. */
export function memAvailableKiB(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"));
  if (!m) throw new Error("MemAvailable not found in /proc/meminfo");
  return Number(m[1]);
}

/** PSS in KiB of one process and all its descendants (0 for a process that is gone). */
export function treePssKiB(pid: number): number {
  let total = 0;
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    total += m ? Number(m[1]) : 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      for (const k of kids ? kids.split(" ") : []) total += treePssKiB(Number(k));
    }
  } catch {
    /* the process ended while we looked */
  }
  return total;
}
