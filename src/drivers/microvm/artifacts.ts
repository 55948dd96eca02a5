/**
 * The files a VM boots from: a VM environment's directory (built by `warren env pull
 * debian-bookworm-vm`) holding `vmlinuz`, `initrd.img` (with the guest agent) and `rootfs.ext4`,
 * plus `meta.json` with its checksum. Firecracker also needs an uncompressed `vmlinux`.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { EnvironmentRef } from "../../core/driver.js";
import { InvalidStateError, NotSupportedError } from "../../core/errors.js";

/** Name of the VM environment in the catalog. */
export const VM_ENVIRONMENT = "debian-bookworm-vm";

/** A VM environment's files. */
export interface VmArtifacts {
  dir: string;
  kernel: string;
  initrd: string;
  rootImage: string;
  /** Uncompressed kernel for Firecracker, when the directory has one. */
  vmlinux: string | null;
  /** The build's checksum (meta.json): a root overlay made from another build is remade. */
  checksum: string;
  version: string;
}

/** The artifacts in `dir`, or null when it is not a built VM environment. */
export function artifactsIn(dir: string): VmArtifacts | null {
  const files = { kernel: "vmlinuz", initrd: "initrd.img", rootImage: "rootfs.ext4" };
  if (!Object.values(files).every((f) => existsSync(join(dir, f)))) return null;
  let meta: { checksum?: string; version?: string } = {};
  try {
    meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8"));
  } catch {
    return null;
  }
  return {
    dir,
    kernel: join(dir, files.kernel),
    initrd: join(dir, files.initrd),
    rootImage: join(dir, files.rootImage),
    vmlinux: existsSync(join(dir, "vmlinux")) ? join(dir, "vmlinux") : null,
    checksum: meta.checksum ?? "unknown",
    version: meta.version ?? "unknown",
  };
}

/**
 * The artifacts to boot for a sandbox's environment. The `host` environment (the default) means
 * the default VM environment, since a VM cannot see the host's /usr.
 * @throws NotSupportedError for a root-filesystem environment; InvalidStateError when the VM
 *   environment is not built
 */
export function resolveArtifacts(env: EnvironmentRef, defaultDir: string): VmArtifacts {
  const dir = env.rootfsPath ?? defaultDir;
  const found = artifactsIn(dir);
  if (found) return found;
  if (env.rootfsPath !== null) {
    throw new NotSupportedError(`the microvm driver boots VM environments, not "${env.name}"`, {
      hint: `use --env ${VM_ENVIRONMENT} (or the default), after \`warren env pull ${VM_ENVIRONMENT}\``,
    });
  }
  throw new InvalidStateError(`the ${VM_ENVIRONMENT} environment is not installed (looked in ${dir})`, {
    hint: `build it with \`warren env pull ${VM_ENVIRONMENT}\` (about a minute)`,
  });
}
