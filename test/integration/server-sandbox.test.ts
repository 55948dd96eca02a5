/**
 * Real sandboxes (bwrap) through the HTTP API: exec streaming as produced and in order, a client
 * disconnect killing the command, the journal, files (raw and JSON, tar), background processes
 * (attach, offsets, stdin, signals, wait) — through the remote backend and with raw fetch.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { InvalidStateError, LimitExceededError, NotFoundError, TimeoutError } from "../../src/core/errors.js";
import type { ExecResult, FileEntry, JournalEntry, Sandbox } from "../../src/core/types.js";
import { bwrapSkipReason } from "../helpers/warren.js";
import { readNdjson, startTestServer, type TestServer } from "./server-support.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# server (bwrap): skipping: ${skip}`);

const json = { "content-type": "application/json" };

describe("HTTP API on real sandboxes (bwrap)", { skip }, () => {
  let s: TestServer;
  let box: Sandbox;
  before(async () => {
    s = await startTestServer({ defaultDriver: "bwrap" });
    box = await s.remote.createSandbox({ name: "api-box", labels: { suite: "server" } });
  });
  after(async () => {
    if (box) console.log(`# sandbox ${box.id}`);
    await s?.dispose();
  });

  it("creates and lists through the remote backend like the local one", async () => {
    assert.equal(box.state, "running");
    assert.equal(box.driver, "bwrap");
    assert.deepEqual(await s.remote.getSandbox("api-box"), await s.local.getSandbox("api-box"));
    const listed = await s.remote.listSandboxes({ labels: { suite: "server" } });
    assert.deepEqual(
      listed.map((x) => x.id),
      [box.id],
    );
    assert.deepEqual(await s.remote.listSandboxes({ labels: { suite: "other" } }), []);
    const info = await s.remote.info();
    assert.deepEqual(info, { kind: "remote", location: s.url, defaultDriver: "bwrap" });
  });

  it("streams exec output over NDJSON as it is produced, stdout and stderr in order, exit last", async () => {
    const started = Date.now();
    const res = await s.api(`/v1/sandboxes/api-box/exec?stream=1`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({
        argv: ["sh", "-c", "echo one; sleep 0.6; echo two >&2; sleep 0.6; printf '\\377\\376'; exit 5"],
      }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/x-ndjson/);
    const lines = await readNdjson(res, started);
    assert.deepEqual(
      lines.map((l) => l.event.type),
      ["stdout", "stderr", "stdout", "exit"],
    );
    assert.deepEqual(lines[0].event, { type: "stdout", data: "one\n", encoding: "utf8" });
    assert.deepEqual(lines[1].event, { type: "stderr", data: "two\n", encoding: "utf8" });
    // Bytes that are not UTF-8 travel as base64.
    assert.deepEqual(lines[2].event, {
      type: "stdout",
      data: Buffer.from([0xff, 0xfe]).toString("base64"),
      encoding: "base64",
    });
    const result = lines[3].event.result as ExecResult;
    assert.equal(result.exitCode, 5);
    // Each chunk arrived when produced, not with the end.
    assert.ok(lines[0].at < 500, `first line came after ${lines[0].at} ms`);
    assert.ok(lines[1].at - lines[0].at >= 400, "stderr did not wait for its sleep");
    assert.ok(lines[3].at >= 1100);
  });

  it("streams through the remote backend's callbacks and takes binary stdin", async () => {
    const seen: Array<[string, string, number]> = [];
    const started = Date.now();
    const result = await s.remote.exec(
      "api-box",
      {
        argv: ["sh", "-c", "head -c 3 | od -An -tx1; sleep 0.5; echo late >&2"],
        stdin: new Uint8Array([0, 255, 10]),
      },
      {
        onStdout: (c) => seen.push(["out", c.toString(), Date.now() - started]),
        onStderr: (c) => seen.push(["err", c.toString(), Date.now() - started]),
      },
    );
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout.trim(), "00 ff 0a");
    assert.deepEqual(
      seen.map(([k, v]) => [k, v.trim()]),
      [
        ["out", "00 ff 0a"],
        ["err", "late"],
      ],
    );
    assert.ok(seen[1][2] - seen[0][2] >= 300, "stdout was held back until the end");
    // The blocking JSON form gives the same result shape.
    const blocking = (await (
      await s.api("/v1/sandboxes/api-box/exec", {
        method: "POST",
        headers: json,
        body: JSON.stringify({ argv: ["cat"], stdin: "aGk=", stdinEncoding: "base64" }),
      })
    ).json()) as ExecResult;
    assert.equal(blocking.stdout, "hi");
  });

  it("a client that disconnects mid-stream kills the command; the journal records it", async () => {
    const controller = new AbortController();
    const res = await s.api(`/v1/sandboxes/api-box/exec`, {
      method: "POST",
      headers: { ...json, accept: "application/x-ndjson" },
      body: JSON.stringify({ argv: ["sh", "-c", "echo started; sleep 30; echo never"] }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /"started\\n"/);
    controller.abort();
    const deadline = Date.now() + 10000;
    let entry: JournalEntry | undefined;
    for (;;) {
      entry = (await s.local.journal("api-box")).find((j) => j.argv.join(" ").includes("sleep 30"));
      if (entry && entry.status !== "running") break;
      assert.ok(Date.now() < deadline, "the command still runs after the client went away");
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(entry.status, "failed");
    assert.ok(Date.now() < deadline - 5000, "the command was not killed promptly");

    // The blocking form too: the command ends when its client goes away.
    const blocking = new AbortController();
    const pending = s.api(`/v1/sandboxes/api-box/exec`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ argv: ["sh", "-c", "sleep 31"] }),
      signal: blocking.signal,
    });
    const running = async () =>
      (await s.local.journal("api-box")).find((j) => j.argv.join(" ").includes("sleep 31"))?.status;
    while ((await running()) !== "running") await new Promise((r) => setTimeout(r, 50));
    blocking.abort();
    await assert.rejects(pending);
    const until = Date.now() + 5000;
    while ((await running()) === "running") {
      assert.ok(Date.now() < until, "a blocking exec outlived its client");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await running(), "failed");
  });

  it("journal and driver log match the local backend", async () => {
    const viaRemote = await s.remote.journal("api-box");
    assert.deepEqual(viaRemote, await s.local.journal("api-box"));
    assert.ok(viaRemote.length >= 3);
    const tail = await s.remote.journal("api-box", { sinceSequence: viaRemote[0].sequence, limit: 1 });
    assert.deepEqual(
      tail.map((j) => j.sequence),
      [viaRemote[1].sequence],
    );
    assert.equal(typeof (await s.remote.driverLog("api-box")), "string");
    await assert.rejects(s.remote.journal("no-such"), NotFoundError);
  });

  it("files: raw and JSON writes, streamed reads, list/stat/exists/mkdir/rename/remove, tar both ways", async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 251, 10]);
    const put = await s.api("/v1/sandboxes/api-box/files/content?path=/workspace/d/a.bin&mode=384", {
      method: "PUT",
      body: bytes,
    });
    assert.equal(put.status, 200);
    assert.equal(((await put.json()) as FileEntry).mode, 0o600);
    const raw = await s.api("/v1/sandboxes/api-box/files/content?path=/workspace/d/a.bin");
    assert.equal(raw.headers.get("content-type"), "application/octet-stream");
    assert.deepEqual(Buffer.from(await raw.arrayBuffer()), bytes);
    assert.equal((await s.api("/v1/sandboxes/api-box/files/content?path=/workspace/nope")).status, 404);

    const r = s.remote;
    await r.writeFile("api-box", "/workspace/d/t.txt", "text\n");
    const big = Buffer.alloc(3 << 20, "z");
    await r.writeFile("api-box", "/workspace/big", big);
    let chunks = 0;
    const back = await r.readFile("api-box", "/workspace/big", { onChunk: () => chunks++ });
    assert.ok(back.equals(big));
    assert.ok(chunks > 1, "a large file came in one piece");
    assert.equal((await r.readFile("api-box", "/workspace/d/t.txt")).toString(), "text\n");
    const viaJson = await s.api("/v1/sandboxes/api-box/files/write", {
      method: "POST",
      headers: json,
      body: JSON.stringify({
        path: "/workspace/d/j.bin",
        content: bytes.toString("base64"),
        encoding: "base64",
      }),
    });
    assert.equal(viaJson.status, 200);
    assert.ok((await r.readFile("api-box", "/workspace/d/j.bin")).equals(bytes));

    assert.deepEqual(
      (await r.listFiles("api-box", "/workspace/d")).map((e) => e.name),
      ["a.bin", "j.bin", "t.txt"],
    );
    assert.equal((await r.statFile("api-box", "/workspace/d")).type, "directory");
    assert.equal(await r.exists("api-box", "/workspace/d/t.txt"), true);
    assert.equal(await r.exists("api-box", "/workspace/d/zz"), false);
    assert.equal((await r.makeDir("api-box", "/workspace/e/f")).type, "directory");
    assert.equal(
      (await r.renameFile("api-box", "/workspace/d/t.txt", "/workspace/e/t.txt")).path,
      "/workspace/e/t.txt",
    );
    await assert.rejects(r.removeFile("api-box", "/workspace/e"), InvalidStateError);
    const tar = await r.downloadTar("api-box", "/workspace/d");
    assert.ok(tar.length >= 512);
    await r.uploadTar("api-box", "/workspace/copy", tar);
    assert.deepEqual(
      (await r.listFiles("api-box", "/workspace/copy")).map((e) => [e.name, e.sizeBytes]),
      [
        ["a.bin", 6],
        ["j.bin", 6],
      ],
    );
    // Over the read limit: the same LIMIT_EXCEEDED as in-process, not a cut stream.
    await s.local.exec("api-box", { argv: ["sh", "-c", "head -c 67108865 /dev/zero > /workspace/huge"] });
    for (const b of [s.local, r])
      await assert.rejects(b.readFile("api-box", "/workspace/huge"), LimitExceededError);
    await r.removeFile("api-box", "/workspace/huge");
    await r.removeFile("api-box", "/workspace/e", { recursive: true });
    assert.equal(await r.exists("api-box", "/workspace/e"), false);
    await assert.rejects(r.statFile("api-box", "/workspace/e"), NotFoundError);
  });

  it("background processes: attach streams from offsets, stdin, signal, wait and its timeout", async () => {
    const r = s.remote;
    const p = await r.startProcess("api-box", {
      argv: ["sh", "-c", "echo a; sleep 0.4; echo b >&2; while read l; do echo got:$l; done; echo eof"],
    });
    assert.equal(p.state, "running");
    assert.deepEqual(
      await r.getProcess("api-box", p.processId),
      await s.local.getProcess("api-box", p.processId),
    );
    await assert.rejects(r.waitProcess("api-box", p.processId, { timeoutMs: 200 }), TimeoutError);
    await r.writeStdin("api-box", p.processId, "x\n");
    await r.closeStdin("api-box", p.processId);
    const out: string[] = [];
    const end = await r.attachProcess("api-box", p.processId, {
      onStdout: (c) => out.push(`out:${c}`),
      onStderr: (c) => out.push(`err:${c}`),
    });
    assert.equal(end.state, "exited");
    assert.equal(end.exitCode, 0);
    assert.equal(
      out
        .filter((o) => o.startsWith("out:"))
        .map((o) => o.slice(4))
        .join(""),
      "a\ngot:x\neof\n",
    );
    assert.deepEqual(
      out.filter((o) => o.startsWith("err:")),
      ["err:b\n"],
    );
    const rest = await r.processOutput("api-box", p.processId, { stdoutOffset: 2 });
    assert.equal(rest.stdout.toString(), "got:x\neof\n");
    assert.equal(rest.stderr.toString(), "b\n");
    assert.equal(rest.stdoutOffset, 12);

    // Raw attach from an offset: chunk lines carry their offsets, `end` comes last.
    const lines = await readNdjson(
      await s.api(`/v1/sandboxes/api-box/processes/${p.processId}/attach?stdoutOffset=2&stderrOffset=2`),
      Date.now(),
    );
    assert.deepEqual(lines[0].event, { type: "stdout", data: "got:x\neof\n", encoding: "utf8", offset: 2 });
    assert.equal(lines.at(-1)!.event.type, "end");

    const long = await r.startProcess("api-box", { argv: ["sleep", "300"] });
    assert.deepEqual(
      (await r.listProcesses("api-box")).map((x) => x.processId),
      (await s.local.listProcesses("api-box")).map((x) => x.processId),
    );
    await r.signalProcess("api-box", long.processId, "KILL");
    const killed = await r.waitProcess("api-box", long.processId, { timeoutMs: 10000 });
    assert.equal(killed.exitCode, 137);
    await assert.rejects(r.writeStdin("api-box", long.processId, "late"), InvalidStateError);
    await assert.rejects(r.getProcess("api-box", "p9999"), NotFoundError);
  });

  it("run is one-shot over the API; drivers and environments are listed", async () => {
    const seen: string[] = [];
    const result = await s.remote.run(
      { labels: { oneshot: "1" } },
      { argv: ["echo", "once"] },
      {
        onStdout: (c) => seen.push(c.toString()),
      },
    );
    assert.equal(result.exitCode, 0);
    assert.deepEqual(seen, ["once\n"]);
    assert.equal((await s.local.getSandbox(result.sandboxId)).state, "deleted");
    const drivers = await s.remote.drivers();
    assert.equal(drivers.find((d) => d.driver === "bwrap")?.usable, true);
    const envs = await s.remote.listEnvironments();
    assert.ok(envs.some((e) => e.name === "host" && e.installed));
    assert.equal((await s.remote.inspectEnvironment("host")).name, "host");
    const reaped = await s.remote.reap();
    assert.deepEqual(reaped, []);
  });

  it("stop, start and delete through the remote backend", async () => {
    const other = await s.remote.createSandbox({ name: "api-other" });
    assert.equal((await s.remote.stopSandbox("api-other")).state, "stopped");
    await assert.rejects(s.remote.exec("api-other", { argv: ["true"] }), InvalidStateError);
    assert.equal((await s.remote.startSandbox("api-other")).state, "running");
    assert.equal((await s.remote.deleteSandbox(other.id)).state, "deleted");
    assert.equal((await s.remote.deleteSandbox(other.id)).state, "deleted", "delete is idempotent");
  });
});
