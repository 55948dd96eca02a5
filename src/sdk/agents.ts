/**
 * Agent packages and runs from TypeScript:
 *
 * ```ts
 * import { agents } from "warren";
 *
 * await agents.add("./examples/hello-agent");
 * const run = await agents.run("hello-agent", { input: "Ada", onStdout: (d) => process.stdout.write(d) });
 * console.log(run.status, run.exitCode, run.resultDir);
 * const tar = await agents.result("hello-agent", run.id); // the workspace it left
 * ```
 *
 * Each call resolves a backend like `Sandbox.create` does (the `backend` option, then
 * `WARREN_URL`, profiles, local) and lets go of it when done.
 */
import { resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { AgentInfo, AgentRun } from "../service/index.js";
import type { Backend, StreamCallbacks } from "./backend.js";
import { leaseBackend } from "./resolve.js";
import type { ConnectionOptions } from "./sandbox.js";

/** Options of `agents.run`. */
export interface AgentRunOptions extends ConnectionOptions {
  /** Given to the entrypoint on stdin. @default empty */
  input?: string | Uint8Array;
  /** The entrypoint's output as it comes, decoded as UTF-8 (characters kept whole). */
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  /** Aborting kills the entrypoint; the run is recorded as failed. */
  signal?: AbortSignal;
}

async function withBackend<T>(options: ConnectionOptions, fn: (b: Backend) => Promise<T>): Promise<T> {
  const lease = await leaseBackend({ backend: options.backend });
  try {
    return await fn(lease.backend);
  } finally {
    await lease.release();
  }
}

/** A UTF-8 decoding callback for Buffers; `end` flushes a trailing partial character. */
function decoded(fn?: (data: string) => void): { on?: (c: Buffer) => void; end(): void } {
  if (!fn) return { end: () => {} };
  const decoder = new StringDecoder("utf8");
  return {
    on: (c) => {
      const text = decoder.write(c);
      if (text) fn(text);
    },
    end: () => {
      const rest = decoder.end();
      if (rest) fn(rest);
    },
  };
}

/** Agent packages and their runs. See docs/agents.md. */
export const agents = {
  /**
   * Adds a package directory (on this machine; sent to the server when the backend is remote),
   * or a new version of it.
   * @throws NotFoundError (no directory or manifest), InvalidArgumentError (a bad manifest, links),
   *   LimitExceededError (too large)
   */
  add(dir: string, options: ConnectionOptions = {}): Promise<AgentInfo> {
    return withBackend(options, (b) => b.addAgent({ dir: resolve(dir) }));
  },

  /** Every agent package, by name. */
  list(options: ConnectionOptions = {}): Promise<AgentInfo[]> {
    return withBackend(options, (b) => b.listAgents());
  },

  /** One agent package. @throws NotFoundError */
  get(name: string, options: ConnectionOptions = {}): Promise<AgentInfo> {
    return withBackend(options, (b) => b.getAgent(name));
  },

  /** Removes a package; its runs and their results stay. @throws NotFoundError */
  remove(name: string, options: ConnectionOptions = {}): Promise<AgentInfo> {
    return withBackend(options, (b) => b.removeAgent(name));
  },

  /**
   * Runs an agent in a fresh sandbox and returns the run record. A run that fails (non-zero
   * exit, timeout, a sandbox that died) is a record with `status: "failed"` and `error`, not an
   * exception.
   * @throws NotFoundError (no such agent); what sandbox creation throws (e.g. DriverUnavailableError)
   */
  run(name: string, options: AgentRunOptions = {}): Promise<AgentRun> {
    return withBackend(options, async (b) => {
      const out = decoded(options.onStdout);
      const err = decoded(options.onStderr);
      const stream: StreamCallbacks = { onStdout: out.on, onStderr: err.on, signal: options.signal };
      try {
        return await b.runAgent(name, { input: options.input }, stream);
      } finally {
        out.end();
        err.end();
      }
    });
  },

  /** Runs of an agent, newest first. */
  runs(name: string, options: ConnectionOptions & { limit?: number } = {}): Promise<AgentRun[]> {
    return withBackend(options, (b) => b.listRuns(name, { limit: options.limit }));
  },

  /** One run. @throws NotFoundError */
  getRun(name: string, runId: string, options: ConnectionOptions = {}): Promise<AgentRun> {
    return withBackend(options, (b) => b.getRun(name, runId));
  },

  /** The workspace a run left, as a tar archive. @throws NotFoundError */
  result(name: string, runId: string, options: ConnectionOptions = {}): Promise<Buffer> {
    return withBackend(options, (b) => b.runResult(name, runId));
  },
};
