import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { firecrackerConfig } from "./firecracker.js";
import { kernelCmdline, qemuArgs, type QemuSpec } from "./qemu.js";
import { idMap } from "./virtiofsd.js";

const spec = (over: Partial<QemuSpec> = {}): QemuSpec => ({
  name: "sbx-1",
  dir: "/state/drivers/microvm/sbx-1",
  kernel: "/env/vmlinuz",
  initrd: "/env/initrd.img",
  rootDisk: "/state/drivers/microvm/sbx-1/root.qcow2",
  cmdline: "console=ttyS0",
  acceleration: "tcg",
  vcpus: 2,
  memoryMiB: 256,
  ports: 4,
  virtiofsSocket: "/state/drivers/microvm/sbx-1/vfs/vfs.sock",
  runAs: 61001,
  ...over,
});

const after = (args: string[], flag: string): string[] =>
  args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));

describe("microvm command lines", () => {
  it("boots a microvm with the VM's vcpus and memory, shared memory for virtiofs, and no reboot", () => {
    const a = qemuArgs(spec());
    assert.deepEqual(after(a, "-accel"), ["tcg,tb-size=64"]);
    assert.deepEqual(after(a, "-cpu"), ["max"]);
    assert.deepEqual(after(a, "-smp"), ["2"]);
    assert.deepEqual(after(a, "-m"), ["256M"]);
    assert.ok(after(a, "-object").includes("memory-backend-memfd,id=mem,size=256M,share=on"));
    assert.ok(after(a, "-M")[0].startsWith("microvm,"));
    assert.ok(a.includes("-no-reboot") && a.includes("-nodefaults"));
    assert.deepEqual(after(qemuArgs(spec({ acceleration: "kvm" })), "-cpu"), ["host"]);
    assert.deepEqual(after(qemuArgs(spec({ acceleration: "kvm" })), "-accel"), ["kvm"]);
  });

  it("has no network device, one socket per agent port, and drops privileges under seccomp", () => {
    const a = qemuArgs(spec());
    assert.ok(!a.some((x) => /netdev|virtio-net|-nic/.test(x)));
    assert.equal(after(a, "-device").filter((d) => d.startsWith("virtserialport,")).length, 4);
    assert.ok(
      after(a, "-chardev").some((c) =>
        c.includes("path=/state/drivers/microvm/sbx-1/port-3.sock,server=on,wait=off"),
      ),
    );
    assert.ok(after(a, "-device").includes("vhost-user-fs-device,chardev=fs,tag=ws"));
    assert.deepEqual(after(a, "-runas"), ["61001:61001"]);
    assert.match(after(a, "-sandbox")[0], /^on,/);
    assert.ok(
      !after(qemuArgs(spec({ virtiofsSocket: null })), "-device").some((d) => d.startsWith("vhost-user-fs")),
    );
  });

  it("tells the agent its hostname, limits and channels on the kernel command line", () => {
    const c = kernelCmdline({
      hostname: "my box!",
      pidsMax: 64,
      acceleration: "tcg",
      workspace: "virtiofs",
      channel: "serial",
      ports: 4,
    });
    for (const part of [
      "warren.hostname=my-box-",
      "warren.pids=64",
      "warren.ws=virtiofs",
      "warren.chan=serial",
      "warren.ports=4",
      "tsc_early_khz=2600000",
    ])
      assert.ok(c.split(" ").includes(part), part);
    assert.ok(
      !kernelCmdline({
        hostname: "b",
        pidsMax: 1,
        acceleration: "kvm",
        workspace: "none",
        channel: "vsock",
      }).includes("tsc_early_khz"),
    );
  });

  it("maps guest root and the guest user to unprivileged host uids for virtiofsd", () => {
    assert.equal(idMap(61001, 61000), "0 61001 1\n1000 61000 1\n");
  });

  it("gives Firecracker a vsock, the root and workspace disks, and no network interface", () => {
    const c = firecrackerConfig({
      name: "sbx-1",
      dir: "/d",
      vmlinux: "/env/vmlinux",
      initrd: "/env/initrd.img",
      rootDisk: "/d/root.ext4",
      workspaceDisk: "/d/workspace.ext4",
      cmdline: "console=ttyS0",
      vcpus: 1,
      memoryMiB: 512,
    });
    assert.equal(c["network-interfaces"], undefined);
    assert.deepEqual((c.vsock as { uds_path: string }).uds_path, "/d/vsock.sock");
    assert.deepEqual(
      (c.drives as Array<{ drive_id: string }>).map((d) => d.drive_id),
      ["root", "workspace"],
    );
  });
});
