import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { resolveConfig } from "./config.js";
import { InvalidArgumentError } from "./errors.js";

function configHome(content?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "warren-config-"));
  if (content !== undefined) {
    mkdirSync(join(dir, "warren"));
    writeFileSync(
      join(dir, "warren", "config.json"),
      typeof content === "string" ? content : JSON.stringify(content),
    );
  }
  return dir;
}

describe("config", () => {
  it("resolves explicit > environment > file > default, frozen", () => {
    const xdg = configHome({ defaultMemoryMiB: 1024, defaultTtlSeconds: 120, defaultDriver: "host" });
    const env = { XDG_CONFIG_HOME: xdg, XDG_DATA_HOME: "/data", WARREN_MEMORY_MIB: "2048" };
    const c = resolveConfig({ defaultTtlSeconds: 600, defaultVcpuCount: undefined }, env);
    assert.equal(c.defaultTtlSeconds, 600, "explicit beats file");
    assert.equal(c.defaultMemoryMiB, 2048, "environment beats file");
    assert.equal(c.defaultDriver, "host", "file beats default");
    assert.equal(c.defaultVcpuCount, 1, "default");
    assert.equal(c.stateDir, "/data/warren");
    assert.ok(Object.isFrozen(c));
  });

  it("WARREN_HOME sets the state dir, made absolute", () => {
    assert.equal(
      resolveConfig({}, { WARREN_HOME: "/srv/w", XDG_CONFIG_HOME: configHome() }).stateDir,
      "/srv/w",
    );
  });

  it("rejects an invalid file or variable with a hint", () => {
    const bad = (fn: () => unknown, re: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message) && !!e.hint);
    bad(() => resolveConfig({}, { XDG_CONFIG_HOME: configHome("{nope") }), /not valid JSON/);
    bad(() => resolveConfig({}, { XDG_CONFIG_HOME: configHome({ defaultMemoryMiB: 1 }) }), /is invalid/);
    bad(() => resolveConfig({}, { XDG_CONFIG_HOME: configHome({ unknownField: 1 }) }), /is invalid/);
    bad(() => resolveConfig({}, { XDG_CONFIG_HOME: configHome(), WARREN_CPUS: "99" }), /WARREN_CPUS=99/);
  });
});
