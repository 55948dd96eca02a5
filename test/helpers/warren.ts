/**
 * Test fixture: a Warren on a private temporary state directory, with the built-in drivers. Its
 * `dispose` deletes every sandbox it made, then checks that nothing leaked (live rows, holder
 * processes, cgroups) and removes the directory.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WarrenConfig } from "../../src/core/config.js";
import { createBuiltinRegistry } from "../../src/drivers/index.js";
import { openWarren, type Warren } from "../../src/service/index.js";

/** A Warren for one test file. */
export interface TestWarren {
  warren: Warren;
  stateDir: string;
  /** Deletes all sandboxes, checks for leaks, removes the state dir. Throws on a leak. */
  dispose(): Promise<void>;
}

/** Opens a Warren on a fresh temporary state directory. */
export async function testWarren(config: Partial<WarrenConfig> = {}): Promise<TestWarren> {
  const stateDir = mkdtempSync(join(tmpdir(), "warren-test-"));
  const warren = await openWarren({
    config: { logLevel: "silent", ...config, stateDir },
    env: { HOME: stateDir },
    registry: createBuiltinRegistry,
  });
  return {
    warren,
    stateDir,
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
      } finally {
        warren.close();
        rmSync(stateDir, { recursive: true, force: true });
      }
      if (leftovers.length) throw new Error(`leak check failed:\n${leftovers.join("\n")}`);
    },
  };
}

/** Cgroups of this state dir's bwrap scope that still exist. */
export function leakedCgroups(stateDir: string): string[] {
  const out: string[] = [];
  for (const root of ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]) {
    const top = join(root, "warren");
    if (!existsSync(top)) continue;
    for (const scope of readdirSync(top)) {
      const dir = join(top, scope);
      for (const id of readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory())) {
        // Only this test's sandboxes: their ids appear in its state dir.
        if (existsSync(join(stateDir, "workspaces", id.name)) || existsSync(join(stateDir, "drivers", "bwrap", id.name))) {
          out.push(`cgroup ${join(dir, id.name)}`);
        }
      }
    }
  }
  return out;
}

/** Whether the bwrap driver can run here; the reason when not (tests print it when skipping). */
export async function bwrapSkipReason(): Promise<string | false> {
  const t = await testWarren();
  try {
    const probe = await t.warren.registry.get("bwrap").probe();
    return probe.usable ? false : `bwrap unusable here: ${probe.reason}${probe.hint ? ` (fix: ${probe.hint})` : ""}`;
  } finally {
    await t.dispose();
  }
}
