import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { InvalidArgumentError, NotFoundError, errorFromWire, TimeoutError } from "../core/errors.js";
import { allowedHostHeaders, isLoopbackHost, resolveServerToken } from "./auth.js";
import { HTTP_STATUS, httpStatusOf } from "./error-map.js";

describe("server token", () => {
  const dir = mkdtempSync(join(tmpdir(), "warren-auth-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is created once in the state dir with mode 0600 and reused afterwards", () => {
    const first = resolveServerToken({ stateDir: dir, env: {} });
    assert.equal(first.created, true);
    assert.equal(first.path, join(dir, "server-token"));
    assert.equal(statSync(first.path!).mode & 0o777, 0o600);
    assert.ok(first.token.length >= 40);
    const again = resolveServerToken({ stateDir: dir, env: {} });
    assert.equal(again.created, false);
    assert.equal(again.token, first.token);
  });

  it("WARREN_API_KEY overrides the file; --token-file overrides both", () => {
    const env = { WARREN_API_KEY: "k".repeat(24) };
    const fromEnv = resolveServerToken({ stateDir: dir, env });
    assert.deepEqual(fromEnv, { token: env.WARREN_API_KEY, source: "env", path: null, created: false });
    const file = join(dir, "custom");
    writeFileSync(file, "f".repeat(20) + "\n", { mode: 0o644 });
    const fromFile = resolveServerToken({ stateDir: dir, tokenFile: file, env });
    assert.equal(fromFile.token, "f".repeat(20));
    assert.equal(statSync(file).mode & 0o777, 0o600, "a readable token file was left readable");
  });

  it("refuses an empty or short token", () => {
    const file = join(dir, "empty");
    writeFileSync(file, "\n");
    chmodSync(file, 0o600);
    assert.throws(() => resolveServerToken({ stateDir: dir, tokenFile: file }), InvalidArgumentError);
    assert.throws(
      () => resolveServerToken({ stateDir: dir, env: { WARREN_API_KEY: "short" } }),
      InvalidArgumentError,
    );
    assert.equal(readFileSync(file, "utf8"), "\n");
  });
});

describe("Host check and error map", () => {
  it("knows loopback addresses and the Host values allowed on them", () => {
    for (const h of ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"]) assert.ok(isLoopbackHost(h), h);
    for (const h of ["0.0.0.0", "::", "192.168.1.2", "example.com"]) assert.ok(!isLoopbackHost(h), h);
    assert.deepEqual([...allowedHostHeaders("127.0.0.1", 7377)].sort(), [
      "127.0.0.1:7377",
      "[::1]:7377",
      "localhost:7377",
    ]);
    assert.ok(allowedHostHeaders("::1", 80).has("[::1]:80"));
  });

  it("maps codes to statuses, with the server's own refinements", () => {
    assert.equal(httpStatusOf(new NotFoundError("x")), 404);
    assert.equal(httpStatusOf(new TimeoutError("x")), 504);
    assert.equal(httpStatusOf(new InvalidArgumentError("x")), 400);
    assert.equal(
      httpStatusOf(new InvalidArgumentError("x", { details: { reason: "host-not-allowed" } })),
      403,
    );
    assert.equal(Object.keys(HTTP_STATUS).length, 10);
  });

  it("rebuilds error classes from the wire form", () => {
    const e = errorFromWire(new NotFoundError("gone", { hint: "h", details: { a: 1 } }).toJSON());
    assert.ok(e instanceof NotFoundError);
    assert.deepEqual(e.toJSON(), { code: "NOT_FOUND", message: "gone", hint: "h", details: { a: 1 } });
    assert.equal(errorFromWire({ code: "WHAT", message: "m" }).code, "INTERNAL");
    assert.equal(errorFromWire("junk").code, "INTERNAL");
  });
});
