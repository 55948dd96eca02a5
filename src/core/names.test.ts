import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgumentError } from "./errors.js";
import {
  parsePairs,
  validateArgv,
  validateEnv,
  validateIntInRange,
  validateLabels,
  validateName,
  validateTimeoutMs,
} from "./names.js";

const invalid = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message) && !!e.hint);

describe("names", () => {
  it("accepts names of 1-128 chars of [A-Za-z0-9._-] starting alphanumeric", () => {
    for (const ok of ["a", "A.b_c-9", "x".repeat(128), "9lives"]) assert.equal(validateName(ok), ok);
  });

  it("rejects other names with a hint", () => {
    for (const bad of ["", "-x", ".x", "_x", "x".repeat(129), "a b", "a/b", "ä", "a\0"])
      invalid(() => validateName(bad), /invalid sandbox name/);
  });

  it("checks integer ranges", () => {
    assert.equal(validateIntInRange(8, "cpus", 1, 8), 8);
    invalid(() => validateIntInRange(9, "cpus", 1, 8), /cpus must be an integer from 1 to 8, got 9/);
    invalid(() => validateIntInRange(1.5, "cpus", 1, 8), /cpus/);
  });

  it("parses K=V pairs, keeping '=' in values", () => {
    assert.deepEqual(parsePairs(["a=1", "b=x=y", "c="], "label"), { a: "1", b: "x=y", c: "" });
    invalid(() => parsePairs(["novalue"], "label"), /invalid label/);
    invalid(() => parsePairs(["=v"], "label"), /invalid label/);
  });

  it("rejects bad labels, env names, argv and timeouts", () => {
    invalid(() => validateLabels({ "-bad": "x" }), /label key/);
    invalid(() => validateEnv({ "1X": "y" }), /environment variable name/);
    invalid(() => validateEnv({ X: "a\0b" }), /environment variable "X"/);
    invalid(() => validateArgv([]), /no command/);
    invalid(() => validateArgv(["a\0"]), /NUL/);
    invalid(() => validateTimeoutMs(0), /timeout must be greater than 0/);
    assert.equal(validateTimeoutMs(undefined), undefined);
  });
});
