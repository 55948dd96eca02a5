/**
 * Cgroups for the bwrap driver, v1 (one hierarchy per controller) and v2 (unified). Layout, the
 * same in both: `<root>/warren/<scope>/<sandboxId>/` holds the limits (the scope keeps two state
 * directories on one host from touching each other's sandboxes); its children `holder/` (the
 * sandbox's long-lived processes) and `x<seq>-<ownerPid>-<ownerStart>/` (one per command, so a
 * timed-out or orphaned command is killed with every process it made, setsid or not).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Which cgroup version the host runs, and where. */
export interface CgroupLayout {
  mode: "v1" | "v2";
  /** v2: the unified mount. v1: one mount per controller we use. */
  roots: string[];
}

const V1_CONTROLLERS = ["memory", "pids", "cpu"] as const;
const TOP = "warren";

/** Detects the cgroup version under `base`; null when no usable hierarchy is mounted. */
export function detectCgroups(base = "/sys/fs/cgroup"): CgroupLayout | null {
  if (existsSync(join(base, "cgroup.controllers"))) {
    return { mode: "v2", roots: [base] };
  }
  const roots = V1_CONTROLLERS.map((c) => join(base, c));
  if (roots.every((r) => existsSync(join(r, "cgroup.procs")))) return { mode: "v1", roots };
  return null;
}

/** Limits written on a sandbox's cgroup. */
export interface CgroupLimits {
  memoryMiB: number;
  pidsMax: number;
  vcpuCount: number;
}

const CPU_PERIOD_US = 100000;

function writeIfExists(path: string, value: string): void {
  if (existsSync(path)) writeFileSync(path, value);
}

function readProcs(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/** Cgroup operations for one host. */
export class Cgroups {
  /**
   * @param layout what detectCgroups found
   * @param scope one directory level naming the owner (a hash of the state directory)
   */
  constructor(
    readonly layout: CgroupLayout,
    private readonly scope: string,
  ) {}

  private parent(root: string): string {
    return join(root, TOP, this.scope);
  }

  /** Directories of one sandbox (one per hierarchy). */
  sandboxDirs(sandboxId: string): string[] {
    return this.layout.roots.map((r) => join(this.parent(r), sandboxId));
  }

  /** `cgroup.procs` files that a process writes itself into to join `child` of a sandbox. */
  procsFiles(sandboxId: string, child: string): string[] {
    return this.sandboxDirs(sandboxId).map((d) => join(d, child, "cgroup.procs"));
  }

  private enableV2Controllers(dir: string): void {
    const available = readFileSync(join(dir, "cgroup.controllers"), "utf8").split(/\s+/);
    const wanted = ["memory", "pids", "cpu"].filter((c) => available.includes(c));
    if (wanted.length)
      writeFileSync(join(dir, "cgroup.subtree_control"), wanted.map((c) => `+${c}`).join(" "));
  }

  /** Creates the sandbox's cgroup with its limits, and its `holder` child. */
  createSandbox(sandboxId: string, limits: CgroupLimits): void {
    const memBytes = String(limits.memoryMiB * 1024 * 1024);
    const quota = String(limits.vcpuCount * CPU_PERIOD_US);
    if (this.layout.mode === "v2") {
      const root = this.layout.roots[0];
      const top = join(root, TOP);
      const parent = this.parent(root);
      this.enableV2Controllers(root);
      mkdirSync(parent, { recursive: true });
      this.enableV2Controllers(top);
      this.enableV2Controllers(parent);
      const dir = join(parent, sandboxId);
      mkdirSync(dir, { recursive: true });
      writeIfExists(join(dir, "memory.max"), memBytes);
      writeIfExists(join(dir, "memory.swap.max"), "0");
      writeIfExists(join(dir, "pids.max"), String(limits.pidsMax));
      writeIfExists(join(dir, "cpu.max"), `${quota} ${CPU_PERIOD_US}`);
      mkdirSync(join(dir, "holder"), { recursive: true });
      return;
    }
    const [memory, pids, cpu] = this.sandboxDirs(sandboxId);
    for (const d of [memory, pids, cpu]) mkdirSync(join(d, "holder"), { recursive: true });
    writeFileSync(join(memory, "memory.limit_in_bytes"), memBytes);
    // Swap would let a sandbox exceed its memory limit; cap memory+swap at the same figure.
    try {
      writeIfExists(join(memory, "memory.memsw.limit_in_bytes"), memBytes);
    } catch {
      /* swap accounting is off on this host */
    }
    writeFileSync(join(pids, "pids.max"), String(limits.pidsMax));
    writeFileSync(join(cpu, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
    writeFileSync(join(cpu, "cpu.cfs_quota_us"), quota);
  }

  /** Creates a child cgroup (for one command) in every hierarchy. */
  createChild(sandboxId: string, child: string): void {
    for (const d of this.sandboxDirs(sandboxId)) mkdirSync(join(d, child), { recursive: true });
  }

  /** Pids in a child cgroup (or the whole sandbox when `child` is omitted). */
  pids(sandboxId: string, child?: string): number[] {
    const dir = this.sandboxDirs(sandboxId)[this.layout.mode === "v1" ? 1 : 0];
    const dirs = child ? [join(dir, child)] : [dir, ...subdirs(dir).map((c) => join(dir, c))];
    return dirs.flatMap(readProcs);
  }

  /** Sends a signal to every process in a child cgroup (or the whole sandbox). */
  signal(sandboxId: string, sig: NodeJS.Signals, child?: string): number {
    const pids = this.pids(sandboxId, child);
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
    return pids.length;
  }

  /** Kills every process in a child cgroup (or the whole sandbox) and waits until none is left. */
  async killAll(sandboxId: string, child?: string, waitMs = 5000): Promise<void> {
    const dir = this.sandboxDirs(sandboxId)[0];
    const killFile = join(child ? join(dir, child) : dir, "cgroup.kill");
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (this.layout.mode === "v2" && existsSync(killFile)) writeIfExists(killFile, "1");
      // Repeat: a process may fork between our read of cgroup.procs and the kill.
      if (this.signal(sandboxId, "SIGKILL", child) === 0) return;
      if (Date.now() > deadline) throw new Error(`processes of ${sandboxId}/${child ?? ""} survive SIGKILL`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Removes a child cgroup (its processes must be gone). */
  removeChild(sandboxId: string, child: string): void {
    for (const d of this.sandboxDirs(sandboxId)) {
      try {
        rmdirSync(join(d, child));
      } catch {
        /* already removed, or a process is still exiting: cleanup retries later */
      }
    }
  }

  /** Child cgroup names of a sandbox. */
  children(sandboxId: string): string[] {
    return subdirs(this.sandboxDirs(sandboxId)[0]);
  }

  /** Removes a sandbox's cgroups (kill its processes first). */
  removeSandbox(sandboxId: string): void {
    for (const d of this.sandboxDirs(sandboxId)) {
      for (const c of subdirs(d)) {
        try {
          rmdirSync(join(d, c));
        } catch {
          /* see removeChild */
        }
      }
      try {
        rmdirSync(d);
      } catch {
        /* see removeChild */
      }
    }
  }

  /** Sandbox ids that have a cgroup. */
  sandboxIds(): string[] {
    const ids = new Set<string>();
    for (const r of this.layout.roots) for (const id of subdirs(this.parent(r))) ids.add(id);
    return [...ids];
  }
}
