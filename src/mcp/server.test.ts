import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { ExecResult, JournalEntry, Sandbox } from "../core/types.js";
import { createBuiltinRegistry } from "../drivers/index.js";
import { LocalBackend } from "../sdk/local.js";
import { openWarren, type Warren } from "../service/index.js";
import { createMcpServer, TOOL_NAMES, whenIdle } from "./server.js";

/** A client talking to an MCP server over the backend, in memory. */
async function connect(backend: LocalBackend, allowHost = false) {
  const server = createMcpServer(backend, { allowHost });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const client = new Client({ name: "unit", version: "0.0.0" });
  await client.connect(b);
  return {
    client,
    async close() {
      await client.close();
      await server.close();
      await whenIdle(server);
    },
  };
}

describe("MCP server over the fake driver", () => {
  let warren: Warren;
  let backend: LocalBackend;
  before(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "warren-mcp-unit-"));
    chmodSync(stateDir, 0o711);
    warren = await openWarren({
      config: { stateDir, defaultDriver: "fake", logLevel: "silent" },
      env: { HOME: stateDir },
      registry: createBuiltinRegistry,
    });
    backend = new LocalBackend(warren);
  });
  after(async () => {
    for (const s of warren.sandboxes.list()) await warren.sandboxes.delete(s.id);
    const dir = warren.config.stateDir;
    warren.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("results match the advertised output schemas (the client checks them), errors included", async () => {
    const { client, close } = await connect(backend);
    try {
      assert.deepEqual(
        (await client.listTools()).tools.map((t) => t.name),
        [...TOOL_NAMES],
      );
      const s = (await client.callTool({ name: "sandbox_create", arguments: { name: "u1" } }))
        .structuredContent as unknown as Sandbox;
      assert.equal(s.driver, "fake");
      const r = await client.callTool({
        name: "sandbox_exec",
        arguments: { sandbox: "u1", command: ["sh", "-c", "echo out; echo err >&2; exit 2"] },
      });
      assert.equal(r.isError, undefined, "a non-zero exit is not an error");
      const e = r.structuredContent as unknown as ExecResult;
      assert.deepEqual([e.exitCode, e.stdout, e.stderr], [2, "out\n", "err\n"]);
      assert.match(
        (r.content as { text: string }[])[0].text,
        /^exit code 2 .*\n--- stdout ---\nout\n--- stderr ---\nerr$/,
      );
      const logs = (await client.callTool({ name: "sandbox_logs", arguments: { sandbox: "u1" } }))
        .structuredContent as { entries: JournalEntry[] };
      assert.deepEqual(
        logs.entries.map((x) => [x.sequence, x.exitCode]),
        [[1, 2]],
      );
      for (const name of ["sandbox_status", "sandbox_stop", "sandbox_start", "sandbox_delete"]) {
        const x = await client.callTool({ name, arguments: { sandbox: "u1" } });
        assert.ok(!x.isError, `${name}: ${JSON.stringify(x.content)}`);
      }
      const gone = await client.callTool({ name: "sandbox_start", arguments: { sandbox: "nope" } });
      assert.equal(gone.isError, true);
      assert.equal((gone.structuredContent as { error: { code: string } }).error.code, "NOT_FOUND");
    } finally {
      await close();
    }
  });

  it("refuses the host driver unless the server allows it, also for a host sandbox made elsewhere", async () => {
    const made = await warren.sandboxes.create({ driver: "host", allowHost: true, name: "on-host" });
    const strict = await connect(backend);
    const open = await connect(backend, true);
    try {
      for (const [name, args] of [
        ["sandbox_create", { driver: "host", allowHost: true }],
        ["sandbox_run", { driver: "host", command: "true" }],
        ["sandbox_exec", { sandbox: "on-host", command: "true" }],
        ["sandbox_start", { sandbox: "on-host" }],
        ["file_read", { sandbox: "on-host", path: "x" }],
      ] as const) {
        const r = await strict.client.callTool({ name, arguments: args });
        assert.equal(r.isError, true, name);
        const { error } = r.structuredContent as { error: { code: string; hint: string } };
        assert.equal(error.code, "DRIVER_UNAVAILABLE", name);
        assert.match(error.hint, /--allow-host/);
      }
      const status = await strict.client.callTool({
        name: "sandbox_status",
        arguments: { sandbox: "on-host" },
      });
      assert.ok(!status.isError, "looking at it is fine");
      const r = await open.client.callTool({
        name: "sandbox_exec",
        arguments: { sandbox: made.id, command: ["echo", "ok"] },
      });
      assert.equal((r.structuredContent as unknown as ExecResult).stdout, "ok\n");
    } finally {
      await strict.close();
      await open.close();
      await warren.sandboxes.delete(made.id);
    }
  });
});
