/**
 * The backends the SDK suite runs against. Each factory opens a fresh Warren on a private state
 * directory and returns a Backend to it; `dispose` deletes every sandbox, checks that nothing
 * leaked and removes the directory.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Backend } from "../../src/sdk/backend.js";
import { openLocalBackend, type LocalBackend } from "../../src/sdk/local.js";
import { RemoteBackend } from "../../src/sdk/remote.js";
import { buildServer } from "../../src/server/app.js";
import { leakedCgroups } from "../helpers/warren.js";

/** A backend for one test file. */
export interface BackendFixture {
  backend: Backend;
  /** The server's URL and token (remote only). */
  url?: string;
  token?: string;
  /** Deletes all sandboxes, checks for leaks, closes everything. Throws on a leak. */
  dispose(): Promise<void>;
}

/** How to get one kind of backend. */
export interface BackendFactory {
  name: "local" | "remote";
  open(): Promise<BackendFixture>;
}

/** A local backend on a fresh state directory (0711: sandboxes run as another uid). */
async function openTempLocal(): Promise<{ local: LocalBackend; stateDir: string }> {
  const stateDir = mkdtempSync(join(tmpdir(), "warren-sdk-"));
  chmodSync(stateDir, 0o711);
  const local = await openLocalBackend({
    config: { stateDir, logLevel: "silent" },
    env: { HOME: stateDir },
  });
  return { local, stateDir };
}

/** Deletes the state dir's sandboxes, checks for leaks, closes, removes the directory. */
async function disposeLocal(local: LocalBackend, stateDir: string): Promise<void> {
  const leftovers: string[] = [];
  try {
    for (const s of await local.listSandboxes()) {
      try {
        await local.deleteSandbox(s.id);
      } catch (err) {
        leftovers.push(`could not delete ${s.id} (${s.name}): ${String(err)}`);
      }
    }
    const live = await local.listSandboxes();
    if (live.length) leftovers.push(`live rows: ${live.map((s) => s.id).join(", ")}`);
    leftovers.push(...leakedCgroups(stateDir));
  } finally {
    await local.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
  if (leftovers.length) throw new Error(`leak check failed:\n${leftovers.join("\n")}`);
}

/** Warren in this process. */
export const localFactory: BackendFactory = {
  name: "local",
  async open() {
    const { local, stateDir } = await openTempLocal();
    return { backend: local, dispose: () => disposeLocal(local, stateDir) };
  },
};

/** `warren serve` on a free loopback port over a local backend, reached with RemoteBackend. */
export const remoteFactory: BackendFactory = {
  name: "remote",
  async open() {
    const { local, stateDir } = await openTempLocal();
    const token = randomBytes(24).toString("hex");
    const server = await buildServer({ backend: local, token, port: 0 });
    let url: string;
    try {
      url = await server.listen();
    } catch (err) {
      await server.close();
      await disposeLocal(local, stateDir);
      throw err;
    }
    const remote = new RemoteBackend({ url, apiKey: token });
    return {
      backend: remote,
      url,
      token,
      async dispose() {
        try {
          await remote.close();
          await server.close();
        } finally {
          await disposeLocal(local, stateDir);
        }
      },
    };
  },
};

/** Every backend the suite runs against. */
export const backendFactories: BackendFactory[] = [localFactory, remoteFactory];
