/**
 * `warren mcp` over stdio, driven by the official MCP client: every tool is listed with its
 * schemas, a bwrap sandbox is created, used and deleted through the tools, failures are tool
 * errors with a code and a hint, the host driver stays refused without --allow-host, and every
 * line the server writes on stdout is a JSON-RPC message (its logs go to stderr).
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { ExecResult, FileEntry, JournalEntry, Sandbox } from "../../src/core/types.js";
import { TOOL_NAMES } from "../../src/mcp/server.js";
import { CLI, cli, cliEnv, cliJson } from "../helpers/cli.js";
import { bwrapSkipReason, leakedCgroups } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# mcp integration: skipping bwrap tests: ${skip}`);

/** A client connected to `warren mcp` whose stdout is also copied to `stdoutCopy`. */
async function connect(home: string, args: string[] = []) {
  const stdoutCopy = join(home, `mcp-stdout-${Date.now()}-${Math.random().toString(16).slice(2)}.log`);
  const transport = new StdioClientTransport({
    command: "/bin/sh",
    // tee keeps a copy of exactly what the server wrote on stdout, for the purity check.
    args: [
      "-c",
      'node=$0; cli=$1; shift; "$node" "$cli" mcp "$@" | tee "$TEE"',
      process.execPath,
      CLI,
      ...args,
    ],
    env: { ...(cliEnv(home) as Record<string, string>), WARREN_LOG_LEVEL: "debug", TEE: stdoutCopy },
    stderr: "pipe",
  });
  let stderr = "";
  (transport.stderr as Readable).on("data", (c: Buffer) => (stderr += c.toString()));
  const client = new Client({ name: "warren-test", version: "0.0.0" });
  await client.connect(transport);
  return { client, stdoutCopy, stderr: () => stderr };
}

type CallResult = Awaited<ReturnType<Client["callTool"]>>;

/** Calls a tool and returns its structured content; fails on a tool error. */
async function call<T>(client: Client, name: string, args: Record<string, unknown> = {}): Promise<T> {
  const r = await client.callTool({ name, arguments: args });
  assert.ok(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
  assert.ok(r.structuredContent, `${name} returned no structured content`);
  return r.structuredContent as T;
}

/** Calls a tool that must fail and returns its structured error. */
async function callError(client: Client, name: string, args: Record<string, unknown>) {
  const r: CallResult = await client.callTool({ name, arguments: args });
  assert.equal(r.isError, true, `${name} should have failed: ${JSON.stringify(r.content)}`);
  const error = (r.structuredContent as { error: { code: string; message: string; hint?: string } }).error;
  const text = (r.content as { type: string; text: string }[])[0].text;
  return { error, text };
}

/** Asserts that every line of a server's stdout is a JSON-RPC 2.0 message. */
function assertPureStdout(path: string): number {
  const lines = readFileSync(path, "utf8").split("\n").filter(Boolean);
  assert.ok(lines.length > 0, "the server wrote nothing on stdout");
  for (const line of lines) {
    let msg: { jsonrpc?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      assert.fail(`stdout line is not JSON: ${line.slice(0, 200)}`);
    }
    assert.equal(msg.jsonrpc, "2.0", `stdout line is not JSON-RPC: ${line.slice(0, 200)}`);
  }
  return lines.length;
}

describe("MCP over stdio (official client)", () => {
  let home: string;
  let session: Awaited<ReturnType<typeof connect>>;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), "warren-mcp-"));
    chmodSync(home, 0o711);
    session = await connect(home);
  });
  after(async () => {
    try {
      await session?.client.close();
      for (const s of cliJson<Sandbox[]>(home, ["ls"])) cli(home, ["rm", s.id]);
      const leaks = leakedCgroups(home);
      assert.deepEqual(leaks, []);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("lists all 13 tools, each with a description and input and output schemas", async () => {
    const { tools } = await session.client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), [...TOOL_NAMES].sort());
    for (const t of tools) {
      assert.ok((t.description ?? "").length > 40, `${t.name} needs a real description`);
      assert.equal(t.inputSchema.type, "object", t.name);
      assert.equal(t.outputSchema?.type, "object", t.name);
    }
    const exec = tools.find((t) => t.name === "sandbox_exec")!;
    assert.deepEqual(exec.inputSchema.required, ["sandbox", "command"]);
    assert.ok(!JSON.stringify(tools).includes("allowHost"), "no tool takes the host opt-in");
  });

  it("a failure is a tool error with code, message and hint, in text and structured", async () => {
    const { error, text } = await callError(session.client, "sandbox_exec", {
      sandbox: "no-such-box",
      command: "true",
    });
    assert.equal(error.code, "NOT_FOUND");
    assert.match(error.message, /no-such-box/);
    assert.ok(error.hint, "a hint says how to fix it");
    assert.match(text, /^NOT_FOUND: .*no-such-box/);
    assert.ok(text.includes(`hint: ${error.hint}`));
    const bad = await callError(session.client, "sandbox_create", { name: "not a name!" });
    assert.equal(bad.error.code, "INVALID_ARGUMENT");
  });

  it("refuses the host driver without --allow-host, whatever the arguments say", async () => {
    for (const name of ["sandbox_create", "sandbox_run"]) {
      const { error } = await callError(session.client, name, {
        driver: "host",
        allowHost: true,
        command: ["true"],
      });
      assert.equal(error.code, "DRIVER_UNAVAILABLE", name);
      assert.match(error.hint ?? "", /--allow-host/);
    }
    assert.equal(cliJson<Sandbox[]>(home, ["ls", "--all"]).length, 0);
  });

  it("with --allow-host the host driver works, and a server without it still refuses that sandbox", async () => {
    const opted = await connect(home, ["--allow-host"]);
    try {
      const s = await call<Sandbox>(opted.client, "sandbox_create", { driver: "host", name: "on-host" });
      assert.equal(s.isolation, "none");
      const r = await call<ExecResult>(opted.client, "sandbox_exec", {
        sandbox: "on-host",
        command: "echo hi",
      });
      assert.equal(r.stdout, "hi\n");
      for (const [tool, args] of [
        ["sandbox_exec", { command: "id" }],
        ["file_read", { path: "/etc/hostname" }],
        ["file_list", { path: "/" }],
        ["file_write", { path: "x", content: "x" }],
      ] as const) {
        const { error } = await callError(session.client, tool, { sandbox: "on-host", ...args });
        assert.equal(error.code, "DRIVER_UNAVAILABLE", tool);
      }
      assert.equal(
        (await call<Sandbox>(session.client, "sandbox_delete", { sandbox: "on-host" })).state,
        "deleted",
      );
    } finally {
      await opted.client.close();
    }
    assertPureStdout(opted.stdoutCopy);
  });

  describe("on bwrap", { skip }, () => {
    it("create, exec (shell string and argv), files, logs, stop/start, delete", async () => {
      const { client } = session;
      const s = await call<Sandbox>(client, "sandbox_create", {
        name: "mcp-box",
        labels: { via: "mcp" },
        env: { GREETING: "hello" },
      });
      assert.equal(s.state, "running");
      assert.equal(s.isolation, "namespace");
      console.log(`# mcp sandbox ${s.id}`);

      const sh = await call<ExecResult>(client, "sandbox_exec", {
        sandbox: "mcp-box",
        command: "echo $GREETING $(id -u) | tr a-z A-Z; echo oops >&2; exit 3",
      });
      assert.deepEqual(
        [sh.exitCode, sh.stdout, sh.stderr],
        [3, "HELLO 1000\n", "oops\n"],
        "non-zero exit is a result",
      );
      const argv = await call<ExecResult>(client, "sandbox_exec", {
        sandbox: s.id,
        command: ["sh", "-c", 'echo "$X $(pwd)"; cat'],
        cwd: "/tmp",
        env: { X: "1" },
        stdin: "from stdin",
      });
      assert.deepEqual([argv.exitCode, argv.stdout], [0, "1 /tmp\nfrom stdin"]);
      const slow = await call<ExecResult>(client, "sandbox_exec", {
        sandbox: "mcp-box",
        command: "sleep 30",
        timeoutMs: 300,
      });
      assert.equal(slow.timedOut, true);

      const written = await call<FileEntry>(client, "file_write", {
        sandbox: "mcp-box",
        path: "bin/run.sh",
        content: "#!/bin/sh\necho ran\n",
        mode: "755",
      });
      assert.deepEqual([written.path, written.type, written.mode], ["/workspace/bin/run.sh", "file", 0o755]);
      assert.equal(
        (await call<ExecResult>(client, "sandbox_exec", { sandbox: "mcp-box", command: "bin/run.sh" }))
          .stdout,
        "ran\n",
      );
      const bytes = Buffer.from([0, 1, 2, 255, 254]);
      await call(client, "file_write", {
        sandbox: "mcp-box",
        path: "/workspace/blob",
        content: bytes.toString("base64"),
        encoding: "base64",
      });
      const blob = await call<{ encoding: string; content: string; sizeBytes: number }>(client, "file_read", {
        sandbox: "mcp-box",
        path: "blob",
      });
      assert.deepEqual(
        [blob.encoding, blob.content, blob.sizeBytes],
        ["base64", bytes.toString("base64"), 5],
      );
      const text = await client.callTool({
        name: "file_read",
        arguments: { sandbox: "mcp-box", path: "bin/run.sh" },
      });
      assert.deepEqual(text.structuredContent, {
        path: "bin/run.sh",
        encoding: "utf8",
        content: "#!/bin/sh\necho ran\n",
        sizeBytes: 19,
        truncated: false,
      });
      assert.equal((text.content as { text: string }[])[0].text, "#!/bin/sh\necho ran\n");
      const cut = await call<{ content: string; truncated: boolean }>(client, "file_read", {
        sandbox: "mcp-box",
        path: "bin/run.sh",
        maxBytes: 4,
      });
      assert.deepEqual([cut.content, cut.truncated], ["#!/b", true]);
      const { entries: files } = await call<{ entries: FileEntry[] }>(client, "file_list", {
        sandbox: "mcp-box",
        depth: 2,
      });
      assert.deepEqual(
        files.map((f) => [f.path, f.type]),
        [
          ["/workspace/bin", "directory"],
          ["/workspace/bin/run.sh", "file"],
          ["/workspace/blob", "file"],
        ],
      );
      const missing = await callError(client, "file_read", { sandbox: "mcp-box", path: "nope.txt" });
      assert.equal(missing.error.code, "NOT_FOUND");

      const logs = await call<{ entries: JournalEntry[]; driverLog?: string }>(client, "sandbox_logs", {
        sandbox: "mcp-box",
        driverLog: true,
      });
      assert.ok(logs.entries.length >= 4, "the journal lists every command");
      const first = logs.entries.find((e) => e.argv[2]?.startsWith("echo $GREETING"))!;
      assert.deepEqual([first.status, first.exitCode, first.stdout], ["completed", 3, "HELLO 1000\n"]);
      assert.ok(logs.entries.some((e) => e.status === "timed_out"));
      assert.equal(typeof logs.driverLog, "string");
      const quiet = await call<{ entries: JournalEntry[] }>(client, "sandbox_logs", {
        sandbox: "mcp-box",
        includeOutput: false,
        limit: 1,
      });
      assert.deepEqual([quiet.entries.length, quiet.entries[0].stdout], [1, ""]);

      const listed = await call<{ sandboxes: Sandbox[] }>(client, "sandbox_list", { labels: { via: "mcp" } });
      assert.deepEqual(
        listed.sandboxes.map((x) => x.name),
        ["mcp-box"],
      );
      assert.equal((await call<Sandbox>(client, "sandbox_status", { sandbox: "mcp-box" })).state, "running");
      assert.equal((await call<Sandbox>(client, "sandbox_stop", { sandbox: "mcp-box" })).state, "stopped");
      const stopped = await callError(client, "sandbox_exec", { sandbox: "mcp-box", command: "true" });
      assert.equal(stopped.error.code, "INVALID_STATE");
      assert.ok(stopped.error.hint);
      assert.equal((await call<Sandbox>(client, "sandbox_start", { sandbox: "mcp-box" })).state, "running");
      const kept = await call<ExecResult>(client, "sandbox_exec", {
        sandbox: "mcp-box",
        command: "cat bin/run.sh",
      });
      assert.equal(kept.stdout, "#!/bin/sh\necho ran\n", "the workspace survives stop/start");
      assert.equal((await call<Sandbox>(client, "sandbox_delete", { sandbox: "mcp-box" })).state, "deleted");
      assert.equal((await call<Sandbox>(client, "sandbox_delete", { sandbox: s.id })).state, "deleted");
      assert.deepEqual((await call<{ sandboxes: Sandbox[] }>(client, "sandbox_list")).sandboxes, []);
    });

    it("sandbox_run creates, runs and deletes in one call", async () => {
      const r = await call<ExecResult>(session.client, "sandbox_run", {
        command: "echo $(hostname); exit 4",
        labels: { via: "run" },
      });
      assert.equal(r.exitCode, 4);
      assert.match(r.stdout, /^sbx-[0-9a-f]{12}\n$/);
      assert.equal(r.isolation, "namespace");
      assert.equal(
        cliJson<Sandbox[]>(home, ["ls", "--label", "via=run"]).length,
        0,
        "run deletes its sandbox",
      );
    });

    it("lists environments", async () => {
      const { environments } = await call<{ environments: { name: string; installed: boolean }[] }>(
        session.client,
        "environment_list",
      );
      assert.ok(environments.some((e) => e.name === "host" && e.installed));
    });
  });

  it("writes nothing but JSON-RPC on stdout; its logs go to stderr", async () => {
    const n = assertPureStdout(session.stdoutCopy);
    assert.ok(n >= 5, `only ${n} messages`);
    if (!skip) assert.match(session.stderr(), /"msg":"sandbox creating"/, "debug logs reach stderr");
  });
});
