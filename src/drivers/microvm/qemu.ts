/**
 * The QEMU launcher: a `-M microvm` machine (virtio-mmio devices, no PCI, no firmware) with the
 * root disk as a qcow2 overlay of the environment's image, the workspace over virtiofs, the
 * agent on virtio-serial ports (one Unix socket each), no network device at all, and the console
 * in a file. QEMU drops to an unprivileged uid (`-runas`) under a seccomp filter (`-sandbox`).
 * Command lines are built by pure functions (unit-tested).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { InternalError } from "../../core/errors.js";
import { portSocket } from "./channel.js";

const run = promisify(execFile);

/** How the guest runs: hardware virtualisation or QEMU's software emulation. */
export type Acceleration = "kvm" | "tcg";

/** What the agent reads from the kernel command line. */
export interface GuestOptions {
  hostname: string;
  pidsMax: number;
  acceleration: Acceleration;
  workspace: "virtiofs" | "block" | "none";
  channel: "serial" | "vsock";
  /** virtio-serial ports the agent waits for (channel "serial"). */
  ports?: number;
}

/** Kernel command line for a Warren guest. */
export function kernelCmdline(o: GuestOptions): string {
  const hostname = o.hostname.replace(/[^A-Za-z0-9.-]/g, "-").slice(0, 63) || "warren";
  return [
    "console=ttyS0",
    "quiet",
    "panic=-1",
    "8250.nr_uarts=1",
    "random.trust_cpu=on",
    // Under emulation TSC calibration can hang the boot (about 1 boot in 10): give the rate.
    ...(o.acceleration === "tcg" ? ["tsc_early_khz=2600000", "no_timer_check"] : []),
    `warren.hostname=${hostname}`,
    `warren.pids=${o.pidsMax}`,
    `warren.ws=${o.workspace}`,
    `warren.chan=${o.channel}`,
    ...(o.ports ? [`warren.ports=${o.ports}`] : []),
  ].join(" ");
}

/** One QEMU microvm. */
export interface QemuSpec {
  /** Shown by `ps` (`-name`); the sandbox id. */
  name: string;
  /** The VM's directory: port sockets, console log. */
  dir: string;
  kernel: string;
  initrd: string;
  /** qcow2 overlay of the environment's root image. */
  rootDisk: string;
  cmdline: string;
  acceleration: Acceleration;
  vcpus: number;
  memoryMiB: number;
  ports: number;
  /** virtiofsd's socket, or null for no workspace share. */
  virtiofsSocket: string | null;
  /** Unprivileged uid (and gid) QEMU drops to once its files are open. */
  runAs: number | null;
}

/** Console log of a VM (the guest kernel's and the agent's messages). */
export const consoleLog = (dir: string): string => join(dir, "console.log");

/** QEMU's argv (after the binary). */
export function qemuArgs(s: QemuSpec): string[] {
  const a = [
    "-name",
    `warren-${s.name}`,
    "-M",
    "microvm,x-option-roms=off,memory-backend=mem",
    "-accel",
    // TCG's translation cache may grow to 1 GiB by default; 64 MiB keeps an idle VM's QEMU smaller.
    s.acceleration === "tcg" ? "tcg,tb-size=64" : s.acceleration,
    "-cpu",
    s.acceleration === "kvm" ? "host" : "max",
    "-smp",
    String(s.vcpus),
    "-m",
    `${s.memoryMiB}M`,
    // Shared memory is what lets virtiofsd (vhost-user) reach the guest's buffers.
    "-object",
    `memory-backend-memfd,id=mem,size=${s.memoryMiB}M,share=on`,
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-no-reboot",
    "-chardev",
    `file,id=con,path=${consoleLog(s.dir)},append=on`,
    "-serial",
    "chardev:con",
    "-kernel",
    s.kernel,
    "-initrd",
    s.initrd,
    "-append",
    s.cmdline,
    "-global",
    "virtio-mmio.force-legacy=false",
    "-drive",
    `id=root,file=${s.rootDisk},format=qcow2,if=none,discard=unmap`,
    "-device",
    "virtio-blk-device,drive=root",
  ];
  if (s.virtiofsSocket) {
    a.push("-chardev", `socket,id=fs,path=${s.virtiofsSocket}`);
    a.push("-device", "vhost-user-fs-device,chardev=fs,tag=ws");
  }
  a.push("-device", `virtio-serial-device,max_ports=${s.ports + 1}`);
  for (let n = 0; n < s.ports; n++) {
    a.push("-chardev", `socket,id=p${n},path=${portSocket(s.dir, n)},server=on,wait=off`);
    a.push("-device", `virtserialport,chardev=p${n},name=warren.${n}`);
  }
  // elevateprivileges=deny would also forbid the setuid of -runas.
  a.push("-sandbox", "on,obsolete=deny,spawn=deny,resourcecontrol=deny");
  if (s.runAs !== null) a.push("-runas", `${s.runAs}:${s.runAs}`);
  return a;
}

/**
 * Makes `overlay` a qcow2 image whose reads fall through to `base` (raw) and whose writes stay
 * in the overlay: each VM's root disk costs only what it changes.
 * @throws InternalError when qemu-img fails
 */
export async function createOverlay(qemuImg: string, base: string, overlay: string): Promise<void> {
  try {
    await run(qemuImg, ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, overlay]);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new InternalError(`qemu-img could not create the root overlay: ${(e.stderr || e.message).trim()}`);
  }
}
