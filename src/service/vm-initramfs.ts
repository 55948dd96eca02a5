/**
 * The initramfs of a VM environment: a `newc` cpio archive holding the guest agent as `/init`,
 * the kernel modules it loads (in dependency order, listed in `/modules.order`) and the few
 * directories and device nodes the kernel needs before the agent mounts the root disk.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";

/** One member of a cpio archive. */
export type CpioEntry =
  | { path: string; kind: "dir"; mode: number }
  | { path: string; kind: "file"; mode: number; data: Buffer }
  | { path: string; kind: "chardev"; mode: number; major: number; minor: number };

const hex = (n: number): string => n.toString(16).padStart(8, "0");
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

/** Serialises entries as a `newc` (SVR4, no CRC) cpio archive, as the kernel unpacks it. */
export function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const add = (path: string, mode: number, data: Buffer, rdev: [number, number]): void => {
    const name = Buffer.from(`${path}\0`);
    const fields = [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], name.length, 0];
    const header = Buffer.from(`070701${fields.map(hex).join("")}`);
    parts.push(header, name, pad4(header.length + name.length), data, pad4(data.length));
  };
  for (const e of entries) {
    if (e.kind === "dir") add(e.path, 0o040000 | e.mode, Buffer.alloc(0), [0, 0]);
    else if (e.kind === "file") add(e.path, 0o100000 | e.mode, e.data, [0, 0]);
    else add(e.path, 0o020000 | e.mode, Buffer.alloc(0), [e.major, e.minor]);
  }
  add("TRAILER!!!", 0, Buffer.alloc(0), [0, 0]);
  return Buffer.concat(parts);
}

/** Module names are compared with `-` and `_` as the same character, as the kernel does. */
const norm = (name: string): string => name.replace(/-/g, "_");

/** Names a module depends on, read from the `depends=` field of its `.modinfo` section. */
export function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf("\0depends=");
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const list = ko.subarray(at + 9, end).toString();
  return list ? list.split(",").map(norm) : [];
}

/** Every `.ko` file under a kernel's module directory, by module name. */
export function indexModules(moduleDir: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".ko")) found.set(norm(basename(name, ".ko")), path);
    }
  };
  walk(moduleDir);
  return found;
}

/**
 * The modules to load for `wanted`, dependencies first. A wanted module that is missing is taken
 * to be built into the kernel (listed in modules.builtin), so it is skipped.
 */
export function moduleLoadOrder(wanted: string[], index: Map<string, string>): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    const key = norm(name);
    if (seen.has(key)) return;
    seen.add(key);
    const path = index.get(key);
    if (!path) return;
    for (const dep of moduleDepends(readFileSync(path))) visit(dep);
    order.push(path);
  };
  wanted.forEach(visit);
  return order;
}

/** The initramfs: agent as /init, the modules in load order, and the nodes the kernel needs. */
export function buildInitramfs(agent: Buffer, modulePaths: string[]): Buffer {
  const entries: CpioEntry[] = [
    { path: "dev", kind: "dir", mode: 0o755 },
    { path: "dev/console", kind: "chardev", mode: 0o600, major: 5, minor: 1 },
    { path: "proc", kind: "dir", mode: 0o755 },
    { path: "sys", kind: "dir", mode: 0o755 },
    { path: "newroot", kind: "dir", mode: 0o755 },
    { path: "modules", kind: "dir", mode: 0o755 },
    { path: "init", kind: "file", mode: 0o755, data: agent },
  ];
  const names = modulePaths.map((p) => basename(p));
  modulePaths.forEach((p, i) =>
    entries.push({ path: `modules/${names[i]}`, kind: "file", mode: 0o644, data: readFileSync(p) }),
  );
  entries.push({
    path: "modules.order",
    kind: "file",
    mode: 0o644,
    data: Buffer.from(names.map((n) => `${n}\n`).join("")),
  });
  return cpioNewc(entries);
}
