/**
 * Runs the service's own shell scripts inside a sandbox (files, background processes). A script
 * runs as the sandbox's user in the sandbox's namespaces, so the kernel resolves every path from
 * inside: `..`, absolute symlinks and symlink swaps cannot reach the host. Scripts report typed
 * failures through exit codes, mapped here to WarrenErrors.
 */
import { posix } from "node:path";
import type { ExecOutcome } from "../core/driver.js";
import {
  InternalError,
  InvalidArgumentError,
  InvalidStateError,
  LimitExceededError,
  NotFoundError,
  NotSupportedError,
  type WarrenError,
} from "../core/errors.js";
import type { DriverRegistry } from "../core/registry.js";
import type { Sandbox } from "../core/types.js";
import type { SandboxService } from "./sandbox-service.js";

/** Exit codes scripts use for typed failures. */
export const SCRIPT_EXIT = {
  notFound: 3,
  isDirectory: 4,
  notDirectory: 5,
  denied: 6,
  notEmpty: 7,
  exists: 8,
} as const;

/** Sandbox paths the service may be asked about are at most this long. */
const MAX_PATH = 4096;

/** What to run and how. */
export interface ScriptCall {
  script: string;
  args: string[];
  stdin?: string | Uint8Array;
  /** @default 60000 */
  timeoutMs?: number;
  /** Cap on each output stream; beyond it the call fails with LimitExceededError. */
  maxOutputBytes: number;
  onStdout?: (chunk: Buffer) => void;
  cwd?: string;
  env?: Record<string, string>;
  detach?: boolean;
  /** Names the target in error messages. */
  what: string;
}

/** Runs scripts in sandboxes for the services built on the `posixShell` capability. */
export class SandboxShell {
  constructor(
    private readonly sandboxes: SandboxService,
    private readonly registry: DriverRegistry,
  ) {}

  /** A sandbox by id or name. @throws NotFoundError */
  sandboxesStatus(ref: string): Sandbox {
    return this.sandboxes.status(ref);
  }

  /**
   * Normalises a sandbox path: relative paths are taken from /workspace.
   * @throws InvalidArgumentError
   */
  path(path: string, what = "path"): string {
    if (typeof path !== "string" || path === "" || path.includes("\0") || path.length > MAX_PATH) {
      throw new InvalidArgumentError(`${what} must be a non-empty path without NUL bytes`, {
        hint: "use a sandbox path such as /workspace/src/main.py",
      });
    }
    return posix.resolve("/workspace", path);
  }

  /**
   * The path a script should use: the sandbox path itself, or, for a driver without isolation
   * (commands run on the host), the matching place in the workspace directory — and there only
   * paths under /workspace are allowed.
   */
  private hostArg(sandbox: Sandbox, path: string): string {
    if (sandbox.isolation !== "none") return path;
    const rel = posix.relative("/workspace", path);
    if (rel.startsWith("..")) {
      throw new InvalidArgumentError(
        `the ${sandbox.driver} driver only gives access to /workspace, not ${path}`,
        {
          hint: "use a path under /workspace",
        },
      );
    }
    return rel ? `${sandbox.workspaceDir}/${rel}` : sandbox.workspaceDir;
  }

  /** Maps a path printed by a script back to the sandbox path. */
  sandboxPath(sandbox: Sandbox, printed: string): string {
    if (sandbox.isolation !== "none") return printed;
    const rel = posix.relative(sandbox.workspaceDir, printed);
    return rel.startsWith("..") ? printed : posix.join("/workspace", rel);
  }

  /**
   * Runs `script` with `args` (paths among them are mapped with `pathArgs`) in a running sandbox.
   * @throws NotFoundError, InvalidStateError, NotSupportedError, typed script failures
   */
  async run(
    ref: string,
    call: ScriptCall,
    pathArgs: (toArg: (p: string) => string) => string[] = () => [],
  ): Promise<{ sandbox: Sandbox; outcome: ExecOutcome }> {
    const sandbox = this.sandboxesStatus(ref);
    if (!this.registry.has(sandbox.driver) || !this.registry.get(sandbox.driver).capabilities.posixShell) {
      throw new NotSupportedError(`the ${sandbox.driver} driver cannot run the service's shell scripts`, {
        hint: "file and background-process operations need a driver with the posixShell capability (bwrap, host)",
        details: { driver: sandbox.driver },
      });
    }
    const args = [...pathArgs((p) => this.hostArg(sandbox, p)), ...call.args];
    const { outcome } = await this.sandboxes.execInternal(sandbox.id, {
      argv: ["/bin/sh", "-c", `set -u\n${call.script}`, "warren", ...args],
      cwd: call.cwd ?? "/",
      env: call.env,
      stdin: call.stdin,
      timeoutMs: call.timeoutMs ?? 60000,
      maxOutputBytes: call.maxOutputBytes,
      onStdout: call.onStdout,
      detach: call.detach,
    });
    if (outcome.exitCode !== 0) throw scriptError(outcome, call.what);
    if (outcome.truncated) {
      throw new LimitExceededError(`${call.what} is larger than ${call.maxOutputBytes} bytes`, {
        hint: "download it as a tar archive, or raise the limit",
        details: { limitBytes: call.maxOutputBytes },
      });
    }
    return { sandbox, outcome };
  }
}

/** The typed error for a script's exit code. */
export function scriptError(o: ExecOutcome, what: string): WarrenError {
  const said = o.stderr.toString("utf8").trim().split("\n").slice(-3).join("; ");
  const details = { exitCode: o.exitCode, stderr: said };
  switch (o.exitCode) {
    case SCRIPT_EXIT.notFound:
      return new NotFoundError(`${what} does not exist`, { details });
    case SCRIPT_EXIT.isDirectory:
      return new InvalidArgumentError(`${what} is a directory`, { hint: "list it instead", details });
    case SCRIPT_EXIT.notDirectory:
      return new InvalidArgumentError(`${what} is not a directory`, { details });
    case SCRIPT_EXIT.denied:
      return new InvalidArgumentError(`${what}: ${said || "permission denied"}`, {
        hint: "the sandbox user may write under /workspace and /tmp; system directories are read-only",
        details,
      });
    case SCRIPT_EXIT.notEmpty:
      return new InvalidStateError(`${what} is a directory that is not empty`, {
        hint: "pass recursive to remove it with its contents",
        details,
      });
    case SCRIPT_EXIT.exists:
      return new InvalidArgumentError(`${what} exists and is not a directory`, { details });
    default:
      if (o.timedOut) return new InternalError(`${what}: the operation timed out`, { details });
      return new InternalError(`${what}: the operation failed with exit code ${o.exitCode}: ${said}`, {
        details,
      });
  }
}
