/**
 * Test fixture of the microvm driver: the `debian-bookworm-vm` environment is built once per
 * machine (about a minute: debootstrap, kernel, agent, image) into a cache state directory,
 * `WARREN_TEST_CACHE` (default /var/tmp/warren-test-cache), and rebuilt only when the agent's
 * sources or the build version change. Every test's own fresh state directory then boots it
 * through `WARREN_MICROVM_ENV_DIR`. When QEMU is missing nothing is built: the driver's probe
 * says why, and the suites skip with that reason.
 */
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { CreateOptions } from "../../src/service/index.js";
import { Environments } from "../../src/service/environments.js";
import { VM_BUILD_VERSION, VM_ENVIRONMENT, agentSourceHash } from "../../src/service/vm-environment.js";
import { findExecutable } from "../../src/drivers/microvm/processes.js";
import { isAlive, selfIdentity } from "../../src/core/proc.js";

/** Cache state directory holding the built VM environment. */
export const TEST_CACHE = process.env.WARREN_TEST_CACHE ?? "/var/tmp/warren-test-cache";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Takes a lock file (pid and start time; a dead owner's lock is taken over). */
async function lock(path: string): Promise<() => void> {
  const me = selfIdentity();
  for (;;) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, `${me.pid} ${me.startTime}`);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    try {
      const [pid, startTime] = readFileSync(path, "utf8").split(" ").map(Number);
      if (!isAlive({ pid, startTime }) && Date.now() - statSync(path).mtimeMs > 1000)
        rmSync(path, { force: true });
    } catch {
      /* released meanwhile */
    }
    await sleep(500);
  }
}

function current(envs: Environments): boolean {
  const info = envs.inspect(VM_ENVIRONMENT);
  if (!info.installed || !info.rootfsPath) return false;
  try {
    const meta = JSON.parse(readFileSync(join(info.rootfsPath, "meta.json"), "utf8"));
    return meta.buildVersion === VM_BUILD_VERSION && meta.agentHash === agentSourceHash();
  } catch {
    return false;
  }
}

let ensured: Promise<string | null> | null = null;

/**
 * Builds the VM environment into the cache unless it is current, and points the microvm driver
 * at it. Resolves to the environment's directory, or null when QEMU is not installed or the
 * build failed (the build error is printed; the driver's probe then gives the reason).
 */
export function ensureVmEnvironment(): Promise<string | null> {
  ensured ??= (async () => {
    if (!findExecutable(undefined, ["qemu-system-x86_64"]) || process.getuid?.() !== 0) return null;
    mkdirSync(TEST_CACHE, { recursive: true });
    chmodSync(TEST_CACHE, 0o711);
    const envs = new Environments(TEST_CACHE);
    const dir = join(TEST_CACHE, "environments", VM_ENVIRONMENT);
    if (!current(envs)) {
      const release = await lock(join(TEST_CACHE, ".vm-build.lock"));
      try {
        if (!current(envs)) {
          const started = Date.now();
          console.log(`# microvm: building ${VM_ENVIRONMENT} into ${TEST_CACHE} (about a minute, once)`);
          await envs.pull(VM_ENVIRONMENT, { force: true });
          console.log(`# microvm: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
        }
      } catch (err) {
        console.log(`# microvm: building ${VM_ENVIRONMENT} failed: ${(err as Error).message}`);
        return null;
      } finally {
        release();
      }
    }
    process.env.WARREN_MICROVM_ENV_DIR = dir;
    return dir;
  })();
  return ensured;
}

/** Create options for the conformance suite (after making sure the environment is there). */
export async function microvmConformanceOptions(): Promise<CreateOptions> {
  await ensureVmEnvironment();
  return {};
}
