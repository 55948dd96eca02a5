/**
 * Crash safety: SIGKILL the CLI in the middle of a command. The next call marks the journal entry
 * `lost`, kills the orphaned command (no process or cgroup left), and the sandbox stays usable.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { detectCgroups } from "../../src/drivers/bwrap/cgroups.js";
import { cgroupScope } from "../../src/drivers/bwrap/driver.js";
import type { ExecResult, JournalEntry, Sandbox } from "../../src/core/types.js";
import { cli, cliJson, cliSpawn } from "../helpers/cli.js";
import { bwrapSkipReason, leakedCgroups } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# restart test: skipping: ${skip}`);

/** Host pids whose whole command line is `cmdline`. */
function hostProcesses(cmdline: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ").trim() === cmdline;
      } catch {
        return false;
      }
    })
    .map(Number);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("restart safety (bwrap)", { skip }, () => {
  const home = mkdtempSync(join(tmpdir(), "warren-restart-"));
  chmodSync(home, 0o711);
  after(() => {
    for (const s of cliJson<Sandbox[]>(home, ["ls"])) cli(home, ["rm", s.id]);
    const leaks = leakedCgroups(home);
    rmSync(home, { recursive: true, force: true });
    assert.deepEqual(leaks, []);
  });

  it("a CLI killed mid-exec leaves a lost journal entry, no orphan, and a usable sandbox", async () => {
    const sbx = cliJson<Sandbox>(home, ["create", "--name", "crashy"]);
    const marker = `sleep 4242.${process.pid}`;
    const child = cliSpawn(home, ["exec", "crashy", "--", "sh", "-c", `${marker}; echo never`]);
    // Wait until the command really runs inside the sandbox.
    const deadline = Date.now() + 10000;
    while (hostProcesses(marker).length === 0) {
      assert.ok(Date.now() < deadline, "the command never started");
      await sleep(20);
    }
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    assert.ok(hostProcesses(marker).length > 0, "the command outlives the killed CLI until cleanup");

    const journal = cliJson<JournalEntry[]>(home, ["logs", "crashy"]);
    assert.equal(journal.length, 1);
    assert.equal(journal[0].status, "lost");
    assert.match(journal[0].error ?? "", /died/);

    assert.deepEqual(hostProcesses(marker), [], "the orphaned command was killed");
    const layout = detectCgroups()!;
    const children = readdirSync(
      join(layout.roots[layout.mode === "v1" ? 1 : 0], "warren", cgroupScope(home), sbx.id),
    );
    assert.deepEqual(
      children.filter((c) => c.startsWith("x")),
      [],
      "no command cgroup is left",
    );

    const again = cliJson<ExecResult>(home, ["exec", "crashy", "--", "echo", "still here"]);
    assert.equal(again.stdout, "still here\n");
    assert.equal(again.sequence, 2);
  });

  it("a sandbox whose holder was killed is marked stopped and can be started again", () => {
    const sbx = cliJson<Sandbox>(home, ["create", "--name", "victim"]);
    cli(home, ["exec", "victim", "--", "sh", "-c", "echo saved > f"]);
    const layout = detectCgroups()!;
    const holder = join(
      layout.roots[layout.mode === "v1" ? 1 : 0],
      "warren",
      cgroupScope(home),
      sbx.id,
      "holder",
      "cgroup.procs",
    );
    for (const pid of readFileSync(holder, "utf8").split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        /* gone already: killing the sandbox's pid 1 takes the rest of its pid namespace with it */
      }
    }
    const status = cliJson<Sandbox>(home, ["status", "victim"]);
    assert.equal(status.state, "stopped");
    assert.match(status.lastError ?? "", /died/);
    cliJson(home, ["start", "victim"]);
    assert.equal(cliJson<ExecResult>(home, ["exec", "victim", "--", "cat", "f"]).stdout, "saved\n");
  });
});
