/**
 * The Firecracker launcher, used instead of QEMU when a `firecracker` binary is found (PATH or
 * WARREN_FIRECRACKER), KVM works, and the VM environment has an uncompressed `vmlinux` whose
 * kernel finds virtio-mmio devices from the command line (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES;
 * Debian's cloud kernel lacks it). UNTESTED on Warren's own machines, which have neither usable
 * KVM nor Firecracker.
 *
 * Firecracker has no virtio-serial and no virtiofs: the agent listens on vsock port 1024 (reached
 * through Firecracker's Unix socket with `CONNECT 1024`), and the workspace is an ext4 disk image
 * kept in the VM's directory, made from the workspace directory on first start. So under
 * Firecracker the workspace persists across stop and start inside that image, and the host
 * workspace directory does not follow the guest's changes. The root disk is a reflink (or sparse)
 * copy of the environment's image.
 */
import { execFile, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { InternalError } from "../../core/errors.js";
import { spawnDetached } from "./processes.js";

const run = promisify(execFile);

/** The vsock port the agent listens on. */
export const AGENT_VSOCK_PORT = 1024;

/** Firecracker's vsock Unix socket in a VM's directory. */
export const vsockSocket = (dir: string): string => join(dir, "vsock.sock");

/** One Firecracker VM. */
export interface FirecrackerSpec {
  name: string;
  dir: string;
  vmlinux: string;
  initrd: string;
  rootDisk: string;
  workspaceDisk: string;
  cmdline: string;
  vcpus: number;
  memoryMiB: number;
}

/** Firecracker's configuration file (no network interface: the VM has no network). */
export function firecrackerConfig(s: FirecrackerSpec): Record<string, unknown> {
  return {
    "boot-source": {
      kernel_image_path: s.vmlinux,
      initrd_path: s.initrd,
      boot_args: `${s.cmdline} reboot=k pci=off warren.poweroff=reboot`,
    },
    drives: [
      { drive_id: "root", path_on_host: s.rootDisk, is_root_device: false, is_read_only: false },
      { drive_id: "workspace", path_on_host: s.workspaceDisk, is_root_device: false, is_read_only: false },
    ],
    "machine-config": { vcpu_count: s.vcpus, mem_size_mib: s.memoryMiB, smt: false },
    vsock: { guest_cid: 3, uds_path: vsockSocket(s.dir) },
  };
}

async function sh(what: string, file: string, args: string[]): Promise<void> {
  try {
    await run(file, args);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new InternalError(`${what} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/** Makes the VM's root disk (a clone of the image) and workspace disk, unless they exist. */
export async function prepareFirecrackerDisks(
  baseImage: string,
  spec: FirecrackerSpec,
  workspaceDir: string,
  workspaceMiB = 2048,
): Promise<void> {
  if (!existsSync(spec.rootDisk)) {
    await sh("copying the root image", "/bin/cp", [
      "--reflink=auto",
      "--sparse=always",
      baseImage,
      spec.rootDisk,
    ]);
  }
  if (!existsSync(spec.workspaceDisk)) {
    await sh("making the workspace disk", "/usr/sbin/mkfs.ext4", [
      "-q",
      "-F",
      "-L",
      "workspace",
      "-E",
      "root_owner=1000:1000",
      "-d",
      workspaceDir,
      spec.workspaceDisk,
      `${workspaceMiB}M`,
    ]);
  }
}

/** Starts Firecracker detached with its configuration file; the console goes to `logPath`. */
export function launchFirecracker(binary: string, spec: FirecrackerSpec, logPath: string): ChildProcess {
  const configPath = join(spec.dir, "firecracker.json");
  writeFileSync(configPath, JSON.stringify(firecrackerConfig(spec), null, 2));
  return spawnDetached(
    binary,
    ["--id", `warren-${spec.name}`, "--no-api", "--config-file", configPath],
    logPath,
  );
}
