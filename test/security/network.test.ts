/**
 * Network isolation of the bwrap driver under the default policy (`none`): the sandbox has only a
 * loopback interface of its own, and cannot reach a server on the host, neither on the host's
 * loopback, nor on its other addresses, nor on an abstract unix socket (those belong to the
 * network namespace). Each server is first shown to be reachable from the host.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { after, before, describe, it } from "node:test";
import { bwrapSkipReason, testWarren, type TestWarren } from "../helpers/warren.js";
import { nonce, scenario } from "./support.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# security (network): skipping: ${skip}`);

const BASH = "/usr/bin/bash";
const PERL = "/usr/bin/perl";

/** Interface names in /proc/net/dev text. */
function interfaces(procNetDev: string): string[] {
  return procNetDev
    .split("\n")
    .slice(2)
    .filter(Boolean)
    .map((l) => l.split(":")[0].trim());
}

/** A TCP or unix server that counts the connections it accepts. */
async function countingServer(listen: (s: Server) => void): Promise<{ server: Server; count: () => number }> {
  let n = 0;
  const server = createServer((sock) => {
    n++;
    sock.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.once("listening", resolve);
    listen(server);
  });
  return { server, count: () => n };
}

/** Runs a host command to completion without blocking the event loop (the server must answer). */
function runOnHost(cmd: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: "ignore", timeout: 10000 });
    child.once("exit", (code) => resolve(code));
  });
}

/** Waits until a server has seen `n` connections (the accept may trail the client's exit). */
async function settle(count: () => number, n: number): Promise<void> {
  for (let i = 0; i < 100 && count() < n; i++) await new Promise((r) => setTimeout(r, 10));
}

describe("security: network (bwrap)", { skip }, () => {
  let t: TestWarren;
  before(async () => {
    t = await testWarren();
  });
  after(async () => {
    await t.dispose();
  });

  it("net:loopback-only: the default policy leaves only a private lo interface", () =>
    scenario(t, async ({ create, sh }) => {
      const hostIfaces = interfaces(readFileSync("/proc/net/dev", "utf8"));
      assert.ok(
        hostIfaces.some((i) => i !== "lo"),
        `the host has interfaces besides lo: ${hostIfaces.join(" ")}`,
      );
      const s = await create();
      assert.equal(s.network, "none");
      assert.deepEqual(interfaces((await sh(s.id, "cat /proc/net/dev")).stdout), ["lo"]);
      // If sysfs is there, it must agree.
      const sys = (await sh(s.id, "ls /sys/class/net 2>/dev/null; true")).stdout.split("\n").filter(Boolean);
      assert.ok(
        sys.length === 0 || (sys.length === 1 && sys[0] === "lo"),
        `/sys/class/net: ${sys.join(" ")}`,
      );
    }));

  it("net:no-host-tcp: a TCP server on the host is unreachable on loopback and every host address", async (tc) => {
    if (!existsSync(BASH)) return tc.skip(`${BASH} is missing (needed for /dev/tcp)`);
    const { server, count } = await countingServer((s) => s.listen(0, "0.0.0.0"));
    try {
      const port = (server.address() as AddressInfo).port;
      const addresses = [
        "127.0.0.1",
        ...Object.values(networkInterfaces())
          .flat()
          .filter((a) => a && a.family === "IPv4" && !a.internal)
          .map((a) => a!.address),
      ];
      // The attack works from the host: bash's /dev/tcp reaches the server.
      assert.equal(await runOnHost(BASH, ["-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`]), 0);
      await settle(count, 1);
      assert.equal(count(), 1, "the host's own connection was counted");
      await scenario(t, async ({ create, sh }) => {
        const s = await create();
        for (const addr of addresses) {
          const r = await sh(
            s.id,
            `timeout 3 ${BASH} -c 'exec 3<>/dev/tcp/${addr}/${port}' 2>/dev/null && echo CONNECTED; true`,
          );
          assert.equal(r.stdout, "", `the sandbox reached ${addr}:${port}`);
        }
      });
      await settle(count, 2);
      assert.equal(count(), 1, "the server saw a connection from the sandbox");
    } finally {
      server.close();
    }
  });

  it("net:no-abstract-socket: an abstract unix socket on the host is unreachable", async (tc) => {
    if (!existsSync(PERL)) return tc.skip(`${PERL} is missing (needed for a unix socket client)`);
    const name = `warren-security-${nonce()}`;
    const { server, count } = await countingServer((s) => s.listen(`\0${name}`));
    // Perl builds the name itself (a NUL cannot travel in argv), padded with NULs to the full
    // sun_path as libuv binds it.
    const client =
      `use IO::Socket::UNIX; my $n = "\\0${name}"; $n .= "\\0" x (108 - length $n); ` +
      `IO::Socket::UNIX->new(Peer => $n) or exit 3; print "CONNECTED\\n";`;
    try {
      assert.equal(await runOnHost(PERL, ["-e", client]), 0, "the host can connect");
      await settle(count, 1);
      assert.equal(count(), 1);
      await scenario(t, async ({ create, warren }) => {
        const s = await create();
        const r = await warren.sandboxes.exec(s.id, { argv: [PERL, "-e", client], timeoutMs: 10000 });
        assert.equal(r.exitCode, 3, `exit ${r.exitCode}: ${r.stdout}${r.stderr}`);
        assert.equal(r.stdout, "");
      });
      await settle(count, 2);
      assert.equal(count(), 1, "the server saw a connection from the sandbox");
    } finally {
      server.close();
    }
  });
});
