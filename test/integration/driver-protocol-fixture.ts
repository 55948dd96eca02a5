/**
 * Test fixture: a Warren on a private state directory with one out-of-process driver registered
 * (as `warren driver add` does). `dispose` deletes every sandbox, stops the driver process, and
 * checks that nothing leaked: live rows, cgroups, the driver process, its socket.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WarrenConfig } from "../../src/core/config.js";
import {
  registerExternalDriver,
  type ExternalDriver,
  type ExternalDriverSpec,
} from "../../src/drivers/external/driver.js";
import { BUILTIN_DRIVERS, createBuiltinRegistry } from "../../src/drivers/index.js";
import { openWarren, type Warren } from "../../src/service/index.js";
import { leakedCgroups } from "../helpers/warren.js";

/** A Warren with an out-of-process driver. */
export interface ExternalWarren {
  warren: Warren;
  stateDir: string;
  /** The registered name. */
  name: string;
  /** The out-of-process driver as the registry holds it. */
  driver(): ExternalDriver;
  /** Deletes all sandboxes, stops the driver, checks for leaks, removes the state dir. */
  dispose(): Promise<void>;
}

/** Whether a process id is alive (any start time). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Opens a Warren on a fresh state dir after registering `spec` under `name`. */
export async function externalWarren(
  name: string,
  spec: ExternalDriverSpec,
  config: Partial<WarrenConfig> = {},
): Promise<ExternalWarren> {
  const stateDir = mkdtempSync(join(tmpdir(), "warren-test-"));
  chmodSync(stateDir, 0o711);
  await registerExternalDriver(stateDir, spec, {
    name,
    reserved: BUILTIN_DRIVERS.map((f) => f.name),
  });
  const warren = await openWarren({
    config: { logLevel: "silent", ...config, stateDir },
    env: { HOME: stateDir },
    registry: createBuiltinRegistry,
  });
  const driver = (): ExternalDriver => warren.registry.get(name) as ExternalDriver;
  return {
    warren,
    stateDir,
    name,
    driver,
    async dispose() {
      const leftovers: string[] = [];
      try {
        for (const s of warren.sandboxes.list()) {
          try {
            await warren.sandboxes.delete(s.id);
          } catch (err) {
            leftovers.push(`could not delete ${s.id} (${s.name}): ${String(err)}`);
          }
        }
        const live = warren.sandboxes.list();
        if (live.length) leftovers.push(`live rows: ${live.map((s) => s.id).join(", ")}`);
        leftovers.push(...leakedCgroups(stateDir));
        const info = spec.socket
          ? null
          : await driver()
              .handshake()
              .catch(() => null);
        await driver().close();
        if (info && pidAlive(info.pid)) leftovers.push(`driver process ${info.pid} still runs`);
      } finally {
        warren.close();
        rmSync(stateDir, { recursive: true, force: true });
      }
      if (leftovers.length) throw new Error(`leak check failed:\n${leftovers.join("\n")}`);
    },
  };
}

/** Waits until `check` is true (polling), or throws after `ms`. */
export async function waitFor(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
