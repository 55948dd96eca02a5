import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RuntimeConfig } from "../../core/driver.js";
import { holderArgs, nsenterArgs } from "./args.js";

const config = (over: Partial<RuntimeConfig> = {}): RuntimeConfig => ({
  workspaceDir: "/state/workspaces/sbx-1",
  environment: { name: "host", rootfsPath: null },
  hostname: "box",
  env: {},
  vcpuCount: 1,
  memoryMiB: 256,
  pidsMax: 64,
  network: "none",
  healthTimeoutMs: 1000,
  ...over,
});

const pairAfter = (args: string[], flag: string, value: string) =>
  args.some((a, i) => a === flag && args[i + 1] === value);

describe("bwrap command lines", () => {
  it("unshares every namespace, the network too unless the policy is host", () => {
    const none = holderArgs(config(), "/etc-dir", []);
    for (const ns of ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"])
      assert.ok(none.includes(ns), ns);
    assert.ok(!holderArgs(config({ network: "host" }), "/etc-dir", []).includes("--unshare-net"));
  });

  it("binds the host /usr read-only, the workspace read-write, and never the host's / or /etc", () => {
    const a = holderArgs(config(), "/etc-dir", [
      { name: "bin", kind: "symlink", target: "usr/bin" },
      { name: "lib64", kind: "dir" },
    ]);
    assert.ok(pairAfter(a, "--ro-bind", "/usr"));
    assert.ok(pairAfter(a, "--bind", "/state/workspaces/sbx-1"));
    assert.ok(pairAfter(a, "--ro-bind", "/etc-dir"));
    assert.ok(pairAfter(a, "--symlink", "usr/bin"));
    assert.ok(pairAfter(a, "--ro-bind", "/lib64"));
    assert.ok(!pairAfter(a, "--ro-bind", "/") && !pairAfter(a, "--bind", "/"));
    assert.ok(!pairAfter(a, "--ro-bind", "/etc") && !pairAfter(a, "--bind", "/etc"));
    assert.ok(pairAfter(a, "--hostname", "box"));
  });

  it("a root filesystem environment becomes a read-only / with Warren's /etc files over it", () => {
    const a = holderArgs(
      config({ environment: { name: "debian-bookworm", rootfsPath: "/envs/deb/rootfs" } }),
      "/etc-dir",
      [],
    );
    assert.ok(pairAfter(a, "--ro-bind", "/envs/deb/rootfs"));
    assert.ok(pairAfter(a, "--ro-bind", "/etc-dir/passwd"));
    assert.ok(!pairAfter(a, "--ro-bind", "/usr"));
  });

  it("nsenter drops to the sandbox user and passes the environment through env -i", () => {
    const a = nsenterArgs(42, "/workspace/src", { A: "1", LD_PRELOAD: "/x.so" }, ["ls", "-la"]);
    assert.ok(pairAfter(a, "-t", "42"));
    assert.ok(pairAfter(a, "-S", "1000") && pairAfter(a, "-G", "1000"));
    assert.ok(a.includes("--wdns=/workspace/src"));
    const env = a.indexOf("/usr/bin/env");
    assert.deepEqual(a.slice(env), ["/usr/bin/env", "-i", "A=1", "LD_PRELOAD=/x.so", "ls", "-la"]);
  });
});
