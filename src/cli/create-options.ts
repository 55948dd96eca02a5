/** The create options shared by `warren create` and `warren run`. */
import { Command, Option } from "commander";
import { parsePairs } from "../core/names.js";
import type { NetworkPolicy, OnTimeout } from "../core/types.js";
import type { CreateOptions } from "../service/index.js";
import { collect, int } from "./context.js";

/** Raw values commander hands over. */
export interface CreateFlags {
  name?: string;
  driver?: string;
  env?: string;
  cpus?: number;
  memory?: number;
  pids?: number;
  ttl?: number;
  onTimeout?: string;
  network?: string;
  label?: string[];
  setenv?: string[];
  allowHost?: boolean;
}

/** Adds the create flags to a command. */
export function addCreateOptions(cmd: Command): Command {
  return cmd
    .option("--name <name>", "sandbox name, unique among live sandboxes (default: the id)")
    .option("--driver <driver>", "driver: bwrap, host, fake (default: WARREN_DRIVER or bwrap)")
    .option("--env <environment>", "environment: host or debian-bookworm (default: host)")
    .option("--cpus <n>", "CPU quota in CPUs, 1-8 (default 1)", int("--cpus"))
    .option("--memory <mib>", "memory limit in MiB, 128-32768 (default 512)", int("--memory"))
    .option("--pids <n>", "process limit, 16-65536 (default 512)", int("--pids"))
    .option("--ttl <seconds>", "lifetime, 60-86400 seconds (default 3600)", int("--ttl"))
    .addOption(
      new Option("--on-timeout <policy>", "what happens when the TTL runs out").choices(["stop", "delete"]),
    )
    .addOption(
      new Option("--network <policy>", "network: none (only loopback) or host").choices(["none", "host"]),
    )
    .option("--label <key=value>", "label (repeatable)", collect)
    .option("--setenv <key=value>", "environment variable for every command (repeatable)", collect)
    .option("--allow-host", "allow the host driver, which gives NO isolation");
}

/** Converts flags to service options. */
export function createOptionsFrom(f: CreateFlags): CreateOptions {
  return {
    name: f.name,
    driver: f.driver,
    environment: f.env,
    vcpuCount: f.cpus,
    memoryMiB: f.memory,
    pidsMax: f.pids,
    ttlSeconds: f.ttl,
    onTimeout: f.onTimeout as OnTimeout | undefined,
    network: f.network as NetworkPolicy | undefined,
    labels: parsePairs(f.label ?? [], "label"),
    env: parsePairs(f.setenv ?? [], "environment variable"),
    allowHost: f.allowHost,
  };
}
