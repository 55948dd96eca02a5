/**
 * The environment catalog: `host` (a read-only view of the host's /usr, always installed) and
 * `debian-bookworm` (a minimal root filesystem built with debootstrap, cached in the state dir
 * with its size and checksum). A build goes to a temporary directory and is renamed into place
 * only when complete, so a failed or interrupted pull leaves nothing half-made.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { EnvironmentRef } from "../core/driver.js";
import { InternalError, InvalidStateError, NotFoundError, DriverUnavailableError } from "../core/errors.js";
import { VM_ENVIRONMENT, buildVmEnvironment } from "./vm-environment.js";

/** What the catalog says about one environment. */
export interface EnvironmentInfo {
  name: string;
  description: string;
  /** Version of the installed build (or what a pull would build). */
  version: string;
  /** Where it comes from. */
  source: string;
  installed: boolean;
  /** Bytes on disk, when installed and measured. */
  sizeBytes: number | null;
  /** sha256 over the tree (paths, modes, link targets, contents), when installed. */
  checksum: string | null;
  /** Host path of the root filesystem; null for `host`. */
  rootfsPath: string | null;
  builtAt: string | null;
}

interface Meta {
  version: string;
  source: string;
  sizeBytes: number;
  checksum: string;
  builtAt: string;
}

/** Progress of a pull: a phase and a line of detail. */
export type PullProgress = (event: { phase: string; detail: string }) => void;

/** Debian mirror: WARREN_DEBIAN_MIRROR, else the first one apt is configured with, else deb.debian.org. */
export function debianMirror(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WARREN_DEBIAN_MIRROR) return env.WARREN_DEBIAN_MIRROR;
  const files = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"];
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, "utf8");
    const uri = /^URIs:\s*(\S+)/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+main/m.exec(text);
    if (uri && !uri[1].includes("security")) return uri[1];
  }
  return "http://deb.debian.org/debian";
}

function hostVersion(): string {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** Size and checksum of a directory tree, walked in sorted order. */
export function measureTree(root: string): { sizeBytes: number; checksum: string } {
  const hash = createHash("sha256");
  let size = 0;
  const walk = (rel: string): void => {
    const abs = join(root, rel);
    const st = lstatSync(abs);
    hash.update(`${rel}\0${st.mode}\0`);
    if (st.isSymbolicLink()) hash.update(readlinkSync(abs));
    else if (st.isFile()) {
      size += st.size;
      hash.update(readFileSync(abs));
    } else if (st.isDirectory()) {
      for (const name of readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
    }
    hash.update("\n");
  };
  walk("");
  return { sizeBytes: size, checksum: `sha256:${hash.digest("hex")}` };
}

/** The environment catalog of one state directory. */
export class Environments {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "environments");
  }

  private meta(name: string): Meta | null {
    try {
      return JSON.parse(readFileSync(join(this.dir, name, "meta.json"), "utf8"));
    } catch {
      return null;
    }
  }

  /** Every environment Warren knows, installed or not. */
  list(): EnvironmentInfo[] {
    const deb = this.meta("debian-bookworm");
    return [
      {
        name: "host",
        description: "read-only view of the host's /usr; instant, nothing to download",
        version: hostVersion(),
        source: "host /usr (read-only bind mount)",
        installed: true,
        sizeBytes: null,
        checksum: null,
        rootfsPath: null,
        builtAt: null,
      },
      {
        name: "debian-bookworm",
        description: "minimal Debian 12 root filesystem (debootstrap --variant=minbase)",
        version: deb?.version ?? "12 (bookworm)",
        source: deb?.source ?? `debootstrap from ${debianMirror()}`,
        installed: deb !== null,
        sizeBytes: deb?.sizeBytes ?? null,
        checksum: deb?.checksum ?? null,
        rootfsPath: deb ? join(this.dir, "debian-bookworm", "rootfs") : null,
        builtAt: deb?.builtAt ?? null,
      },
      this.vmInfo(),
    ];
  }

  /** The microvm driver's environment; its "rootfs" is the directory of kernel, initrd and image. */
  private vmInfo(): EnvironmentInfo {
    const vm = this.meta(VM_ENVIRONMENT);
    return {
      name: VM_ENVIRONMENT,
      description:
        "Debian 12 for the microvm driver: cloud kernel, initramfs with the guest agent, ext4 root image",
      version: vm?.version ?? "12 (bookworm), Debian cloud kernel",
      source: vm?.source ?? `debootstrap from ${debianMirror()}; linux-image-cloud-amd64 from apt`,
      installed: vm !== null,
      sizeBytes: vm?.sizeBytes ?? null,
      checksum: vm?.checksum ?? null,
      rootfsPath: vm ? join(this.dir, VM_ENVIRONMENT) : null,
      builtAt: vm?.builtAt ?? null,
    };
  }

  /**
   * One environment.
   * @throws NotFoundError for an unknown name.
   */
  inspect(name: string): EnvironmentInfo {
    const env = this.list().find((e) => e.name === name);
    if (!env) {
      throw new NotFoundError(`no environment named "${name}"`, {
        hint: `known environments: ${this.list()
          .map((e) => e.name)
          .join(", ")} (see \`warren env ls\`)`,
      });
    }
    return env;
  }

  /**
   * The reference a driver needs.
   * @throws NotFoundError for an unknown name; InvalidStateError when not installed.
   */
  resolve(name: string): EnvironmentRef {
    const env = this.inspect(name);
    if (!env.installed) {
      throw new InvalidStateError(`environment "${name}" is not installed`, {
        hint: `install it with \`warren env pull ${name}\``,
      });
    }
    return { name, rootfsPath: env.rootfsPath };
  }

  /**
   * Builds (or rebuilds with `force`) an environment. Nothing is left behind on failure.
   * @throws NotFoundError, DriverUnavailableError (debootstrap missing), InternalError (build failed).
   */
  async pull(
    name: string,
    options: { force?: boolean; onProgress?: PullProgress } = {},
  ): Promise<EnvironmentInfo> {
    const env = this.inspect(name);
    if (name === "host") return env;
    if (env.installed && !options.force) return env;
    if (!existsSync("/usr/sbin/debootstrap")) {
      throw new DriverUnavailableError("debootstrap is not installed", {
        hint: "apt-get install debootstrap",
      });
    }
    const progress = options.onProgress ?? (() => undefined);
    const final = join(this.dir, name);
    const tmp = join(this.dir, `.${name}.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const mirror = debianMirror();
    try {
      if (name === VM_ENVIRONMENT) {
        const meta = await buildVmEnvironment(tmp, { mirror, progress, debootstrap: runDebootstrap });
        writeFileSync(join(tmp, "meta.json"), JSON.stringify(meta, null, 2));
        rmSync(final, { recursive: true, force: true });
        renameSync(tmp, final);
        progress({
          phase: "done",
          detail: `${name} ${meta.version}, ${(meta.sizeBytes / 1048576).toFixed(0)} MiB`,
        });
        return this.inspect(name);
      }
      const rootfs = join(tmp, "rootfs");
      progress({ phase: "debootstrap", detail: `bookworm (minbase) from ${mirror}` });
      await runDebootstrap(["--variant=minbase", "bookworm", rootfs, mirror], progress);
      // Mount points the sandbox needs; a read-only root cannot grow them later.
      mkdirSync(join(rootfs, "workspace"), { recursive: true });
      for (const f of ["passwd", "group", "hostname", "hosts", "resolv.conf"]) {
        const path = join(rootfs, "etc", f);
        if (!existsSync(path)) writeFileSync(path, "");
      }
      progress({ phase: "checksum", detail: "measuring size and checksum" });
      const measured = measureTree(rootfs);
      const version = readFileSync(join(rootfs, "etc", "debian_version"), "utf8").trim();
      const meta: Meta = {
        version,
        source: `debootstrap from ${mirror}`,
        ...measured,
        builtAt: new Date().toISOString(),
      };
      writeFileSync(join(tmp, "meta.json"), JSON.stringify(meta, null, 2));
      rmSync(final, { recursive: true, force: true });
      renameSync(tmp, final);
      progress({
        phase: "done",
        detail: `${name} ${version}, ${(measured.sizeBytes / 1048576).toFixed(0)} MiB`,
      });
      return this.inspect(name);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Removes an installed environment.
   * @throws InvalidStateError for `host` or one that live sandboxes use (their ids are in details).
   */
  remove(name: string, usedBy: string[]): EnvironmentInfo {
    const env = this.inspect(name);
    if (name === "host")
      throw new InvalidStateError("the host environment is built in and cannot be removed");
    if (usedBy.length > 0) {
      throw new InvalidStateError(`environment "${name}" is used by ${usedBy.length} sandbox(es)`, {
        hint: `remove them first: warren rm ${usedBy.join(" ")}`,
        details: { sandboxes: usedBy },
      });
    }
    rmSync(join(this.dir, name), { recursive: true, force: true });
    return { ...env, installed: false, sizeBytes: null, checksum: null, rootfsPath: null, builtAt: null };
  }
}

function runDebootstrap(args: string[], progress: PullProgress): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/sbin/debootstrap", args, { stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const onLine = (chunk: Buffer): void => {
      for (const line of chunk.toString().split("\n")) {
        const m = /^I: (\S+) (.*)$/.exec(line.trim());
        if (m) progress({ phase: m[1].toLowerCase(), detail: m[2] });
        if (line.trim()) tail = (tail + "\n" + line).slice(-2000);
      }
    };
    child.stdout.on("data", onLine);
    child.stderr.on("data", onLine);
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(
            new InternalError(`debootstrap failed with code ${code}`, {
              hint: "check that the Debian mirror is reachable (set WARREN_DEBIAN_MIRROR to choose one)",
              details: { output: tail.trim() },
            }),
          ),
    );
  });
}
