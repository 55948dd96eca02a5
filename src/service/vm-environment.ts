/**
 * Builds `debian-bookworm-vm`, the environment of the microvm driver: a Debian cloud kernel
 * (`apt-get download` + `dpkg-deb -x`), an initramfs holding Warren's guest agent (C, compiled
 * static with gcc) and the virtio modules it loads, and an ext4 root image made from a debootstrap
 * root filesystem (`mkfs.ext4 -d`). Sandboxes boot a copy-on-write overlay of that image.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { DriverUnavailableError, InternalError } from "../core/errors.js";
import { buildInitramfs, indexModules, moduleLoadOrder } from "./vm-initramfs.js";

const run = promisify(execFile);

/** Name of the VM environment in the catalog. */
export const VM_ENVIRONMENT = "debian-bookworm-vm";

/** Bump when the artifacts change shape, so an old build is seen as outdated. */
export const VM_BUILD_VERSION = 1;

/** Files of a built VM environment (the microvm driver reads them by these names). */
export const VM_ARTIFACTS = { kernel: "vmlinuz", initrd: "initrd.img", rootImage: "rootfs.ext4" } as const;

/** Modules the agent loads at boot (dependencies are added); absent ones are built in. */
export const VM_MODULES = [
  "virtio_mmio",
  "virtio_blk",
  "virtio_console",
  "virtiofs",
  "vmw_vsock_virtio_transport",
];

/** Debian's cloud kernel: small, with virtio drivers as modules. */
const KERNEL_META_PACKAGE = "linux-image-cloud-amd64";

/** Root image free space beyond the root filesystem (the image file is sparse). */
const ROOT_IMAGE_SPARE_BYTES = 768 * 1048576;

/** What the build records in meta.json (the catalog's fields plus the VM's own). */
export interface VmMeta {
  version: string;
  source: string;
  sizeBytes: number;
  checksum: string;
  builtAt: string;
  buildVersion: number;
  kernelRelease: string;
  modules: string[];
  /** sha256 of the agent's sources the initramfs was built from (see agentSourceHash). */
  agentHash: string;
}

/** What the builder needs from the catalog. */
export interface VmBuildContext {
  mirror: string;
  progress: (event: { phase: string; detail: string }) => void;
  /** Runs debootstrap with these arguments. */
  debootstrap: (args: string[], progress: VmBuildContext["progress"]) => Promise<void>;
}

/** The guest agent's C sources: next to the driver in the source tree (also from dist/). */
export function agentSourceDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    join(here, "../drivers/microvm/agent"),
    join(here, "../../../src/drivers/microvm/agent"),
  ];
  const found = candidates.find((d) => existsSync(join(d, "agent.c")));
  if (!found) throw new InternalError(`guest agent sources not found (looked in ${candidates.join(", ")})`);
  return found;
}

/** sha256 over the guest agent's sources: tells whether a build has the current agent. */
export function agentSourceHash(dir = agentSourceDir()): string {
  const hash = createHash("sha256");
  for (const f of readdirSync(dir)
    .filter((n) => /\.[ch]$/.test(n))
    .sort()) {
    hash.update(`${f}\0`).update(readFileSync(join(dir, f)));
  }
  return hash.digest("hex");
}

/** Tools the build runs, with the Debian package that has each. */
const TOOLS: Array<[string, string]> = [
  ["/usr/bin/apt-get", "apt"],
  ["/usr/bin/dpkg-deb", "dpkg"],
  ["/usr/bin/gcc", "gcc libc6-dev"],
  ["/usr/sbin/mkfs.ext4", "e2fsprogs"],
];

async function sh(what: string, file: string, args: string[], cwd?: string): Promise<string> {
  try {
    return (await run(file, args, { cwd, maxBuffer: 16 * 1048576 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new InternalError(
      `${what} failed: ${(e.stderr || e.message).trim().split("\n").slice(-3).join(" | ")}`,
      {
        cause: err,
      },
    );
  }
}

/** The versioned kernel package the meta package points to, e.g. linux-image-6.1.0-56-cloud-amd64. */
async function kernelPackage(): Promise<string> {
  const out = await sh("apt-cache depends", "/usr/bin/apt-cache", ["depends", KERNEL_META_PACKAGE]);
  const m = /Depends:\s*(linux-image-\S+)/.exec(out);
  if (!m) {
    throw new DriverUnavailableError(`apt knows no ${KERNEL_META_PACKAGE}`, {
      hint: "run `apt-get update` on a Debian 12 (amd64) host with the main component enabled",
    });
  }
  return m[1];
}

async function sha256File(path: string, hash = createHash("sha256")): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1048576 }))
    hash.update(chunk as Buffer);
}

function treeBytes(dir: string): number {
  let size = 0;
  for (const name of readdirSync(dir)) {
    const st = statSync(join(dir, name), { throwIfNoEntry: false });
    if (!st) continue;
    size += st.isDirectory() && !st.isSymbolicLink() ? treeBytes(join(dir, name)) + 4096 : st.size + 4096;
  }
  return size;
}

/** Gives the root filesystem the sandbox user and the mount points the agent uses. */
function prepareRootfs(rootfs: string): void {
  const etc = (f: string): string => join(rootfs, "etc", f);
  const passwd = readFileSync(etc("passwd"), "utf8");
  if (!/^user:/m.test(passwd))
    writeFileSync(etc("passwd"), `${passwd}user:x:1000:1000:sandbox user:/workspace:/bin/sh\n`);
  const group = readFileSync(etc("group"), "utf8");
  if (!/^user:/m.test(group)) writeFileSync(etc("group"), `${group}user:x:1000:\n`);
  for (const d of ["workspace", "tmp", "run", "proc", "sys", "dev"])
    mkdirSync(join(rootfs, d), { recursive: true });
  writeFileSync(etc("hostname"), "warren\n");
  writeFileSync(etc("resolv.conf"), "");
}

/**
 * Builds the VM environment's files into `dir` and returns what meta.json should hold.
 * @throws DriverUnavailableError when a build tool is missing; InternalError when a step fails.
 */
export async function buildVmEnvironment(dir: string, ctx: VmBuildContext): Promise<VmMeta> {
  for (const [tool, pkg] of TOOLS) {
    if (!existsSync(tool)) {
      throw new DriverUnavailableError(`${tool} is missing (needed to build ${VM_ENVIRONMENT})`, {
        hint: `apt-get install ${pkg}`,
      });
    }
  }
  if (process.arch !== "x64")
    throw new DriverUnavailableError(`${VM_ENVIRONMENT} is built for x86_64 hosts only`);
  const work = join(dir, "build");
  mkdirSync(work, { recursive: true });
  try {
    return await build(dir, work, ctx);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function build(dir: string, work: string, ctx: VmBuildContext): Promise<VmMeta> {
  const { progress } = ctx;

  progress({ phase: "agent", detail: "compiling the guest agent (gcc -static)" });
  const src = agentSourceDir();
  const agentPath = join(work, "agent");
  await sh("compiling the guest agent", "/usr/bin/gcc", [
    "-static",
    "-Os",
    "-s",
    "-Wall",
    "-o",
    agentPath,
    join(src, "agent.c"),
    join(src, "boot.c"),
  ]);

  const pkg = await kernelPackage();
  progress({ phase: "kernel", detail: `apt-get download ${pkg}` });
  await sh("apt-get download", "/usr/bin/apt-get", ["download", "-q", pkg], work);
  const deb = readdirSync(work).find((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"));
  if (!deb) throw new InternalError(`apt-get download left no ${pkg} package`);
  const kroot = join(work, "kernel");
  await sh("dpkg-deb -x", "/usr/bin/dpkg-deb", ["-x", join(work, deb), kroot]);
  const release = readdirSync(join(kroot, "lib", "modules"))[0];
  writeFileSync(join(dir, VM_ARTIFACTS.kernel), readFileSync(join(kroot, "boot", `vmlinuz-${release}`)));

  progress({ phase: "initramfs", detail: `agent and ${VM_MODULES.join(", ")} (with dependencies)` });
  const order = moduleLoadOrder(VM_MODULES, indexModules(join(kroot, "lib", "modules", release)));
  writeFileSync(join(dir, VM_ARTIFACTS.initrd), buildInitramfs(readFileSync(agentPath), order));

  const rootfs = join(work, "rootfs");
  progress({ phase: "debootstrap", detail: `bookworm (minbase) from ${ctx.mirror}` });
  await ctx.debootstrap(["--variant=minbase", "bookworm", rootfs, ctx.mirror], progress);
  prepareRootfs(rootfs);
  const debianVersion = readFileSync(join(rootfs, "etc", "debian_version"), "utf8").trim();

  const image = join(dir, VM_ARTIFACTS.rootImage);
  const sizeMiB = Math.ceil((treeBytes(rootfs) * 1.2 + ROOT_IMAGE_SPARE_BYTES) / 1048576);
  progress({ phase: "image", detail: `mkfs.ext4 -d (${sizeMiB} MiB, sparse)` });
  await sh("mkfs.ext4", "/usr/sbin/mkfs.ext4", [
    "-q",
    "-F",
    "-L",
    "warren-root",
    "-d",
    rootfs,
    image,
    `${sizeMiB}M`,
  ]);

  progress({ phase: "checksum", detail: "measuring size and checksum" });
  const hash = createHash("sha256");
  let sizeBytes = 0;
  for (const f of Object.values(VM_ARTIFACTS)) {
    hash.update(`${f}\0`);
    await sha256File(join(dir, f), hash);
    sizeBytes += statSync(join(dir, f)).blocks * 512;
  }
  return {
    version: `${debianVersion} (kernel ${release}, agent ${VM_BUILD_VERSION})`,
    source: `debootstrap from ${ctx.mirror}; ${pkg} from apt`,
    sizeBytes,
    checksum: `sha256:${hash.digest("hex")}`,
    builtAt: new Date().toISOString(),
    buildVersion: VM_BUILD_VERSION,
    kernelRelease: release,
    modules: order.map((p) => p.split("/").pop()!),
    agentHash: agentSourceHash(src),
  };
}
