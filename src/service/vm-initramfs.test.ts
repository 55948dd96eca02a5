import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { cpioNewc, indexModules, moduleDepends, moduleLoadOrder } from "./vm-initramfs.js";

/** A fake .ko: only the .modinfo strings the resolver reads. */
const ko = (deps: string): Buffer => Buffer.from(`\0\x7fELF...\0license=GPL\0depends=${deps}\0name=x\0`);

describe("VM initramfs", () => {
  it("writes newc headers the kernel unpacks: magic, mode, sizes, 4-byte alignment, trailer", () => {
    const a = cpioNewc([
      { path: "dev", kind: "dir", mode: 0o755 },
      { path: "dev/console", kind: "chardev", mode: 0o600, major: 5, minor: 1 },
      { path: "init", kind: "file", mode: 0o755, data: Buffer.from("abc") },
    ]);
    assert.equal(a.length % 4, 0);
    const text = a.toString("latin1");
    assert.equal(text.slice(0, 6), "070701");
    const headers = [...text.matchAll(/070701([0-9a-f]{104})/g)].map((m) => m[1]);
    const field = (h: string, n: number): number => parseInt(h.slice(n * 8, n * 8 + 8), 16);
    assert.equal(headers.length, 4);
    assert.equal(field(headers[0], 1), 0o040755);
    assert.deepEqual([field(headers[1], 1), field(headers[1], 9), field(headers[1], 10)], [0o020600, 5, 1]);
    assert.deepEqual([field(headers[2], 1), field(headers[2], 6)], [0o100755, 3]);
    assert.ok(text.includes("init\0") && text.includes("abc") && text.includes("TRAILER!!!\0"));
  });

  it("orders modules after their dependencies and skips built-in ones", () => {
    const dir = mkdtempSync(join(tmpdir(), "warren-modules-"));
    try {
      mkdirSync(join(dir, "kernel/fs"), { recursive: true });
      writeFileSync(join(dir, "kernel/fs/virtiofs.ko"), ko("fuse,virtio"));
      writeFileSync(join(dir, "kernel/fs/fuse.ko"), ko(""));
      writeFileSync(join(dir, "kernel/virtio.ko"), ko(""));
      writeFileSync(join(dir, "kernel/virtio_mmio.ko"), ko("virtio,virtio-ring"));
      assert.deepEqual(moduleDepends(ko("a,b-c")), ["a", "b_c"]);
      const order = moduleLoadOrder(["virtio_mmio", "virtiofs", "ext4"], indexModules(dir)).map((p) =>
        p.slice(dir.length + 1),
      );
      assert.deepEqual(order, [
        "kernel/virtio.ko",
        "kernel/virtio_mmio.ko",
        "kernel/fs/fuse.ko",
        "kernel/fs/virtiofs.ko",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
