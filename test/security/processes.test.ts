/**
 * Process isolation of the bwrap driver: host processes are invisible and unkillable from inside,
 * sandboxed processes run as an unprivileged host uid without capabilities, a timed-out command
 * leaves no process behind (setsid and double forks included), and a command's environment never
 * reaches the host-side helpers that start it. Each attack is first shown to work on the host.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { bwrapSkipReason, testWarren, type TestWarren } from "../helpers/warren.js";
import {
  cmdlineOf,
  credsOf,
  hostPids,
  hostSleeper,
  isRunning,
  killChild,
  nonce,
  sandboxCgroup,
  scenario,
  sleepMarker,
  waitFor,
} from "./support.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# security (processes): skipping: ${skip}`);

/** Lists the processes a sandbox can see as `pid cmdline` lines (no ps needed). */
const LIST_PROCS = `for p in /proc/[0-9]*; do echo "\${p#/proc/} $(tr '\\0' ' ' < $p/cmdline 2>/dev/null)"; done`;

describe("security: processes (bwrap)", { skip }, () => {
  let t: TestWarren;
  before(async () => {
    t = await testWarren();
  });
  after(async () => {
    await t.dispose();
  });

  it("proc:host-invisible: host processes and other sandboxes' processes cannot be seen", () =>
    scenario(t, async ({ create, sh, warren }) => {
      const [a, b] = [await create(), await create()];
      const marker = sleepMarker(310);
      // B runs a command that A will look for.
      const ac = new AbortController();
      const inB = warren.sandboxes
        .exec(b.id, { argv: ["sleep", marker], signal: ac.signal, timeoutMs: 15000 })
        .catch(() => undefined);
      try {
        await waitFor(() => hostPids(`sleep ${marker}`).length === 1, 5000, "B's sleep on the host");
        // On the host, all of these are visible: many processes, this test runner, B's sleep.
        const hostCount = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).length;
        assert.ok(hostCount > 10, `host shows ${hostCount} processes`);
        assert.match(cmdlineOf(process.pid) ?? "", /node/);
        const r = await sh(a.id, LIST_PROCS);
        const procs = r.stdout.split("\n").filter(Boolean);
        assert.ok(procs.length <= 5, `A sees ${procs.length} processes:\n${r.stdout}`);
        assert.doesNotMatch(r.stdout, /node|--test/, "the test runner is visible");
        assert.doesNotMatch(r.stdout, new RegExp(marker.replace(".", "\\.")), "B's process is visible in A");
        const hostPidSeen = await sh(
          a.id,
          `test -e /proc/${process.pid}/cmdline && cat /proc/${process.pid}/cmdline`,
        );
        assert.doesNotMatch(hostPidSeen.stdout, /node/);
      } finally {
        ac.abort();
        await inB;
      }
    }));

  it("proc:kill-host: kill -9 of a host process (same uid as the sandbox) fails from inside", () =>
    scenario(t, async ({ create, sh, sandboxUid }) => {
      const seconds = sleepMarker(311);
      const victim = await hostSleeper(sandboxUid, seconds);
      try {
        // On the host, a process of the sandbox uid may signal it: only the namespace protects it.
        const onHost = spawnSync(
          "/usr/bin/setpriv",
          [
            `--reuid=${sandboxUid}`,
            `--regid=${sandboxUid}`,
            "--clear-groups",
            "/bin/sh",
            "-c",
            `kill -0 ${victim.pid}`,
          ],
          { encoding: "utf8" },
        );
        assert.equal(onHost.status, 0, `the sandbox uid can signal it on the host: ${onHost.stderr}`);
        const s = await create();
        const r = await sh(s.id, `kill -9 ${victim.pid}; echo "rc=$?"`);
        assert.match(r.stdout, /^rc=[1-9]\d*$/m, `kill from inside succeeded: ${r.stdout}${r.stderr}`);
        // A sandbox killing everything it can (it takes itself down) still reaches no host process.
        const kamikaze = await create();
        await sh(kamikaze.id, "kill -9 -1; sleep 1");
        assert.ok(isRunning(victim.pid), "the host process was killed");
        assert.equal(cmdlineOf(victim.pid), `/usr/bin/sleep ${seconds}`);
      } finally {
        await killChild(victim);
      }
    }));

  it("proc:unprivileged: uid 1000 inside, an unprivileged host uid without capabilities outside", () =>
    scenario(t, async ({ create, sh, warren, stateDir, sandboxUid }) => {
      assert.notEqual(sandboxUid, 0);
      const s = await create();
      const inside = await sh(s.id, "id -u; id -g; grep ^CapEff /proc/self/status");
      assert.equal(inside.stdout, "1000\n1000\nCapEff:\t0000000000000000\n");
      const marker = sleepMarker(312);
      const ac = new AbortController();
      const running = warren.sandboxes
        .exec(s.id, { argv: ["sleep", marker], signal: ac.signal, timeoutMs: 15000 })
        .catch(() => undefined);
      try {
        await waitFor(() => hostPids(`sleep ${marker}`).length === 1, 5000, "the command on the host");
        const [pid] = hostPids(`sleep ${marker}`);
        const holder = readFileSync(
          join(sandboxCgroup(stateDir, s.id, "pids"), "holder", "cgroup.procs"),
          "utf8",
        )
          .split("\n")
          .filter(Boolean)
          .map(Number);
        assert.ok(holder.length >= 2, `holder processes: ${holder.join(" ")}`);
        for (const p of [pid, ...holder]) {
          const creds = credsOf(p);
          assert.ok(creds, `process ${p} is gone`);
          const what = `${p} (${cmdlineOf(p)?.slice(0, 40)})`;
          assert.deepEqual(creds.uids, [sandboxUid, sandboxUid, sandboxUid, sandboxUid], `uids of ${what}`);
          assert.deepEqual(creds.gids, [sandboxUid, sandboxUid, sandboxUid, sandboxUid], `gids of ${what}`);
          assert.equal(creds.capEff, 0n, `capabilities of ${what}`);
        }
      } finally {
        ac.abort();
        await running;
      }
    }));

  it("proc:timeout-kills-tree: a timed-out command leaves no process behind, setsid and double forks included", () =>
    scenario(t, async ({ create, sh }) => {
      const s = await create();
      const [m1, m2, m3] = [sleepMarker(313), sleepMarker(314), sleepMarker(315)];
      const markers = [m1, m2, m3].map((m) => `sleep ${m}`);
      const pending = sh(s.id, `setsid sleep ${m1} & (setsid sh -c 'sleep ${m3} & exit 0' &); sleep ${m2}`, {
        timeoutMs: 1000,
      });
      // The escape attempts really run on the host before the timeout hits.
      await waitFor(() => markers.every((m) => hostPids(m).length === 1), 900, "all three sleeps");
      const r = await pending;
      assert.equal(r.timedOut, true);
      assert.equal(r.exitCode, 124);
      assert.deepEqual(
        markers.flatMap((m) => hostPids(m)),
        [],
        "a process of the timed-out command survived",
      );
      assert.equal((await sh(s.id, "echo alive")).stdout, "alive\n");
    }));

  it("proc:no-daemon-escape: a daemon left by a command that exits normally is gone when it returns", () =>
    scenario(t, async ({ create, sh }) => {
      const s = await create();
      const marker = sleepMarker(316);
      const pending = sh(s.id, `setsid sleep ${marker} </dev/null >/dev/null 2>&1 & sleep 0.5; echo started`);
      await waitFor(() => hostPids(`sleep ${marker}`).length === 1, 2000, "the daemon on the host");
      const r = await pending;
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout, "started\n");
      assert.deepEqual(hostPids(`sleep ${marker}`), [], "the daemon outlived its command");
    }));

  it("proc:env-injection: PATH and LD_* of a command never reach the host-side helpers", async () => {
    const evil = mkdtempSync(join(tmpdir(), "warren-evil-"));
    const canary = join(evil, "fired");
    try {
      chmodSync(evil, 0o755);
      const trap = `#!/bin/sh\necho "$0" >> ${canary}\n`;
      for (const name of [
        "sh",
        "dash",
        "bash",
        "env",
        "nsenter",
        "setpriv",
        "bwrap",
        "true",
        "printenv",
        "sleep",
      ]) {
        writeFileSync(join(evil, name), trap, { mode: 0o755 });
      }
      // The trap works: a host program that looks commands up in this PATH runs it.
      spawnSync("true", [], { env: { PATH: evil } });
      assert.ok(existsSync(canary), "the trap fires on the host");
      rmSync(canary);
      await scenario(t, async ({ create, warren }) => {
        const s = await create({
          env: {
            PATH: `${evil}:/usr/bin:/bin`,
            LD_LIBRARY_PATH: evil,
            BASH_ENV: join(evil, "sh"),
            ENV: join(evil, "sh"),
          },
        });
        const preload = `/nonexistent-${nonce()}.so`;
        const r = await warren.sandboxes.exec(s.id, {
          argv: ["printenv", "PATH", "LD_PRELOAD"],
          env: { LD_PRELOAD: preload },
          timeoutMs: 10000,
        });
        // The command ran with exactly what it was given...
        assert.equal(r.exitCode, 0, r.stderr);
        assert.equal(r.stdout, `${evil}:/usr/bin:/bin\n${preload}\n`);
        // ...and only it loaded LD_PRELOAD: the host-side sh, nsenter and env would each complain too.
        const complaints = r.stderr.split("\n").filter((l) => l.includes(preload));
        assert.equal(complaints.length, 1, `processes that tried to preload:\n${r.stderr}`);
      });
      assert.equal(
        existsSync(canary),
        false,
        `a host-side helper ran from the evil PATH: ${existsSync(canary) ? readFileSync(canary, "utf8") : ""}`,
      );
    } finally {
      rmSync(evil, { recursive: true, force: true });
    }
  });
});
