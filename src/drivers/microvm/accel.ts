/**
 * Chooses how VMs run: KVM when /dev/kvm opens and a probe VM really boots with it (nested or
 * paravirtualised KVM may open fine and still fail to run a stock kernel), else QEMU's software
 * emulation (TCG), which works anywhere but is slow. A probe boot starts the environment's kernel
 * with `warren.probe=1`: the agent prints `probe ok` and powers off at once. Results are cached
 * per host boot, QEMU binary and kernel, so only the first call pays for a probe.
 */
import { spawn } from "node:child_process";
import { closeSync, constants, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { Acceleration } from "./qemu.js";

/** Outcome of one probe boot. */
export interface ProbeBoot {
  ok: boolean;
  /** What went wrong, or how long it took. */
  detail: string;
  durationMs: number;
}

/** The acceleration chosen, and why. */
export interface AccelerationChoice {
  acceleration: Acceleration;
  /** Why KVM is not used (when it is not). */
  kvmProblem: string | null;
  /** How long the probe boot with the chosen acceleration took, when one was made. */
  probeMs: number | null;
}

/** Whether /dev/kvm can be opened read-write; the problem when not. */
export function kvmDeviceProblem(): string | null {
  try {
    closeSync(openSync("/dev/kvm", constants.O_RDWR));
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "/dev/kvm does not exist" : `/dev/kvm cannot be opened (${code})`;
  }
}

/** Boots the kernel and initrd with `warren.probe=1` and reports whether user space was reached. */
export function probeBoot(
  qemu: string,
  kernel: string,
  initrd: string,
  acceleration: Acceleration,
  timeoutMs: number,
): Promise<ProbeBoot> {
  const started = performance.now();
  const args = [
    "-M",
    "microvm,x-option-roms=off",
    "-accel",
    acceleration,
    "-cpu",
    acceleration === "kvm" ? "host" : "max",
    "-m",
    "128M",
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-no-reboot",
    "-serial",
    "stdio",
    "-kernel",
    kernel,
    "-initrd",
    initrd,
    "-append",
    `console=ttyS0 quiet panic=-1 8250.nr_uarts=1${acceleration === "tcg" ? " tsc_early_khz=2600000 no_timer_check" : ""} warren.probe=1`,
  ];
  return new Promise((resolve) => {
    const child = spawn(qemu, args, { stdio: ["ignore", "pipe", "pipe"] });
    let said = "";
    const keep = (c: Buffer): void => {
      said = (said + c.toString()).slice(-4000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    const finish = (code: number | null, signal: string | null, error?: Error): void => {
      clearTimeout(timer);
      const durationMs = Math.round(performance.now() - started);
      const ok = code === 0 && said.includes("warren-agent: probe ok");
      const lastLines = said.trim().split("\n").slice(-2).join(" | ");
      resolve({
        ok,
        durationMs,
        detail: ok
          ? `booted in ${durationMs} ms`
          : error
            ? error.message
            : timedOut
              ? `no answer within ${timeoutMs} ms`
              : `${code === null ? `killed by ${signal}` : `exit ${code}`}${lastLines ? `: ${lastLines}` : ""}`,
      });
    };
    child.on("error", (err) => finish(null, null, err));
    child.on("close", (code, signal) => finish(code, signal));
  });
}

/** Identifies what a cached choice depends on: this boot of the host, QEMU, the kernel. */
export function choiceKey(qemu: string, kernel: string): string {
  let boot = "";
  try {
    boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    /* no boot id: the key still names qemu and the kernel */
  }
  const stamp = (p: string): string => {
    const st = statSync(p);
    return `${p}:${st.size}:${st.mtimeMs}`;
  };
  return `${boot}|${stamp(qemu)}|${stamp(kernel)}`;
}

/**
 * KVM if it boots the probe VM; otherwise TCG. `forced` skips the KVM probe. Cached in
 * `cacheFile` under `choiceKey`.
 */
export async function chooseAcceleration(
  qemu: string,
  kernel: string,
  initrd: string,
  cacheFile: string,
  forced?: Acceleration,
): Promise<AccelerationChoice> {
  if (forced)
    return {
      acceleration: forced,
      kvmProblem: forced === "tcg" ? "TCG forced by configuration" : null,
      probeMs: null,
    };
  const key = choiceKey(qemu, kernel);
  try {
    const cached = JSON.parse(readFileSync(cacheFile, "utf8")) as AccelerationChoice & { key: string };
    if (cached.key === key)
      return { acceleration: cached.acceleration, kvmProblem: cached.kvmProblem, probeMs: cached.probeMs };
  } catch {
    /* no cache yet */
  }
  let choice: AccelerationChoice;
  const device = kvmDeviceProblem();
  if (device) choice = { acceleration: "tcg", kvmProblem: device, probeMs: null };
  else {
    const kvm = await probeBoot(qemu, kernel, initrd, "kvm", 10000);
    choice = kvm.ok
      ? { acceleration: "kvm", kvmProblem: null, probeMs: kvm.durationMs }
      : {
          acceleration: "tcg",
          kvmProblem: `a probe VM does not boot with KVM (${kvm.detail})`,
          probeMs: null,
        };
  }
  try {
    writeFileSync(cacheFile, JSON.stringify({ key, ...choice }));
  } catch {
    /* caching is an optimisation */
  }
  return choice;
}
