/**
 * Builds the command lines of the bwrap driver: the holder (one bubblewrap per sandbox) and the
 * command runner (join the holder's namespaces with nsenter). Pure functions, unit-tested.
 */
import type { RuntimeConfig } from "../../core/driver.js";

/** uid and gid of the sandbox user inside the sandbox. */
export const INNER_UID = 1000;

/** Top-level host directories that may be symlinks into /usr (merged-/usr) or real directories. */
export type RootLinks = Array<
  { name: string; kind: "symlink"; target: string } | { name: string; kind: "dir" }
>;

/** Arguments of bwrap for the holder of one sandbox. */
export function holderArgs(config: RuntimeConfig, etcDir: string, rootLinks: RootLinks): string[] {
  const a = [
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    ...(config.network === "none" ? ["--unshare-net"] : []),
    "--uid",
    String(INNER_UID),
    "--gid",
    String(INNER_UID),
    "--hostname",
    config.hostname,
  ];
  const rootfs = config.environment.rootfsPath;
  if (rootfs === null) {
    a.push("--ro-bind", "/usr", "/usr");
    for (const l of rootLinks) {
      if (l.kind === "symlink") a.push("--symlink", l.target, `/${l.name}`);
      else a.push("--ro-bind", `/${l.name}`, `/${l.name}`);
    }
    a.push("--ro-bind", etcDir, "/etc", "--ro-bind-try", "/etc/alternatives", "/etc/alternatives");
  } else {
    a.push("--ro-bind", rootfs, "/");
    for (const f of ETC_FILES) a.push("--ro-bind", `${etcDir}/${f}`, `/etc/${f}`);
  }
  a.push(
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "--bind",
    config.workspaceDir,
    "/workspace",
    "--chdir",
    "/workspace",
    "--new-session",
    "--info-fd",
    "3",
    "--",
    "sleep",
    "infinity",
  );
  return a;
}

/** Files of the generated minimal /etc that are laid over a root filesystem's own. */
export const ETC_FILES = ["passwd", "group", "hostname", "hosts"];

/** Contents of the generated minimal /etc. */
export function etcFiles(hostname: string): Record<string, string> {
  return {
    passwd: `root:x:0:0:root:/root:/bin/sh\nuser:x:${INNER_UID}:${INNER_UID}:sandbox user:/workspace:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\nuser:x:${INNER_UID}:\nnogroup:x:65534:\n`,
    hostname: `${hostname}\n`,
    hosts: `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    "resolv.conf": "",
  };
}

/** The default environment of every command (the sandbox's and the command's own go over it). */
export function baseEnv(hostname: string): Record<string, string> {
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/workspace",
    USER: "user",
    LOGNAME: "user",
    HOSTNAME: hostname,
    LANG: "C.UTF-8",
  };
}

/**
 * A /bin/sh script that writes its own pid into each `cgroup.procs` file given before `--`, then
 * execs the rest. It runs on the host as root with an empty environment, so nothing the caller
 * passes can change what it or nsenter load.
 */
export const JOIN_CGROUPS_SCRIPT =
  'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';

/** argv (after the cgroup joiner) that runs a command inside the holder's namespaces. */
export function nsenterArgs(
  initPid: number,
  cwd: string,
  env: Record<string, string>,
  argv: string[],
): string[] {
  return [
    "/usr/bin/nsenter",
    "-t",
    String(initPid),
    "-U",
    "-m",
    "-u",
    "-i",
    "-n",
    "-p",
    "-C",
    "-S",
    String(INNER_UID),
    "-G",
    String(INNER_UID),
    `--wdns=${cwd}`,
    "--",
    "/usr/bin/env",
    "-i",
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    ...argv,
  ];
}
