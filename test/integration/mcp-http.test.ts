/**
 * The MCP endpoint over streamable HTTP, driven by the official client: in-process in the API
 * server (`buildServer` with the MCP routes as a plugin), and through a real `warren serve`. The
 * bearer token is required, tools work, failures are tool errors, output streams as progress
 * notifications, and GET/DELETE are refused since the endpoint is stateless.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { ExecResult, FileEntry, Sandbox } from "../../src/core/types.js";
import { registerMcpRoutes } from "../../src/mcp/http.js";
import { TOOL_NAMES } from "../../src/mcp/server.js";
import { LocalBackend } from "../../src/sdk/local.js";
import { buildServer, type WarrenServer } from "../../src/server/app.js";
import { cliJson, cliSpawn } from "../helpers/cli.js";
import { bwrapSkipReason, testWarren, type TestWarren } from "../helpers/warren.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# mcp http: skipping bwrap tests: ${skip}`);

const TOKEN = "mcp-test-token-0123456789abcdef";

describe("MCP over streamable HTTP, behind the API server's token", () => {
  let t: TestWarren;
  let server: WarrenServer;
  let url: string;
  let client: Client;

  const connect = async (): Promise<Client> => {
    const c = new Client({ name: "warren-http-test", version: "0.0.0" });
    await c.connect(
      new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
      }),
    );
    return c;
  };
  const call = async <T>(name: string, args: Record<string, unknown> = {}): Promise<T> => {
    const r = await client.callTool({ name, arguments: args });
    assert.ok(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
    return r.structuredContent as T;
  };

  before(async () => {
    t = await testWarren();
    const backend = new LocalBackend(t.warren);
    server = await buildServer({
      backend,
      token: TOKEN,
      port: 0,
      plugins: [(app, { backend: b }) => registerMcpRoutes(app, b)],
    });
    url = await server.listen();
    client = await connect();
  });
  after(async () => {
    try {
      await client?.close();
      await server?.close();
    } finally {
      await t?.dispose();
    }
  });

  it("refuses a request without the bearer token (401), or with a wrong one", async () => {
    const init = { jsonrpc: "2.0", id: 1, method: "tools/list" };
    for (const authorization of [undefined, "Bearer wrong-token-0123456789"]) {
      const res = await fetch(`${url}/mcp`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...(authorization ? { authorization } : {}),
        },
        body: JSON.stringify(init),
      });
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "UNAUTHORIZED");
    }
    const noToken = new Client({ name: "anonymous", version: "0.0.0" });
    await assert.rejects(noToken.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`))));
  });

  it("is stateless: GET and DELETE answer 405", async () => {
    for (const method of ["GET", "DELETE"]) {
      const res = await fetch(`${url}/mcp`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream" },
      });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get("allow"), "POST");
    }
  });

  it("lists every tool and runs one on the fake driver", async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((x) => x.name).sort(), [...TOOL_NAMES].sort());
    const r = await call<ExecResult>("sandbox_run", { driver: "fake", command: ["echo", "over", "http"] });
    assert.deepEqual([r.exitCode, r.stdout], [0, "over http\n"]);
    assert.equal(t.warren.sandboxes.list().length, 0, "run deletes its sandbox");
  });

  it("returns failures as tool errors with code and hint; the host driver stays refused", async () => {
    const missing = await client.callTool({ name: "sandbox_status", arguments: { sandbox: "ghost" } });
    assert.equal(missing.isError, true);
    const { error } = missing.structuredContent as { error: { code: string; hint?: string } };
    assert.equal(error.code, "NOT_FOUND");
    assert.ok(error.hint);
    const host = await client.callTool({
      name: "sandbox_run",
      arguments: { driver: "host", allowHost: true, command: ["true"] },
    });
    assert.equal(host.isError, true);
    assert.equal((host.structuredContent as { error: { code: string } }).error.code, "DRIVER_UNAVAILABLE");
  });

  it("serves several clients at once", async () => {
    const others = await Promise.all([connect(), connect()]);
    try {
      const lists = await Promise.all(others.map((c) => c.listTools()));
      for (const l of lists) assert.equal(l.tools.length, TOOL_NAMES.length);
    } finally {
      await Promise.all(others.map((c) => c.close()));
    }
  });

  describe("on bwrap", { skip }, () => {
    it("create, exec with output streamed as progress, files, delete", async () => {
      const s = await call<Sandbox>("sandbox_create", { name: "http-box" });
      console.log(`# mcp http sandbox ${s.id}`);
      const progress: string[] = [];
      const r = await client.callTool(
        {
          name: "sandbox_exec",
          arguments: { sandbox: "http-box", command: "echo one; sleep 0.3; echo two" },
        },
        undefined,
        { onprogress: (p) => progress.push(p.message ?? "") },
      );
      assert.ok(!r.isError);
      assert.equal((r.structuredContent as unknown as ExecResult).stdout, "one\ntwo\n");
      assert.ok(
        progress.join("").includes("one"),
        `progress carried the output: ${JSON.stringify(progress)}`,
      );
      const f = await call<FileEntry>("file_write", { sandbox: "http-box", path: "a.txt", content: "é\n" });
      assert.equal(f.sizeBytes, 3);
      const read = await call<{ content: string; encoding: string }>("file_read", {
        sandbox: "http-box",
        path: "/workspace/a.txt",
      });
      assert.deepEqual([read.content, read.encoding], ["é\n", "utf8"]);
      assert.equal((await call<Sandbox>("sandbox_delete", { sandbox: "http-box" })).state, "deleted");
    });
  });
});

describe("MCP through `warren serve`", () => {
  let home: string;
  let serve: ChildProcess;
  let url: string;
  let token: string;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), "warren-mcp-serve-"));
    chmodSync(home, 0o711);
    serve = cliSpawn(home, ["serve", "--port", "0"]);
    url = await new Promise<string>((resolve, reject) => {
      let out = "";
      serve.stdout!.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      serve.once("exit", (code) => reject(new Error(`warren serve exited (${code}): ${out}`)));
    });
    token = readFileSync(join(home, "server-token"), "utf8").trim();
  });
  after(async () => {
    try {
      if (serve.exitCode === null) {
        const exited = new Promise((resolve) => serve.once("exit", resolve));
        serve.kill("SIGTERM");
        assert.equal(await exited, 0);
      }
      assert.equal(cliJson<Sandbox[]>(home, ["ls"]).length, 0);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("needs the token (401 without) and serves the tools with it", async () => {
    const res = await fetch(`${url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    assert.equal(res.status, 401);
    const client = new Client({ name: "warren-serve-test", version: "0.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    try {
      assert.equal((await client.listTools()).tools.length, TOOL_NAMES.length);
      const r = await client.callTool({
        name: "sandbox_run",
        arguments: { driver: skip ? "fake" : "bwrap", command: ["echo", "served"] },
      });
      assert.ok(!r.isError, JSON.stringify(r.content));
      assert.equal((r.structuredContent as unknown as ExecResult).stdout, "served\n");
      const host = await client.callTool({ name: "sandbox_create", arguments: { driver: "host" } });
      assert.equal((host.structuredContent as { error: { code: string } }).error.code, "DRIVER_UNAVAILABLE");
    } finally {
      await client.close();
    }
  });
});
