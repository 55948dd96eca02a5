/**
 * Filesystem isolation of the bwrap driver. Each test is an attack that must fail: writing to the
 * host's system directories, reading host secrets, reaching Warren's state or another sandbox's
 * workspace, and using symlinks or names to make the host side touch paths it should not. Each
 * first shows that the target is real on the host, so a test cannot pass by looking elsewhere.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InvalidArgumentError } from "../../src/core/errors.js";
import { bwrapSkipReason, testWarren, type TestWarren } from "../helpers/warren.js";
import { nonce, scenario } from "./support.js";

const skip = await bwrapSkipReason();
if (skip) console.log(`# security (filesystem): skipping: ${skip}`);

/** Every path under `dir` (relative), depth first; symlinks are listed, not followed. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      out.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk("");
  return out.sort();
}

/** Lines `WROTE <path>` for every write in `targets` that succeeded inside the sandbox. */
function writeAttempts(targets: string[], tag: string): string {
  return targets
    .map(
      (p) =>
        `{ echo ${tag} > '${p}'; } 2>/dev/null && echo "WROTE ${p}"; ` +
        `mkdir '${p}.d' 2>/dev/null && echo "WROTE ${p}.d"; ` +
        `ln -s /tmp '${p}.l' 2>/dev/null && echo "WROTE ${p}.l"`,
    )
    .join("; ");
}

describe("security: filesystem (bwrap)", { skip }, () => {
  let t: TestWarren;
  before(async () => {
    t = await testWarren();
  });
  after(async () => {
    await t.dispose();
  });

  it("fs:system-dirs-read-only: writes to /usr and /etc fail and reach nothing on the host", () =>
    scenario(t, async ({ create, sh, stateDir }) => {
      const s = await create();
      const tag = nonce();
      // The targets are real: host /usr/bin and /etc are there, and the sandbox sees /usr/bin.
      assert.ok(statSync("/usr/bin").isDirectory() && statSync("/etc").isDirectory());
      assert.equal(
        (await sh(s.id, "test -x /usr/bin/env && test -r /etc/passwd && echo seen")).stdout,
        "seen\n",
      );
      const targets = [
        `/usr/pwned-${tag}`,
        `/usr/bin/pwned-${tag}`,
        `/usr/local/pwned-${tag}`,
        `/etc/pwned-${tag}`,
        `/etc/alternatives/pwned-${tag}`,
        "/etc/passwd",
        "/etc/hosts",
        "/usr/bin/env",
      ];
      const r = await sh(s.id, writeAttempts(targets, tag));
      assert.equal(r.stdout, "", "every write to a read-only system directory must fail");
      for (const p of targets.filter((p) => p.includes(tag))) {
        for (const suffix of ["", ".d", ".l"])
          assert.equal(existsSync(p + suffix), false, `${p}${suffix} on the host`);
      }
      // Neither the host's files nor the sandbox's generated /etc (a host directory) changed.
      assert.doesNotMatch(readFileSync("/etc/passwd", "utf8"), new RegExp(tag));
      const etcDir = join(stateDir, "drivers", "bwrap", s.id, "etc");
      for (const f of readdirSync(etcDir).filter((f) => statSync(join(etcDir, f)).isFile())) {
        assert.doesNotMatch(readFileSync(join(etcDir, f), "latin1"), new RegExp(tag), `generated /etc/${f}`);
      }
      assert.deepEqual(
        readdirSync(etcDir).filter((f) => f.includes(tag)),
        [],
      );
    }));

  it("fs:root-private: writes to / and /root land in a private tmpfs, never on the host", () =>
    scenario(t, async ({ create, sh }) => {
      const [a, b] = [await create(), await create()];
      const tag = nonce();
      assert.ok(existsSync("/root"), "host /root exists");
      await sh(
        a.id,
        `for p in /pwned-${tag} /root/pwned-${tag}; do mkdir -p /root; echo ${tag} > $p; done; cat /root/pwned-${tag}`,
      );
      // Whatever the sandbox could do to its own root, the host's / and /root are untouched...
      assert.equal(existsSync(`/pwned-${tag}`), false, "file in host /");
      assert.equal(existsSync(`/root/pwned-${tag}`), false, "file in host /root");
      // ...and another sandbox does not see it either: the root is per sandbox.
      const seen = await sh(
        b.id,
        `ls /pwned-${tag} /root/pwned-${tag} 2>&1; cat /root/.bashrc 2>&1; ls -A /root 2>&1`,
      );
      // Host /root's contents (e.g. .bashrc) are not reachable from inside.
      const lines = new Set(seen.stdout.split("\n"));
      assert.equal(lines.has(`/pwned-${tag}`) || lines.has(`/root/pwned-${tag}`), false, "B sees A's root");
      for (const f of readdirSync("/root"))
        assert.equal(lines.has(f), false, `host /root/${f} is listed inside`);
    }));

  it("fs:no-shadow: the host's /etc/shadow exists but cannot be read from inside", () =>
    scenario(t, async ({ create, sh }) => {
      const s = await create();
      const shadow = readFileSync("/etc/shadow", "utf8");
      assert.match(shadow, /^root:/m, "host /etc/shadow is there and has a root entry");
      const r = await sh(
        s.id,
        'for f in /etc/shadow /etc/gshadow /etc/alternatives/../shadow /proc/1/root/etc/shadow /workspace/../etc/shadow; do cat $f 2>/dev/null && echo "READ $f"; done; ls -a /etc',
      );
      assert.doesNotMatch(r.stdout, /^READ /m);
      assert.doesNotMatch(r.stdout, /^(g?shadow)$/m, "no shadow file in the sandbox's /etc");
      // The sandbox's /etc is the generated one, not the host's.
      const passwd = (await sh(s.id, "cat /etc/passwd")).stdout;
      assert.notEqual(passwd, readFileSync("/etc/passwd", "utf8"));
      const rootHash = /^root:([^:]*):/m.exec(shadow)![1];
      if (rootHash.length > 2) {
        const grep = await sh(s.id, `grep -rlF '${rootHash}' /etc /workspace /tmp 2>/dev/null; true`);
        assert.equal(grep.stdout, "", "root's password hash is nowhere in the sandbox");
      }
    }));

  it("fs:state-dir-hidden: Warren's state dir and its database are invisible and unwritable inside", () =>
    scenario(t, async ({ create, sh, stateDir }) => {
      const s = await create();
      const db = join(stateDir, "warren.db");
      assert.ok(statSync(db).isFile(), "the store exists on the host");
      const r = await sh(
        s.id,
        [
          `ls -d '${stateDir}' '${db}' '${s.workspaceDir}' 2>/dev/null`,
          `{ echo x > '${stateDir}/pwned'; } 2>/dev/null && echo WROTE`,
          `{ echo x > '${s.workspaceDir}/pwned'; } 2>/dev/null && echo WROTE`,
          "find / -path /proc -prune -o \\( -name 'warren.db*' -o -name holder.log \\) -print 2>/dev/null",
          "true",
        ].join("; "),
        { timeoutMs: 30000 },
      );
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, "", "nothing of the state dir is reachable");
      assert.equal(existsSync(join(stateDir, "pwned")), false);
      assert.equal(existsSync(join(s.workspaceDir, "pwned")), false);
    }));

  it("fs:workspace-only: a write to /workspace lands in the host workspace dir and only there", () =>
    scenario(t, async ({ create, sh, stateDir, sandboxUid }) => {
      const [a, b] = [await create(), await create()];
      const tag = nonce();
      const name = `out-${tag}`;
      const r = await sh(
        a.id,
        `echo ${tag} > /workspace/${name}; mkdir /workspace/d-${tag}; echo ${tag} > /workspace/d-${tag}/${name}; ` +
          `chown 0:0 /workspace/${name} 2>/dev/null && echo CHOWNED; true`,
      );
      assert.equal(r.stdout, "", "chown to root must fail");
      assert.equal(readFileSync(join(a.workspaceDir, name), "utf8"), `${tag}\n`);
      // Files made inside belong to the unprivileged sandbox uid on the host, never to root.
      for (const p of [name, `d-${tag}`, `d-${tag}/${name}`]) {
        const st = lstatSync(join(a.workspaceDir, p));
        assert.equal(st.uid, sandboxUid, `${p} owner`);
        assert.equal(st.gid, sandboxUid, `${p} group`);
      }
      const copies = tree(stateDir).filter((p) => p.endsWith(`/${name}`));
      assert.deepEqual(copies, [`workspaces/${a.id}/${name}`, `workspaces/${a.id}/d-${tag}/${name}`].sort());
      assert.equal(existsSync(join(b.workspaceDir, name)), false);
      assert.equal(existsSync(join(tmpdir(), name)), false);
    }));

  it("fs:other-workspace: sandbox B cannot find a secret that sandbox A wrote", () =>
    scenario(t, async ({ create, sh }) => {
      const [a, b] = [await create(), await create()];
      const tag = nonce();
      await sh(a.id, `echo ${tag} > /workspace/secret-${tag}`);
      assert.equal(
        readFileSync(join(a.workspaceDir, `secret-${tag}`), "utf8"),
        `${tag}\n`,
        "A's secret is on the host",
      );
      const r = await sh(
        b.id,
        [
          `cat '${a.workspaceDir}/secret-${tag}' 2>/dev/null`,
          `ls '${a.workspaceDir}' 2>/dev/null`,
          `find / -path /proc -prune -o -name 'secret-${tag}' -print 2>/dev/null`,
          `grep -rl ${tag} /workspace /tmp /etc 2>/dev/null`,
          "true",
        ].join("; "),
        { timeoutMs: 30000 },
      );
      assert.equal(r.stdout, "", "B found A's secret");
    }));

  it("fs:symlink-escape: symlinks in /workspace to host paths expose nothing, and delete does not follow them", async () => {
    // A host directory the sandbox uid could read if it were reachable: a canary for both attacks.
    const canaryDir = mkdtempSync(join(tmpdir(), "warren-canary-"));
    const tag = nonce();
    const canary = join(canaryDir, "canary.txt");
    try {
      chmodSync(canaryDir, 0o755);
      writeFileSync(canary, `${tag}\n`, { mode: 0o644 });
      await scenario(t, async ({ create, sh, warren, sandboxUid }) => {
        const asSandboxUid = spawnSync(
          "/usr/bin/setpriv",
          [`--reuid=${sandboxUid}`, `--regid=${sandboxUid}`, "--clear-groups", "/usr/bin/cat", canary],
          { encoding: "utf8" },
        );
        assert.equal(asSandboxUid.stdout, `${tag}\n`, "on the host, the sandbox uid can read the canary");
        const s = await create();
        const r = await sh(
          s.id,
          [
            `ln -s '${canaryDir}' /workspace/dir-link`,
            `ln -s '${canary}' /workspace/file-link`,
            "ln -s /etc /workspace/etc-link",
            "ln -s ../../../../../../../../etc /workspace/up-link",
            `ln '${canary}' /workspace/hard-link 2>/dev/null`,
            `cat /workspace/dir-link/canary.txt /workspace/file-link 2>/dev/null`,
            "cat /workspace/etc-link/shadow /workspace/up-link/shadow 2>/dev/null",
            "true",
          ].join("; "),
        );
        assert.equal(r.stdout, "", "host content came through a symlink");
        // The links are really there on the host, where they would resolve to host paths.
        assert.equal(readlinkSync(join(s.workspaceDir, "dir-link")), canaryDir);
        assert.equal(readFileSync(join(s.workspaceDir, "dir-link", "canary.txt"), "utf8"), `${tag}\n`);
        assert.equal(existsSync(join(s.workspaceDir, "hard-link")), false);
        // Only the canary links stay for delete (a broken delete must not be able to hit /etc).
        await sh(s.id, "rm /workspace/etc-link /workspace/up-link");
        assert.equal(lstatSync(join(s.workspaceDir, "file-link")).isSymbolicLink(), true);
        await warren.sandboxes.delete(s.id);
        assert.equal(existsSync(s.workspaceDir), false, "the workspace is gone");
      });
      assert.equal(readFileSync(canary, "utf8"), `${tag}\n`, "the canary survived the delete");
      assert.deepEqual(readdirSync(canaryDir), ["canary.txt"]);
    } finally {
      rmSync(canaryDir, { recursive: true, force: true });
    }
  });

  it("fs:name-traversal: names with .. or / are rejected with InvalidArgumentError and create nothing", async () => {
    const before = tree(t.stateDir).filter((p) => !p.startsWith("warren.db"));
    const rows = t.warren.sandboxes.list({ all: true }).length;
    const outside = ["/etc/cron.d/x", "/abs", join(tmpdir(), "y"), join(tmpdir(), "escape")];
    const existed = outside.map((p) => existsSync(p));
    for (const name of [
      "..",
      "../escape",
      "a/b",
      "/abs",
      "../../../../etc/cron.d/x",
      "x/../../y",
      ".",
      ".hidden",
    ]) {
      await assert.rejects(
        t.warren.sandboxes.create({ driver: "bwrap", name }),
        (e: unknown) => e instanceof InvalidArgumentError && e.code === "INVALID_ARGUMENT",
        `name ${JSON.stringify(name)}`,
      );
    }
    assert.deepEqual(
      outside.map((p) => existsSync(p)),
      existed,
      "nothing was created outside the state dir",
    );
    assert.equal(t.warren.sandboxes.list({ all: true }).length, rows, "no row was written");
    assert.deepEqual(
      tree(t.stateDir).filter((p) => !p.startsWith("warren.db")),
      before,
      "nothing was created under the state dir",
    );
  });

  it("fs:holder-stdio: the descriptors the sandbox's pid 1 and 2 inherit lead to no host file", () =>
    scenario(t, async ({ create, sh, stateDir, warren }) => {
      const s = await create();
      const tag = nonce();
      // Attack 1: reopen pid 1's and 2's stdio through /proc. Attack 2: take a copy of each with
      // pidfd_getfd(2) (allowed for a process of the same uid without Yama) and write through it.
      await sh(
        s.id,
        `for p in 1 2; do for f in 0 1 2; do echo ${tag} >> /proc/$p/fd/$f; done; done 2>/dev/null; true`,
      );
      if (existsSync("/usr/bin/perl")) {
        const perl =
          "for my $pid (1, 2) { my $p = syscall(434, $pid, 0); next if $p < 0; for my $n (0, 1, 2) { " +
          "my $fd = syscall(438, $p, $n, 0); next if $fd < 0; " +
          'print "GOT $pid/$n ", readlink("/proc/self/fd/$fd"), "\\n"; ' +
          'open(my $fh, ">&=", $fd) or next; local $SIG{PIPE} = "IGNORE"; print $fh "' +
          tag +
          '\\n"; close $fh; } }';
        const r = await warren.sandboxes.exec(s.id, { argv: ["perl", "-e", perl], timeoutMs: 10000 });
        // The attack is real: the descriptors can be taken (so the test would see a host file).
        assert.match(r.stdout, /^GOT 2\/1 /m, `pidfd_getfd did not work: ${r.stdout}${r.stderr}`);
        for (const line of r.stdout.split("\n").filter(Boolean)) {
          assert.match(
            line,
            / (\/dev\/null|(pipe|socket):\[\d+\])$/,
            `inherited descriptor is a file: ${line}`,
          );
        }
      }
      // The journal (the database) holds the commands, tag included; no other file may.
      const hits = spawnSync("grep", ["-rlF", "--exclude=warren.db*", tag, stateDir], {
        encoding: "utf8",
      }).stdout;
      assert.equal(hits, "", "the sandbox wrote into a host file outside /workspace");
    }));
});
