/**
 * The real CLI, one process per call, on the bwrap driver: a sandbox made by one call is used by
 * later calls, survives stop/start with its workspace, and its journal lists every command.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ExecResult, JournalEntry, Sandbox } from "../../src/core/types.js";
import { cli, cliJson } from "../helpers/cli.js";
import { bwrapSkipReason, leakedCgroups } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# cli integration: skipping: ${skip}`);

describe("CLI across processes (bwrap)", { skip }, () => {
  let home: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), "warren-cli-"));
    chmodSync(home, 0o711);
  });
  after(() => {
    for (const s of cliJson<Sandbox[]>(home, ["ls"])) cli(home, ["rm", s.id]);
    const leaks = leakedCgroups(home);
    rmSync(home, { recursive: true, force: true });
    assert.deepEqual(leaks, []);
  });

  it("run executes in a real namespace sandbox and exits with the command's code", () => {
    const r = cli(home, [
      "run",
      "--",
      "sh",
      "-c",
      "echo $(hostname) $(id -u); cat /proc/1/cmdline | tr '\\0' ' '; exit 7",
    ]);
    assert.equal(r.status, 7, r.stderr);
    assert.match(r.stdout, /^sbx-[0-9a-f]{12} 1000\n/);
    assert.match(r.stdout, /bwrap/, "pid 1 is the sandbox's init, not the host's");
    assert.equal(cliJson<Sandbox[]>(home, ["ls"]).length, 0, "run deletes its sandbox");
    const u = cli(home, ["run", "--", "uname", "-a"]);
    assert.equal(u.status, 0);
    assert.match(u.stdout, /^Linux /);
  });

  it("a sandbox outlives the call that made it, keeps its workspace over stop/start, and journals every command", () => {
    const created = cliJson<Sandbox>(home, ["create", "--name", "keeper", "--label", "team=x"]);
    assert.equal(created.state, "running");
    assert.equal(cli(home, ["exec", "keeper", "--", "sh", "-c", "echo persisted > data.txt"]).status, 0);
    assert.equal(cliJson<Sandbox>(home, ["stop", "keeper"]).state, "stopped");
    const stopped = cli(home, ["exec", "keeper", "--", "true"]);
    assert.equal(stopped.status, 5);
    assert.match(stopped.stderr, /not running[\s\S]*hint: start it with `warren start keeper`/);
    assert.equal(cliJson<Sandbox>(home, ["start", "keeper"]).state, "running");
    const read = cliJson<ExecResult>(home, ["exec", "keeper", "--", "cat", "data.txt"]);
    assert.equal(read.stdout, "persisted\n");
    assert.equal(read.isolation, "namespace");
    const journal = cliJson<JournalEntry[]>(home, ["logs", "keeper"]);
    assert.deepEqual(
      journal.map((e) => [e.sequence, e.status, e.argv[0]]),
      [
        [1, "completed", "sh"],
        [2, "completed", "cat"],
      ],
    );
    assert.deepEqual(
      cliJson<Sandbox[]>(home, ["ls", "--label", "team=x"]).map((s) => s.name),
      ["keeper"],
    );
    assert.equal(cliJson<Sandbox>(home, ["rm", "keeper"]).state, "deleted");
    assert.equal(cliJson<Sandbox>(home, ["rm", "keeper"]).state, "deleted", "rm is idempotent");
  });

  it("exec passes stdin with -i, env and cwd, and a timeout separate from the TTL", () => {
    cliJson(home, ["create", "--name", "io"]);
    assert.equal(cli(home, ["exec", "-i", "io", "--", "tr", "a-z", "A-Z"], "shout\n").stdout, "SHOUT\n");
    assert.equal(
      cli(home, ["exec", "--env", "X=1", "--cwd", "/tmp", "io", "--", "sh", "-c", "echo $X $(pwd)"]).stdout,
      "1 /tmp\n",
    );
    const t = cliJson<ExecResult>(home, ["exec", "--timeout", "0.3", "io", "--", "sleep", "30"]);
    assert.equal(t.timedOut, true);
    assert.equal(t.exitCode, 124);
    assert.equal(cliJson<Sandbox>(home, ["status", "io"]).state, "running");
  });

  it("errors are JSON with code, message and hint, and a non-zero exit", () => {
    const missing = cliJson<{ error: { code: string; hint: string } }>(home, ["status", "nope"]);
    assert.equal(missing.__status, 3);
    assert.equal(missing.error.code, "NOT_FOUND");
    assert.match(missing.error.hint, /warren ls/);
    const bad = cliJson<{ error: { code: string } }>(home, ["create", "--memory", "5"]);
    assert.equal(bad.__status, 2);
    assert.equal(bad.error.code, "INVALID_ARGUMENT");
    const host = cli(home, ["create", "--driver", "host"]);
    assert.equal(host.status, 9);
    assert.match(host.stderr, /--allow-host/);
  });

  it("doctor reports every driver and env ls the catalog", () => {
    const d = cliJson<{ drivers: Array<{ driver: string; usable: boolean; reason: string }> }>(home, [
      "doctor",
    ]);
    const names = d.drivers.map((x) => x.driver);
    for (const name of ["bwrap", "host", "fake"]) assert.ok(names.includes(name), `doctor lists ${name}`);
    assert.equal(names[0], "bwrap", "the default driver comes first");
    assert.equal(d.drivers[0].usable, true);
    for (const r of d.drivers)
      assert.ok(typeof r.usable === "boolean" && r.reason.length > 0, JSON.stringify(r));
    const envs = cliJson<Array<{ name: string; installed: boolean }>>(home, ["env", "ls"]);
    assert.deepEqual(envs.map((e) => e.name).slice(0, 2), ["host", "debian-bookworm"]);
    assert.equal(envs[0].installed, true);
  });
});
