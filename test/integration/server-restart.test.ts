/**
 * `warren serve` as a real process: SIGTERM drains the request in flight and exits 0 without
 * stopping sandboxes; a new server on the same state dir reuses the token and finds the sandbox
 * still running, with its background process and that process's output.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DriverUnavailableError } from "../../src/core/errors.js";
import type { ExecResult, Sandbox } from "../../src/core/types.js";
import { RemoteBackend } from "../../src/sdk/remote.js";
import { CLI, cli, cliEnv, cliJson } from "../helpers/cli.js";
import { bwrapSkipReason, leakedCgroups } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# serve restart: skipping: ${skip}`);

/** A `warren serve` child and what it printed. */
interface Served {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `warren serve --port 0` on `home` and waits for its URL. */
async function serve(home: string, extra: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", ...extra], {
    env: cliEnv(home),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (c) => (out += c));
  child.stderr!.on("data", (c) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const deadline = Date.now() + 20000;
  for (;;) {
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) return { child, url: m[1], stdout: () => out, exited };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`warren serve did not start:\n${out}\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("warren serve: SIGTERM drains and leaves sandboxes running (bwrap)", { skip }, () => {
  const home = mkdtempSync(join(tmpdir(), "warren-serve-"));
  chmodSync(home, 0o711);
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const s of cliJson<Sandbox[]>(home, ["ls"])) cli(home, ["rm", s.id]);
    const leaks = leakedCgroups(home);
    rmSync(home, { recursive: true, force: true });
    assert.deepEqual(leaks, []);
  });

  it("finishes the request in flight, exits 0, and a restarted server sees the sandbox and its process", async () => {
    const first = await serve(home);
    children.push(first.child);
    const tokenFile = join(home, "server-token");
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const token = readFileSync(tokenFile, "utf8").trim();
    assert.ok(!first.stdout().includes(token), "the token was printed without --print-token");
    assert.match(first.stdout(), new RegExp(`token: in ${tokenFile}`));

    const remote = new RemoteBackend({ url: first.url, apiKey: token });
    const box = await remote.createSandbox({ name: "survivor" });
    console.log(`# sandbox ${box.id}`);
    const proc = await remote.startProcess("survivor", {
      argv: ["sh", "-c", "echo before; sleep 0.3; echo after; exec sleep 300"],
    });

    // A request in flight when SIGTERM arrives is answered before the server exits.
    const inFlight = remote.exec("survivor", { argv: ["sh", "-c", "sleep 1.5; echo drained"] });
    const deadline = Date.now() + 10000;
    while (!(await remote.journal("survivor")).some((j) => j.status === "running" && !j.processId)) {
      assert.ok(Date.now() < deadline, "the exec never started");
      await new Promise((r) => setTimeout(r, 50));
    }
    first.child.kill("SIGTERM");
    const result: ExecResult = await inFlight;
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, "drained\n");
    assert.deepEqual(await first.exited, { code: 0, signal: null });
    assert.match(first.stdout(), /SIGTERM: draining/);
    await assert.rejects(remote.listSandboxes(), DriverUnavailableError);

    // Without any server, the sandbox still runs (another process sees it healthy).
    assert.equal(cliJson<Sandbox>(home, ["status", "survivor"]).state, "running");

    const second = await serve(home, ["--print-token"]);
    children.push(second.child);
    assert.match(second.stdout(), new RegExp(`token value: ${token}`), "the token file was not reused");
    const again = new RemoteBackend({ url: second.url, apiKey: token });
    assert.equal((await again.getSandbox("survivor")).state, "running");
    const listed = await again.listProcesses("survivor");
    assert.equal(listed.find((p) => p.processId === proc.processId)?.state, "running");
    let out = "";
    for (const until = Date.now() + 10000; !out.includes("after");) {
      out = (await again.processOutput("survivor", proc.processId)).stdout.toString();
      assert.ok(Date.now() < until, `output after restart: ${JSON.stringify(out)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(out, "before\nafter\n");
    const journal = await again.journal("survivor");
    assert.equal(journal.find((j) => j.argv.includes("sleep 1.5; echo drained"))?.status, "completed");
    assert.equal((await again.exec("survivor", { argv: ["echo", "alive"] })).stdout, "alive\n");

    await again.deleteSandbox("survivor");
    second.child.kill("SIGINT");
    assert.deepEqual(await second.exited, { code: 0, signal: null });
  });
});
