/**
 * The CLI's file and background-process verbs as a user runs them: `cp` both ways (files,
 * directories, stdin/stdout), `exec -d`, `ps`, `attach` (with stdin), `kill`, and `shell` with a
 * script on stdin; each through the real binary in separate processes.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { spawn } from "node:child_process";
import { CLI, cli, cliEnv, cliJson } from "../helpers/cli.js";
import { bwrapSkipReason, leakedCgroups } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# CLI files and processes: skipping: ${skip}`);

describe("CLI: cp, exec -d, ps, attach, kill, shell (bwrap)", { skip }, () => {
  let home: string;
  let host: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), "warren-cli-"));
    chmodSync(home, 0o711);
    host = mkdtempSync(join(tmpdir(), "warren-host-"));
    assert.equal(cli(home, ["create", "--name", "box"]).status, 0);
  });
  after(() => {
    cli(home, ["rm", "box"]);
    const leaks = leakedCgroups(home);
    rmSync(home, { recursive: true, force: true });
    rmSync(host, { recursive: true, force: true });
    assert.deepEqual(leaks, []);
  });

  it("cp copies a file and a directory in, and back out, keeping content and modes", () => {
    mkdirSync(join(host, "src/lib"), { recursive: true });
    writeFileSync(join(host, "src/main.sh"), "#!/bin/sh\necho main\n", { mode: 0o755 });
    writeFileSync(join(host, "src/lib/data.txt"), "data\n");
    writeFileSync(join(host, "note.txt"), "note\n");
    assert.equal(cli(home, ["cp", join(host, "src"), "box:/workspace/"]).status, 0);
    assert.equal(cli(home, ["cp", join(host, "note.txt"), "box:/workspace/renamed.txt"]).status, 0);
    const run = cli(home, [
      "exec",
      "box",
      "--",
      "sh",
      "-c",
      "/workspace/src/main.sh; cat /workspace/renamed.txt",
    ]);
    assert.equal(run.stdout, "main\nnote\n");
    assert.equal(cli(home, ["cp", "box:/workspace/src", join(host, "back")]).status, 0);
    assert.equal(readFileSync(join(host, "back/lib/data.txt"), "utf8"), "data\n");
    assert.equal(statSync(join(host, "back/main.sh")).mode & 0o777, 0o755);
    const report = cliJson<{ type: string; bytes: number }>(home, ["cp", "box:/workspace/renamed.txt", host]);
    assert.equal(report.type, "file");
    assert.equal(readFileSync(join(host, "renamed.txt"), "utf8"), "note\n");
  });

  it("cp - reads stdin into a file and cp to - writes a file to stdout", () => {
    assert.equal(cli(home, ["cp", "-", "box:/workspace/in.txt"], "from stdin\n").status, 0);
    const out = cli(home, ["cp", "box:in.txt", "-"]);
    assert.equal(out.status, 0);
    assert.equal(out.stdout, "from stdin\n");
  });

  it("cp refuses two host paths and reports a missing sandbox file as not found (exit 3)", () => {
    const both = cli(home, ["cp", "a", "b"]);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /exactly one side/);
    const missing = cli(home, ["cp", "box:/workspace/none", host]);
    assert.equal(missing.status, 3);
    assert.match(missing.stderr, /does not exist/);
  });

  it("exec -d starts a background process that ps lists and attach follows to its exit code", () => {
    const started = cliJson<{ processId: string; state: string }>(home, [
      "exec",
      "-d",
      "box",
      "--",
      "sh",
      "-c",
      "echo out; echo err >&2; sleep 2; exit 5",
    ]);
    assert.equal(started.state, "running");
    const ps = cli(home, ["ps", "box"]);
    assert.match(ps.stdout, new RegExp(`^${started.processId}\\s+running`, "m"));
    const attached = cli(home, ["attach", "box", started.processId]);
    assert.equal(attached.status, 5, attached.stderr);
    assert.equal(attached.stdout, "out\n");
    assert.equal(attached.stderr, "err\n");
    const list = cliJson<Array<{ processId: string; state: string; exitCode: number }>>(home, ["ps", "box"]);
    const mine = list.find((p) => p.processId === started.processId);
    assert.equal(mine?.state, "exited");
    assert.equal(mine?.exitCode, 5);
  });

  it("attach -i feeds stdin; kill signals the process group", () => {
    const reader = cli(home, ["exec", "-d", "box", "--", "sh", "-c", "read a; echo got:$a"]).stdout.trim();
    const fed = cli(home, ["attach", "-i", "box", reader], "hello\n");
    assert.equal(fed.status, 0, fed.stderr);
    assert.equal(fed.stdout, "got:hello\n");
    const sleeper = cli(home, ["exec", "-d", "box", "--", "sleep", "300"]).stdout.trim();
    const killed = cliJson<{ state: string; exitCode: number }>(home, [
      "kill",
      "box",
      sleeper,
      "-s",
      "KILL",
      "--wait",
      "10",
    ]);
    assert.equal(killed.state, "exited");
    assert.equal(killed.exitCode, 137);
    const again = cli(home, ["kill", "box", sleeper]);
    assert.equal(again.status, 5);
    assert.match(again.stderr, /already exited/);
  });

  it("shell without a terminal runs stdin as a script in the sandbox", () => {
    const r = cli(
      home,
      ["shell", "box"],
      "cd /workspace && echo $((6*7)) > answer && cat answer && hostname\nexit 3\n",
    );
    assert.equal(r.status, 3);
    assert.equal(r.stdout, "42\nbox\n");
  });

  it("shell with a terminal gets a PTY inside the sandbox and exits with the shell's code", async () => {
    // script(1) on the host gives the CLI a terminal; the shell inside must get its own PTY.
    const child = spawn("script", ["-qec", `${process.execPath} ${CLI} shell box`, "/dev/null"], {
      env: { ...cliEnv(home), TERM: "dumb" },
      stdio: ["pipe", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const waitFor = async (re: RegExp): Promise<void> => {
      for (let i = 0; i < 300 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, re);
    };
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    await waitFor(/\$ $/m);
    child.stdin.write("echo sum=$((40+2)); tty\r");
    await waitFor(/\/dev\/pts\/\d+/);
    child.stdin.write("exit 7\r");
    assert.equal(await exited, 7);
    assert.match(out, /sum=42/);
  });
});
