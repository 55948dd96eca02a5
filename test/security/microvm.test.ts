/**
 * Isolation of the microvm driver (one VM for every check: under software emulation boots are
 * slow). The guest has its own kernel, disk and processes; the only host directory it reaches is
 * its workspace, over virtiofs, where `..` and symlinks resolve inside the guest; what it writes
 * there belongs to the unprivileged sandbox uid; the helpers serving it (QEMU, virtiofsd) are not
 * root; and it has no network device, so a server on the host that the host itself reaches is
 * not reachable from the guest.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { basename, join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Sandbox } from "../../src/core/types.js";
import { processesMentioning } from "../../src/drivers/microvm/processes.js";
import { ensureVmEnvironment } from "../integration/microvm-fixture.js";
import { testWarren, type TestWarren } from "../helpers/warren.js";
import { nonce } from "./support.js";

await ensureVmEnvironment();
async function skipReason(): Promise<string | false> {
  const t = await testWarren();
  try {
    const p = await t.warren.registry.get("microvm").probe();
    return p.usable ? false : `microvm unusable here: ${p.reason}`;
  } finally {
    await t.dispose();
  }
}
const skip = await skipReason();
if (skip) console.log(`# security (microvm): skipping: ${skip}`);

/** The uid and user namespace of a host process. */
function credentials(pid: number): { uid: number; userns: string } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
  return { uid, userns: readFileSync(`/proc/${pid}/uid_map`, "utf8").trim() };
}

describe("security: microvm", { skip }, () => {
  let t: TestWarren;
  let s: Sandbox;
  let secretDir: string;
  const mark = nonce();
  const sh = async (script: string) =>
    t.warren.sandboxes.exec(s.id, { argv: ["sh", "-c", script], timeoutMs: 20000 });

  before(async () => {
    t = await testWarren();
    secretDir = join(t.stateDir, `secret-${mark}`);
    mkdirSync(secretDir);
    writeFileSync(join(secretDir, "secret.txt"), `host secret ${mark}\n`);
    writeFileSync(`/tmp/warren-secret-${mark}`, `host secret ${mark}\n`);
    s = await t.warren.sandboxes.create({ driver: "microvm", labels: { suite: "security" } });
  });
  after(async () => {
    rmSync(`/tmp/warren-secret-${mark}`, { force: true });
    await t.dispose();
  });

  it("host files outside the workspace do not exist in the guest, by any path", async () => {
    const rel = relative(s.workspaceDir, join(secretDir, "secret.txt"));
    // Symlinks planted on the host side of the share resolve inside the guest.
    symlinkSync(join(secretDir, "secret.txt"), join(s.workspaceDir, "abs-link"));
    symlinkSync("..", join(s.workspaceDir, "up"));
    const r = await sh(
      [
        `cat /tmp/warren-secret-${mark} ${join(secretDir, "secret.txt")} /workspace/${rel} /workspace/abs-link 2>&1`,
        `cat /workspace/up/${rel} /workspace/up/up/up/${relative("/", secretDir)}/secret.txt 2>&1`,
        "readlink -f /workspace/..; readlink -f /workspace/up",
        "grep -c virtiofs /proc/mounts; ls /sys/block",
      ].join("; "),
    );
    assert.doesNotMatch(r.stdout, /host secret/);
    assert.equal(r.stdout.match(/No such file or directory/g)?.length, 6);
    const lines = r.stdout.trim().split("\n");
    assert.deepEqual(lines.slice(-4), ["/", "/", "1", "vda"]);
  });

  it("sees only its own processes", async () => {
    const r = await sh("cat /proc/[0-9]*/comm 2>/dev/null | sort -u");
    const names = r.stdout.trim().split("\n");
    assert.ok(names.includes("init"), names.join(","));
    for (const host of ["node", "qemu-system-x86", "virtiofsd", "systemd"])
      assert.ok(!names.includes(host), host);
  });

  it("what the guest writes to the workspace belongs to the sandbox uid, setuid bits included", async () => {
    const r = await sh("echo x > mine; cp /bin/true suid; chmod 4755 suid; chown root suid 2>&1; echo $?");
    assert.match(r.stdout, /1\n$/, "the guest user cannot chown to root");
    for (const f of ["mine", "suid"]) {
      const st = statSync(join(s.workspaceDir, f));
      assert.equal(st.uid, t.warren.config.sandboxUid, f);
      assert.notEqual(st.uid, 0);
    }
  });

  it("QEMU and virtiofsd run as an unprivileged uid; virtiofsd in a user namespace of its own", () => {
    const procs = processesMentioning(join(t.stateDir, "drivers", "microvm", s.id) + "/");
    const qemu = procs.find((p) => exeOf(p.pid) === "qemu-system-x86_64");
    const vfs = procs.find((p) => exeOf(p.pid) === "virtiofsd");
    assert.ok(qemu && vfs, procs.map((p) => p.cmdline.slice(0, 60)).join("; "));
    const helper = t.warren.config.sandboxUid + 1;
    assert.equal(credentials(qemu.pid).uid, helper);
    const v = credentials(vfs.pid);
    assert.equal(v.uid, helper);
    assert.notEqual(
      v.userns,
      credentials(process.pid).userns,
      "virtiofsd is not in the host's user namespace",
    );
  });

  it("has no network device and cannot reach a server the host reaches", async () => {
    let accepted = 0;
    const server: Server = createServer((c) => {
      accepted++;
      c.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "0.0.0.0", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const hostIps = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a && a.family === "IPv4")
        .map((a) => a!.address);
      const targets = [...hostIps, "10.0.2.2", "1.1.1.1"];
      const r = await sh(
        [
          "ls /sys/class/net",
          ...targets.map(
            (ip) => `bash -c 'exec 3<>/dev/tcp/${ip}/${port}' 2>/dev/null && echo "reached ${ip}"`,
          ),
          "true",
        ].join("; "),
      );
      assert.deepEqual(r.stdout.trim().split("\n"), ["lo"]);
      assert.equal(accepted, 0);
    } finally {
      server.close();
    }
  });
});

/** Base name of a host process's executable. */
function exeOf(pid: number): string {
  try {
    return basename(readlinkSync(`/proc/${pid}/exe`));
  } catch {
    return "";
  }
}
