/**
 * Test fixture: a Warren on a private temporary state directory, with the built-in drivers. Its
 * `dispose` deletes every sandbox it made, then checks that nothing leaked (live rows, holder
 * processes, cgroups) and removes the directory.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WarrenConfig } from "../../src/core/config.js";
import { cgroupScope } from "../../src/drivers/bwrap/driver.js";
import { detectCgroups } from "../../src/drivers/bwrap/cgroups.js";
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
  // mkdtemp makes 0700; sandboxes run as another uid that must reach their workspace.
  chmodSync(stateDir, 0o711);
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

/** Cgroups left in this state dir's bwrap scope. */
export function leakedCgroups(stateDir: string): string[] {
  const layout = detectCgroups();
  if (!layout) return [];
  return layout.roots.flatMap((root) => {
    const dir = join(root, "warren", cgroupScope(stateDir));
    return existsSync(dir)
      ? readdirSync(dir, { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => `cgroup ${join(dir, d.name)}`)
      : [];
  });
}

/** Whether the bwrap driver can run here; the reason when not (tests print it when skipping). */
export async function bwrapSkipReason(): Promise<string | false> {
  const t = await testWarren();
  try {
    const probe = await t.warren.registry.get("bwrap").probe();
    return probe.usable
      ? false
      : `bwrap unusable here: ${probe.reason}${probe.hint ? ` (fix: ${probe.hint})` : ""}`;
  } finally {
    await t.dispose();
  }
}
