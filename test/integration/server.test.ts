/**
 * The HTTP API's guard rails over real HTTP, on the fake driver (no bwrap needed): the bearer
 * token on every route, the open /healthz, the Host-header check, the error map and its body, the
 * remote backend rebuilding the same error classes, and the OpenAPI document.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AlreadyExistsError,
  DriverUnavailableError,
  InvalidArgumentError,
  InvalidStateError,
  NotFoundError,
  NotSupportedError,
  UnauthorizedError,
  type WarrenError,
} from "../../src/core/errors.js";
import { RemoteBackend } from "../../src/sdk/remote.js";
import type { Sandbox } from "../../src/core/types.js";
import { fillPath, rawRequest, readNdjson, startTestServer, type TestServer } from "./server-support.js";

const json = { "content-type": "application/json" };

describe("HTTP API: auth, Host check, errors, OpenAPI", () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ defaultDriver: "fake", maxActiveSandboxes: 3 });
  });
  after(async () => {
    await s?.dispose();
  });

  it("/healthz answers without a token", async () => {
    const res = await fetch(`${s.url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok", version: "0.1.0" });
  });

  it("every other route refuses a missing, wrong or non-bearer token with 401, and does nothing", async () => {
    const routes = s.server.api.routes.filter((r) => !r.public);
    assert.ok(routes.length >= 30, `only ${routes.length} routes`);
    const families = new Set(routes.map((r) => r.tag));
    for (const f of ["sandboxes", "exec", "journal", "files", "processes", "environments", "drivers"])
      assert.ok(families.has(f), `no ${f} routes`);
    const wrongSameLength = "x".repeat(s.token.length);
    for (const route of routes) {
      for (const authorization of [
        undefined,
        "Bearer nope",
        `Bearer ${wrongSameLength}`,
        `Basic ${s.token}`,
      ]) {
        const res = await fetch(s.url + fillPath(route.path), {
          method: route.method,
          headers: { ...json, ...(authorization ? { authorization } : {}) },
          body: route.method === "GET" ? undefined : JSON.stringify({ argv: ["true"], name: "x" }),
        });
        const what = `${route.method} ${route.path} with ${authorization ?? "no token"}`;
        assert.equal(res.status, 401, what);
        assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/, what);
        const body = (await res.json()) as { error: { code: string; hint?: string } };
        assert.equal(body.error.code, "UNAUTHORIZED", what);
        assert.ok(body.error.hint, what);
      }
    }
    // An unknown route is no way around it either.
    assert.equal((await fetch(`${s.url}/v1/nothing-here`)).status, 401);
    assert.deepEqual(
      await s.local.listSandboxes({ all: true }),
      [],
      "an unauthorised request made something",
    );
    // The right token, in any case of the scheme, passes.
    const ok = await fetch(`${s.url}/v1/sandboxes`, { headers: { authorization: `bearer ${s.token}` } });
    assert.equal(ok.status, 200);
  });

  it("refuses a Host header that is not a loopback name with our port (DNS rebinding), even for /healthz", async () => {
    const port = new URL(s.url).port;
    for (const host of [
      `evil.example:${port}`,
      `localhost:${Number(port) + 1}`,
      "localhost",
      `127.0.0.2:${port}`,
    ]) {
      const res = await rawRequest(s.url, { path: "/healthz", headers: { host } });
      assert.equal(res.status, 403, `Host ${host}`);
      const body = JSON.parse(res.body) as { error: { code: string; details: { reason: string } } };
      assert.equal(body.error.code, "INVALID_ARGUMENT");
      assert.equal(body.error.details.reason, "host-not-allowed");
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      const res = await rawRequest(s.url, {
        path: "/v1/sandboxes",
        headers: { host, authorization: `Bearer ${s.token}` },
      });
      assert.equal(res.status, 200, `Host ${host}: ${res.body}`);
    }
  });

  it("maps each error code to its status with the error body; bad input creates nothing", async () => {
    const expectError = async (res: Response, status: number, code: string) => {
      const text = await res.text();
      assert.equal(res.status, status, text);
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
      const body = JSON.parse(text) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(body), ["error"]);
      assert.equal(body.error.code, code);
      assert.equal(typeof body.error.message, "string");
      for (const k of Object.keys(body.error))
        assert.ok(["code", "message", "hint", "details"].includes(k), k);
      return body.error;
    };
    const notFound = await expectError(await s.api("/v1/sandboxes/no-such-box"), 404, "NOT_FOUND");
    assert.equal(notFound.message, 'no sandbox "no-such-box"');
    assert.ok(notFound.hint);
    assert.deepEqual(notFound.details, { sandbox: "no-such-box" });
    await expectError(await s.api("/v1/no-such-route"), 404, "NOT_FOUND");

    const post = (path: string, body: string) => s.api(path, { method: "POST", headers: json, body });
    const bad = await expectError(await post("/v1/sandboxes", '{"memoryMiB":1}'), 400, "INVALID_ARGUMENT");
    assert.match(String(bad.message), /memoryMiB/);
    await expectError(await post("/v1/sandboxes", '{"memory":512}'), 400, "INVALID_ARGUMENT");
    await expectError(await post("/v1/sandboxes", '{"name":"has space"}'), 400, "INVALID_ARGUMENT");
    await expectError(await post("/v1/sandboxes", "{not json"), 400, "INVALID_ARGUMENT");
    await expectError(await post("/v1/sandboxes", "[1]"), 400, "INVALID_ARGUMENT");
    await expectError(await s.api("/v1/sandboxes?all=maybe"), 400, "INVALID_ARGUMENT");
    assert.deepEqual(await s.local.listSandboxes({ all: true }), [], "bad input created a sandbox");

    const created = await post("/v1/sandboxes", '{"name":"box"}');
    assert.equal(created.status, 201);
    await expectError(await post("/v1/sandboxes", '{"name":"box"}'), 409, "ALREADY_EXISTS");
    await expectError(await post("/v1/sandboxes/box/exec", '{"argv":[]}'), 400, "INVALID_ARGUMENT");
    await expectError(
      await post("/v1/sandboxes/box/exec", '{"argv":["true"],"timeoutMs":-1}'),
      400,
      "INVALID_ARGUMENT",
    );
    assert.deepEqual(await s.local.journal("box"), [], "a refused exec reached the journal");
    await expectError(await s.api("/v1/sandboxes/box/files/stat?path=/workspace"), 501, "NOT_SUPPORTED");
    await expectError(await post("/v1/sandboxes", '{"driver":"host"}'), 503, "DRIVER_UNAVAILABLE");
    await post("/v1/sandboxes", '{"name":"two"}');
    await post("/v1/sandboxes", '{"name":"three"}');
    await expectError(await post("/v1/sandboxes", "{}"), 429, "LIMIT_EXCEEDED");
    await post("/v1/sandboxes/box/stop", "");
    await expectError(await post("/v1/sandboxes/box/exec", '{"argv":["true"]}'), 409, "INVALID_STATE");
    // A streamed exec that fails before any output is a plain HTTP error, not a stream.
    const streamed = await s.api("/v1/sandboxes/box/exec", {
      method: "POST",
      headers: { ...json, accept: "application/x-ndjson" },
      body: '{"argv":["true"]}',
    });
    await expectError(streamed, 409, "INVALID_STATE");
    const big = await s.api("/v1/sandboxes/box/processes/p1/stdin", {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: Buffer.alloc(17 << 20),
    });
    await expectError(big, 413, "LIMIT_EXCEEDED");
    for (const name of ["box", "two", "three"]) await s.local.deleteSandbox(name);
  });

  it("the remote backend throws the same error classes, fields and all, as the local one", async () => {
    await s.local.createSandbox({ name: "stopped-one" });
    await s.local.stopSandbox("stopped-one");
    const cases: Array<
      [string, (b: typeof s.local | RemoteBackend) => Promise<unknown>, new (...a: never[]) => WarrenError]
    > = [
      ["not found", (b) => b.getSandbox("missing"), NotFoundError],
      ["invalid", (b) => b.createSandbox({ name: "bad name" }), InvalidArgumentError],
      ["exists", (b) => b.createSandbox({ name: "stopped-one" }), AlreadyExistsError],
      ["state", (b) => b.exec("stopped-one", { argv: ["true"] }), InvalidStateError],
      ["host", (b) => b.createSandbox({ driver: "host" }), DriverUnavailableError],
      [
        "no shell",
        (b) => b.startSandbox("stopped-one").then(() => b.listFiles("stopped-one", "/")),
        NotSupportedError,
      ],
      ["environment", (b) => b.inspectEnvironment("no-such-env"), NotFoundError],
    ];
    for (const [what, call, cls] of cases) {
      const errors: WarrenError[] = [];
      for (const b of [s.local, s.remote]) {
        await assert.rejects(call(b), (e: WarrenError) => (errors.push(e), true), what);
      }
      const [local, remote] = errors;
      assert.ok(local instanceof cls, `${what}: local threw ${local.name}`);
      assert.ok(remote instanceof cls, `${what}: remote threw ${remote.name}`);
      assert.equal(remote.name, local.name, what);
      const wire = (e: WarrenError) => JSON.parse(JSON.stringify(e.toJSON()));
      assert.deepEqual(wire(remote), wire(local), what);
    }
    await s.local.deleteSandbox("stopped-one");
  });

  it("the remote backend says what is wrong with the server or the key", async () => {
    const down = new RemoteBackend({ url: "http://127.0.0.1:9", apiKey: "k".repeat(20) });
    await assert.rejects(down.listSandboxes(), (e: WarrenError) => {
      assert.ok(e instanceof DriverUnavailableError);
      assert.match(e.hint ?? "", /warren serve.*running at http:\/\/127\.0\.0\.1:9/);
      return true;
    });
    const wrongKey = new RemoteBackend({ url: s.url, apiKey: "w".repeat(30) });
    await assert.rejects(wrongKey.listSandboxes(), (e: WarrenError) => {
      assert.ok(e instanceof UnauthorizedError);
      assert.match(e.hint ?? "", /WARREN_API_KEY/);
      return true;
    });
    assert.throws(() => new RemoteBackend({ url: "not a url" }), InvalidArgumentError);
  });

  it("serves an OpenAPI 3.1 document generated from the route schemas", async () => {
    const res = await s.api("/v1/openapi.json");
    assert.equal(res.status, 200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            security?: unknown[];
            responses: Record<string, unknown>;
            parameters: Array<{ name: string; in: string }>;
            requestBody?: { content: Record<string, unknown> };
          }
        >
      >;
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
    };
    assert.equal(doc.openapi, "3.1.0");
    assert.ok(doc.components.securitySchemes.bearer);
    for (const r of s.server.api.routes) {
      const op = doc.paths[r.path]?.[r.method.toLowerCase()];
      assert.ok(op, `${r.method} ${r.path} missing`);
      for (const name of [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))
        assert.ok(
          op.parameters.some((p) => p.name === name && p.in === "path"),
          `${r.path}: no ${name}`,
        );
      if (!r.public) assert.ok(op.responses["401"], `${r.path}: 401 not documented`);
    }
    assert.deepEqual(doc.paths["/healthz"].get.security, []);
    const create = doc.paths["/v1/sandboxes"].post.requestBody?.content["application/json"] as {
      schema: { $ref: string };
    };
    assert.equal(create.schema.$ref, "#/components/schemas/CreateOptions");
    const exec = doc.paths["/v1/sandboxes/{ref}/exec"].post.responses["200"] as {
      content: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(exec.content).sort(), ["application/json", "application/x-ndjson"]);
    const list = doc.paths["/v1/sandboxes"].get.parameters.map((p) => p.name);
    assert.deepEqual(list.sort(), ["all", "label", "state"]);
    for (const name of [
      "Sandbox",
      "ExecResult",
      "ExecEvent",
      "AttachEvent",
      "PullEvent",
      "Error",
      "FileEntry",
    ])
      assert.ok(doc.components.schemas[name], `schema ${name} missing`);
    const sandbox = doc.components.schemas.Sandbox as {
      properties: Record<string, unknown>;
      required: string[];
    };
    assert.ok(sandbox.properties.id && sandbox.required.includes("workspaceDir"));
    // Every reference points at a schema that exists.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]);
    assert.ok(refs.length > 20);
    for (const ref of refs) {
      assert.match(ref, /^#\/components\/schemas\//);
      assert.ok(doc.components.schemas[ref.split("/").pop()!], `dangling ${ref}`);
    }
  });

  it("lists, creates, execs and deletes through raw HTTP with the documented shapes", async () => {
    const post = (path: string, body: unknown) =>
      s.api(path, { method: "POST", headers: json, body: JSON.stringify(body) });
    const created = (await (
      await post("/v1/sandboxes", { name: "raw", labels: { team: "a" } })
    ).json()) as Sandbox;
    assert.equal(created.state, "running");
    const byLabel = (await (await s.api("/v1/sandboxes?label=team=a")).json()) as Sandbox[];
    assert.deepEqual(
      byLabel.map((x) => x.name),
      ["raw"],
    );
    assert.deepEqual(await (await s.api("/v1/sandboxes?label=team=b")).json(), []);
    const r = await post("/v1/sandboxes/raw/exec", { argv: ["sh", "-c", "echo hi; exit 3"] });
    assert.equal(r.status, 200);
    const result = (await r.json()) as { exitCode: number; stdout: string };
    assert.equal(result.exitCode, 3);
    assert.equal(result.stdout, "hi\n");
    const del = await s.api("/v1/sandboxes/raw", { method: "DELETE", headers: json });
    assert.equal(del.status, 200);
    assert.equal(((await del.json()) as Sandbox).state, "deleted");
  });
});

describe("HTTP API: heartbeats on silent streams", () => {
  it("sends the status, then heartbeat lines while a command is quiet, then its output and exit", async () => {
    const h = await startTestServer({ defaultDriver: "fake" }, { heartbeatMs: 100 });
    try {
      await h.local.createSandbox({ name: "quiet" });
      const started = Date.now();
      const res = await h.api("/v1/sandboxes/quiet/exec?stream=1", {
        method: "POST",
        headers: json,
        body: JSON.stringify({ argv: ["sh", "-c", "sleep 0.6; echo done"] }),
      });
      assert.equal(res.status, 200);
      assert.ok(Date.now() - started < 450, "the status waited for the command");
      const lines = await readNdjson(res, started);
      const types = lines.map((l) => l.event.type);
      assert.ok(types.filter((t) => t === "heartbeat").length >= 2, types.join(","));
      assert.deepEqual(
        types.filter((t) => t !== "heartbeat"),
        ["stdout", "exit"],
      );
      // The SDK ignores them.
      assert.equal(
        (await h.remote.exec("quiet", { argv: ["sh", "-c", "sleep 0.3; echo ok"] })).stdout,
        "ok\n",
      );
    } finally {
      await h.dispose();
    }
  });
});
