import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgumentError } from "../core/errors.js";
import { fileBytes, fileMode, readContent, toArgv } from "./support.js";

describe("MCP tool helpers", () => {
  it("a string command runs through the shell; an array is the argv", () => {
    assert.deepEqual(toArgv("ls | wc -l"), ["/bin/sh", "-c", "ls | wc -l"]);
    assert.deepEqual(toArgv(["ls", "-l"]), ["ls", "-l"]);
  });

  it("modes are octal strings", () => {
    assert.equal(fileMode(undefined), undefined);
    assert.equal(fileMode("755"), 0o755);
    assert.equal(fileMode("0644"), 0o644);
    assert.equal(fileMode("0o600"), 0o600);
    for (const bad of ["rwx", "9", "493", ""]) assert.throws(() => fileMode(bad), InvalidArgumentError, bad);
  });

  it("content is UTF-8 text or checked base64", () => {
    assert.equal(fileBytes("héllo"), "héllo");
    assert.deepEqual(fileBytes("AAEC/w==", "base64"), Buffer.from([0, 1, 2, 255]));
    assert.deepEqual(fileBytes("AAEC\n/w==", "base64"), Buffer.from([0, 1, 2, 255]));
    assert.throws(() => fileBytes("not base64!", "base64"), InvalidArgumentError);
  });

  it("reads back UTF-8 when valid, base64 otherwise, and cuts at maxBytes", () => {
    const text = Buffer.from("añb\n");
    assert.deepEqual(readContent(text, undefined, 100), {
      encoding: "utf8",
      content: "añb\n",
      sizeBytes: 5,
      truncated: false,
    });
    const binary = Buffer.from([0xff, 0xfe, 0x00]);
    assert.deepEqual(readContent(binary, undefined, 100), {
      encoding: "base64",
      content: binary.toString("base64"),
      sizeBytes: 3,
      truncated: false,
    });
    // A cut inside "ñ" (2 bytes) drops the partial character rather than calling the file binary.
    const cut = readContent(text, undefined, 2);
    assert.deepEqual([cut.encoding, cut.content, cut.truncated], ["utf8", "a", true]);
    const euro = readContent(Buffer.from("€€"), undefined, 5);
    assert.deepEqual([euro.encoding, euro.content], ["utf8", "€"]);
    assert.equal(readContent(text, "base64", 100).content, text.toString("base64"));
  });
});
