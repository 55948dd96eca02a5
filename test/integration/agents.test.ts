/**
 * Agent packages and runs through every front end, on bwrap: `warren agent add | ls | rm` and
 * typed manifest errors that change nothing on disk; the example package run from the CLI, over
 * HTTP (blocking and streamed), from the SDK (local and remote) and through MCP's `agent_run`
 * with the official client; each run's result directory holds its workspace, and run records
 * persist across restarts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { agents } from "../../src/sdk/agents.js";
import { openLocalBackend } from "../../src/sdk/local.js";
import type { AgentInfo, AgentRun } from "../../src/service/index.js";
import { readTar, writeTar } from "../../src/service/agents-tar.js";
import { CLI, cli, cliEnv, cliJson } from "../helpers/cli.js";
import { bwrapSkipReason, leakedCgroups } from "../helpers/warren.js";
import { readNdjson, startTestServer, type TestServer } from "./server-support.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# agents integration: skipping runs: ${skip}`);

/** The example package of the repository. */
const EXAMPLE = fileURLToPath(new URL("../../../examples/hello-agent", import.meta.url));

/** Every path under a directory (relative), sorted: a snapshot of what is on disk. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** A fresh state dir that sandboxed processes can pass through. */
function home(): string {
  const dir = mkdtempSync(join(tmpdir(), "warren-agents-"));
  chmodSync(dir, 0o711);
  return dir;
}

/** Asserts that a run of the example succeeded and that its result directory holds the workspace. */
function assertHelloRun(r: AgentRun, name: string): void {
  assert.equal(r.status, "succeeded", JSON.stringify(r));
  assert.equal(r.exitCode, 0);
  assert.equal(r.error, null);
  assert.equal(r.stdout, `Hello, ${name}!\n`);
  assert.match(r.stderr, /wrote out\/greeting\.txt/);
  assert.match(r.id, /^run-[0-9a-f]{12}$/);
  assert.ok(r.finishedAt && r.durationMs !== null && r.timings.execMs !== null);
  assert.ok(r.resultDir, "a result directory");
  assert.equal(readFileSync(join(r.resultDir, "out/greeting.txt"), "utf8"), `Hello, ${name}!\n`);
  const report = readFileSync(join(r.resultDir, "out/report.txt"), "utf8");
  assert.match(report, new RegExp(`run: ${r.id}\\n`));
  assert.match(report, /user: 1000\n/, "ran as the sandbox user");
  assert.ok(existsSync(join(r.resultDir, "hello.sh")), "the package was unpacked into /workspace");
}

describe("agent packages (CLI)", () => {
  let dir: string;
  before(() => (dir = home()));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("add, ls, show, rm; adding the same content again changes nothing; a new version replaces the old", () => {
    const added = cliJson<AgentInfo>(dir, ["agent", "add", EXAMPLE]);
    assert.equal(added.__status, 0);
    assert.equal(added.name, "hello-agent");
    assert.match(added.version, /^[0-9a-f]{16}$/);
    assert.deepEqual(added.manifest.entrypoint, ["sh", "hello.sh"]);
    assert.ok(existsSync(join(added.path, "hello.sh")));
    const again = cliJson<AgentInfo>(dir, ["agent", "add", EXAMPLE]);
    assert.deepEqual({ ...again, __status: 0 }, { ...added, __status: 0 }, "same content, same record");
    assert.deepEqual(
      cliJson<AgentInfo[]>(dir, ["agent", "ls"]).map((a) => [a.name, a.version]),
      [["hello-agent", added.version]],
    );
    assert.match(cli(dir, ["agent", "ls"]).stdout, /^NAME\s+VERSION[\s\S]*hello-agent/);
    assert.match(cli(dir, ["agent", "show", "hello-agent"]).stdout, /entrypoint\s+\["sh","hello.sh"\]/);

    const copy = join(dir, "copy");
    cpSync(EXAMPLE, copy, { recursive: true });
    writeFileSync(join(copy, "extra.txt"), "v2");
    const v2 = cliJson<AgentInfo>(dir, ["agent", "add", copy]);
    assert.notEqual(v2.version, added.version);
    assert.deepEqual(
      tree(join(dir, "agents", "hello-agent")).filter((p) => !p.includes("/")),
      [v2.version],
    );

    assert.equal(cliJson<AgentInfo>(dir, ["agent", "rm", "hello-agent"]).version, v2.version);
    assert.deepEqual(cliJson<AgentInfo[]>(dir, ["agent", "ls"]), Object.assign([], { __status: 0 }));
    assert.ok(!existsSync(join(dir, "agents", "hello-agent")));
    const gone = cli(dir, ["agent", "rm", "hello-agent"]);
    assert.equal(gone.status, 3, "NOT_FOUND");
    assert.match(gone.stderr, /no agent "hello-agent"[\s\S]*hint: list agents/);
  });

  it("manifest errors are typed, carry a hint, and change nothing on disk", () => {
    cliJson(dir, ["agent", "add", EXAMPLE]);
    const before = { agents: tree(join(dir, "agents")), list: cliJson<AgentInfo[]>(dir, ["agent", "ls"]) };
    const bad = (manifest: string | null, extra: Record<string, string> = {}) => {
      const d = mkdtempSync(join(dir, "bad-"));
      if (manifest !== null) writeFileSync(join(d, "warren-agent.json"), manifest);
      for (const [k, v] of Object.entries(extra)) writeFileSync(join(d, k), v);
      return d;
    };
    const cases: Array<[string, number, string, RegExp]> = [
      [join(dir, "missing"), 3, "NOT_FOUND", /no directory/],
      [bad(null, { "run.sh": "x" }), 3, "NOT_FOUND", /no warren-agent\.json/],
      [bad("{oops"), 2, "INVALID_ARGUMENT", /not valid JSON/],
      [bad(JSON.stringify({ name: "hello-agent" })), 2, "INVALID_ARGUMENT", /entrypoint/],
      [bad(JSON.stringify({ name: "x", entrypoint: "true", memory: 5 })), 2, "INVALID_ARGUMENT", /memory/],
    ];
    for (const [path, status, code, message] of cases) {
      const r = cliJson<{ error: { code: string; message: string; hint?: string } }>(dir, [
        "agent",
        "add",
        path,
      ]);
      assert.equal(r.__status, status, JSON.stringify(r));
      assert.equal(r.error.code, code);
      assert.match(r.error.message, message);
      assert.ok(r.error.hint, `a hint for ${r.error.message}`);
    }
    assert.deepEqual(tree(join(dir, "agents")), before.agents, "nothing written");
    assert.deepEqual(cliJson<AgentInfo[]>(dir, ["agent", "ls"]), before.list);
  });
});

describe("agent runs (bwrap)", { skip }, () => {
  let s: TestServer;
  let dir: string;
  before(async () => {
    s = await startTestServer();
    dir = s.t.stateDir;
    await s.local.addAgent({ dir: EXAMPLE });
  });
  after(async () => {
    await s?.dispose();
  });

  it("the CLI runs it: output streams, --json prints the record, --out unpacks the workspace", () => {
    const inputFile = join(dir, "input.txt");
    writeFileSync(inputFile, "CLI");
    const r = cliJson<AgentRun>(dir, ["agent", "run", "hello-agent", "--input", inputFile]);
    assert.equal(r.__status, 0);
    assertHelloRun(r, "CLI");
    const out = join(dir, "saved");
    const streamed = spawnSync(
      process.execPath,
      [CLI, "agent", "run", "hello-agent", "--input", "-", "--out", out],
      {
        env: cliEnv(dir),
        input: "stdin",
        encoding: "utf8",
      },
    );
    assert.equal(streamed.status, 0, streamed.stderr);
    assert.equal(streamed.stdout, "Hello, stdin!\n");
    assert.match(
      streamed.stderr,
      /wrote out\/greeting.txt[\s\S]*run run-[0-9a-f]{12} succeeded .*; workspace in /,
    );
    assert.equal(readFileSync(join(out, "out/greeting.txt"), "utf8"), "Hello, stdin!\n");
    const runs = cliJson<AgentRun[]>(dir, ["agent", "runs", "hello-agent"]);
    assert.ok(runs.length >= 2);
    assert.equal(runs.find((x) => x.id === r.id)?.status, "succeeded");
    assert.match(
      cli(dir, ["agent", "runs", "hello-agent", r.id]).stdout,
      /status\s+succeeded[\s\S]*result\s+\//,
    );
    assert.equal(cli(dir, ["agent", "run", "nope"]).status, 3);
  });

  it("HTTP: POST /v1/agents/{name}/runs blocking and streamed, GET runs, one run, its result tar", async () => {
    const post = await s.api("/v1/agents/hello-agent/runs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: "HTTP" }),
    });
    assert.equal(post.status, 200);
    const run = (await post.json()) as AgentRun;
    assertHelloRun(run, "HTTP");

    const started = Date.now();
    const streamed = await s.api("/v1/agents/hello-agent/runs?stream=1", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: Buffer.from("b64").toString("base64"), inputEncoding: "base64" }),
    });
    assert.match(streamed.headers.get("content-type") ?? "", /application\/x-ndjson/);
    const lines = (await readNdjson(streamed, started)).map((l) => l.event);
    const last = lines.pop()!;
    assert.equal(last.type, "end");
    assertHelloRun(last.run as AgentRun, "b64");
    assert.ok(
      lines.some((e) => e.type === "stdout" && e.data === "Hello, b64!\n"),
      JSON.stringify(lines),
    );

    const list = (await (await s.api("/v1/agents/hello-agent/runs?limit=2")).json()) as AgentRun[];
    assert.deepEqual(
      list.map((r) => r.id),
      [(last.run as AgentRun).id, run.id],
      "newest first",
    );
    const one = await s.api(`/v1/agents/hello-agent/runs/${run.id}`);
    assert.deepEqual(await one.json(), run);
    const result = await s.api(`/v1/agents/hello-agent/runs/${run.id}/result`);
    assert.equal(result.headers.get("content-type"), "application/x-tar");
    const files = readTar(Buffer.from(await result.arrayBuffer()));
    assert.equal(files.find((f) => f.path === "out/greeting.txt")?.data.toString(), "Hello, HTTP!\n");

    const missing = await s.api("/v1/agents/hello-agent/runs/run-000000000000");
    assert.equal(missing.status, 404);
    const noAgent = await s.api("/v1/agents/nope/runs", {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    assert.equal(noAgent.status, 404);
  });

  it("HTTP: adding a package uploads a tar; a bad one is a 400 that changes nothing", async () => {
    const before = tree(join(dir, "agents"));
    const bad = writeTar([
      { path: "warren-agent.json", type: "file", mode: 0o644, data: Buffer.from('{"name":"x"}') },
    ]);
    const res = await s.api("/v1/agents", {
      method: "POST",
      headers: { "content-type": "application/x-tar" },
      body: bad,
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string; hint: string } };
    assert.equal(body.error.code, "INVALID_ARGUMENT");
    assert.match(body.error.message, /entrypoint/);
    assert.ok(body.error.hint);
    assert.deepEqual(tree(join(dir, "agents")), before);
    const info = await s.remote.addAgent({ dir: EXAMPLE });
    assert.equal(info.version, (await s.local.getAgent("hello-agent")).version, "same content, same version");
    assert.deepEqual(tree(join(dir, "agents")), before);
  });

  it("SDK: agents.run returns the run record, locally and through a server", async () => {
    for (const backend of [s.local, { url: s.url, apiKey: s.token }]) {
      const chunks: string[] = [];
      const run = await agents.run("hello-agent", { input: "SDK", backend, onStdout: (d) => chunks.push(d) });
      assertHelloRun(run, "SDK");
      assert.equal(chunks.join(""), "Hello, SDK!\n");
      assert.deepEqual(await agents.getRun("hello-agent", run.id, { backend }), run);
      const tar = await agents.result("hello-agent", run.id, { backend });
      assert.ok(readTar(tar).some((e) => e.path === "out/report.txt"));
      assert.equal((await agents.list({ backend }))[0].name, "hello-agent");
    }
  });

  it("MCP: agent_run through the official client", async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, "mcp"],
      env: cliEnv(dir) as Record<string, string>,
      stderr: "pipe",
    });
    const client = new Client({ name: "warren-agents-test", version: "0.0.0" });
    await client.connect(transport);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes("agent_run") && names.includes("agent_list"));
      const r = await client.callTool({
        name: "agent_run",
        arguments: { agent: "hello-agent", input: "MCP" },
      });
      assert.ok(!r.isError, JSON.stringify(r.content));
      assertHelloRun(r.structuredContent as unknown as AgentRun, "MCP");
      assert.match((r.content as Array<{ text: string }>)[0].text, /succeeded \(exit code 0\)/);
      const missing = await client.callTool({ name: "agent_run", arguments: { agent: "nope" } });
      assert.equal(missing.isError, true);
      assert.equal((missing.structuredContent as { error: { code: string } }).error.code, "NOT_FOUND");
    } finally {
      await client.close();
    }
  });

  it("run records persist: another process lists the same runs; no sandbox is left", async () => {
    const here = await s.local.listRuns("hello-agent");
    assert.ok(here.length >= 7, `${here.length} runs`);
    assert.ok(here.every((r) => r.status === "succeeded"));
    const other = await openLocalBackend({
      config: { stateDir: dir, logLevel: "silent" },
      env: { HOME: dir },
    });
    try {
      assert.deepEqual(await other.listRuns("hello-agent"), here);
      assert.deepEqual(await other.listSandboxes(), [], "every run released its sandbox");
    } finally {
      await other.close();
    }
    assert.deepEqual(leakedCgroups(dir), []);
  });
});
