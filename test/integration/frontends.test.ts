/**
 * One sandbox driven from every front end against one `warren serve`: the CLI (remote through
 * WARREN_URL), the SDK (remote and local on the server's state dir), raw HTTP with the token, and
 * an MCP client over /mcp. Each sees what the others did, and the same journal.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { JournalEntry, Sandbox as SandboxData } from "../../src/core/types.js";
import { openLocalBackend } from "../../src/sdk/local.js";
import { Sandbox } from "../../src/sdk/sandbox.js";
import { CLI, cliEnv } from "../helpers/cli.js";
import { bwrapSkipReason, leakedCgroups } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# front ends: skipping: ${skip}`);

describe("one sandbox from the CLI, the SDK, HTTP and MCP (bwrap)", { skip }, () => {
  const home = mkdtempSync(join(tmpdir(), "warren-fe-"));
  // The CLI's own state dir stays empty: everything must go through the server.
  const elsewhere = mkdtempSync(join(tmpdir(), "warren-fe-cli-"));
  chmodSync(home, 0o711);
  let server: ChildProcess;
  let url = "";
  let token = "";

  /** `warren ...` against the server, from a machine with no local state. */
  const remoteCli = (args: string[], input?: string) => {
    const r = spawnSync(process.execPath, [CLI, ...args], {
      env: { ...cliEnv(elsewhere), WARREN_URL: url, WARREN_API_KEY: token },
      encoding: "utf8",
      input,
      timeout: 60000,
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const api = (path: string, init: RequestInit = {}, auth = true) =>
    fetch(`${url}${path}`, {
      ...init,
      headers: { "content-type": "application/json", ...(auth ? { authorization: `Bearer ${token}` } : {}) },
    });

  before(async () => {
    server = spawn(process.execPath, [CLI, "serve", "--port", "0"], {
      env: cliEnv(home),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    server.stdout!.on("data", (c) => (out += c));
    server.stderr!.on("data", (c) => (out += c));
    for (let i = 0; i < 400 && !/listening on (http:\/\/\S+)/.test(out); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const m = /listening on (http:\/\/\S+)/.exec(out);
    assert.ok(m, `warren serve did not start: ${out}`);
    url = m[1].replace(/\/$/, "");
    token = readFileSync(join(home, "server-token"), "utf8").trim();
  });
  after(async () => {
    remoteCli(["rm", "shared"]);
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    const leaks = leakedCgroups(home);
    rmSync(home, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
    assert.deepEqual(leaks, []);
  });

  it("every front end sees the others' work and the same journal", async () => {
    // CLI (remote): create and write a file with a command.
    const created = remoteCli(["create", "--name", "shared", "--json"]);
    assert.equal(created.status, 0, created.stderr);
    const sandbox = JSON.parse(created.stdout) as SandboxData;
    assert.equal(remoteCli(["exec", "shared", "--", "sh", "-c", "echo cli > from-cli"]).status, 0);

    // SDK (remote): sees the CLI's file, adds its own.
    const sdk = await Sandbox.connect("shared", { backend: { url, apiKey: token } });
    const r = await sdk.commands.run("cat from-cli && echo sdk > from-sdk");
    assert.equal(r.stdout, "cli\n");
    await sdk.files.write("/workspace/from-files.txt", "files");

    // Raw HTTP with the token: sees both; without it, refused.
    const refused = await api(`/v1/sandboxes/shared`, {}, false);
    assert.equal(refused.status, 401);
    const viaHttp = await api(`/v1/sandboxes/shared/exec`, {
      method: "POST",
      body: JSON.stringify({ argv: ["sh", "-c", "cat from-cli from-sdk from-files.txt"] }),
    });
    assert.equal(viaHttp.status, 200);
    assert.equal(((await viaHttp.json()) as { stdout: string }).stdout, "cli\nsdk\nfiles");

    // MCP over HTTP with the token: runs a command and reads the journal.
    const mcp = new Client({ name: "frontends-test", version: "0.0.0" });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    try {
      const ran = await mcp.callTool({
        name: "sandbox_exec",
        arguments: { sandbox: "shared", command: "ls /workspace" },
      });
      assert.notEqual(ran.isError, true, JSON.stringify(ran));
      assert.match(JSON.stringify(ran.structuredContent), /from-cli.*from-files\.txt.*from-sdk/s);
    } finally {
      await mcp.close();
    }

    // The journal is the same from the CLI, the remote SDK and a local backend on the state dir.
    const fromCli = JSON.parse(remoteCli(["logs", "shared", "--json"]).stdout) as JournalEntry[];
    const fromSdk = await sdk.journal();
    const local = await openLocalBackend({
      config: { stateDir: home, logLevel: "silent" },
      env: { HOME: home },
    });
    try {
      const fromLocal = await local.journal(sandbox.id);
      const argvs = (js: JournalEntry[]) => js.map((j) => `${j.sequence} ${j.status} ${j.argv.join(" ")}`);
      assert.deepEqual(argvs(fromCli), argvs(fromLocal));
      assert.deepEqual(argvs(fromSdk), argvs(fromLocal));
      assert.deepEqual(
        fromLocal.map((j) => j.argv.at(-1)),
        [
          "echo cli > from-cli",
          "cat from-cli && echo sdk > from-sdk",
          "cat from-cli from-sdk from-files.txt",
          "ls /workspace",
        ],
        "every front end's command is journaled, in order",
      );
      assert.equal((await local.getSandbox("shared")).state, "running");
    } finally {
      await local.close();
    }
    await sdk.close();
  });
});
