import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  FRAME_HEADER,
  FrameReader,
  R,
  T,
  decodeExit,
  encodeExec,
  encodeFrame,
  parseFacts,
} from "./protocol.js";

describe("guest agent protocol", () => {
  it("round-trips frames split at every byte boundary", () => {
    const bytes = Buffer.concat([
      encodeFrame(T.hello, 1, Buffer.from("12345")),
      encodeFrame(R.stdout, 7, Buffer.from("hello\n")),
      encodeFrame(T.stdin, 7),
    ]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const r = new FrameReader();
      const frames = [...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))];
      assert.deepEqual(
        frames.map((f) => [f.type, f.id, f.payload.toString()]),
        [
          [T.hello, 1, "12345"],
          [R.stdout, 7, "hello\n"],
          [T.stdin, 7, ""],
        ],
      );
    }
  });

  it("rejects a stream that does not start with the magic", () => {
    const bad = encodeFrame(T.ping, 1);
    bad.writeUInt32LE(0xdeadbeef, 0);
    assert.throws(() => new FrameReader().push(bad), /malformed/);
  });

  it("encodes an exec request as flags, timeout, counts and NUL-terminated strings", () => {
    const p = encodeExec({
      argv: ["sh", "-c", "echo hi"],
      cwd: "/workspace",
      env: { A: "1" },
      timeoutMs: 300,
      detach: true,
    });
    assert.deepEqual(
      [p.readUInt32LE(0), p.readUInt32LE(4), p.readUInt32LE(8), p.readUInt32LE(12)],
      [1, 300, 3, 1],
    );
    assert.equal(p.subarray(16).toString(), "/workspace\0sh\0-c\0echo hi\0A=1\0");
    assert.equal(encodeExec({ argv: ["true"], cwd: "/", env: {} }).readUInt32LE(0), 0);
    assert.throws(() => encodeExec({ argv: ["a\0b"], cwd: "/", env: {} }), /NUL/);
  });

  it("decodes exits and health facts", () => {
    const p = Buffer.alloc(8);
    p.writeInt32LE(137, 0);
    p.writeUInt32LE(1, 4);
    assert.deepEqual(decodeExit(p), { exitCode: 137, timedOut: true });
    assert.deepEqual(parseFacts("version=1 rss_kib=896 cgroups=1\n"), {
      version: "1",
      rss_kib: "896",
      cgroups: "1",
    });
    assert.equal(encodeFrame(T.ping, 2).length, FRAME_HEADER);
  });
});
