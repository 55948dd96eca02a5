/**
 * A connection to the guest agent. QEMU serves each virtio-serial port on its own Unix socket
 * and takes one client per socket at a time, so a Warren process first claims a free port with a
 * claim file (`port-N.claim`, holding its pid and start time; a dead owner's claim is taken
 * over), then says HELLO. Several processes can so talk to one VM at once, one port each; within
 * a process, concurrent calls share one connection (`withAgent`), since requests carry ids.
 * Firecracker's vsock is one Unix socket that takes any number of clients (`CONNECT <port>`).
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import type { ExecOutcome } from "../../core/driver.js";
import { InternalError, LimitExceededError, TimeoutError } from "../../core/errors.js";
import { isAlive, selfIdentity } from "../../core/proc.js";
import {
  FrameReader,
  R,
  T,
  decodeExit,
  encodeExec,
  encodeFrame,
  parseFacts,
  type ExecRequest,
} from "./protocol.js";

/** How a driver reaches an agent. */
export type ChannelAddress =
  { kind: "ports"; dir: string; count: number } | { kind: "vsock"; socket: string; port: number };

/** Socket of virtio-serial port `n` in a VM's directory. */
export const portSocket = (dir: string, n: number): string => join(dir, `port-${n}.sock`);
const portClaim = (dir: string, n: number): string => join(dir, `port-${n}.claim`);

/** Output and stdin of one command. */
export interface ExecIo {
  stdin?: string | Uint8Array;
  maxOutputBytes: number;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

class Capped {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(c: Buffer): void {
    const room = this.cap - this.size;
    if (c.length > room) this.truncated = true;
    if (room <= 0) return;
    const part = c.length > room ? c.subarray(0, room) : c;
    this.chunks.push(part);
    this.size += part.length;
  }
  value(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Tries to claim port `n`; a claim left by a dead process is taken over. */
function tryClaim(dir: string, n: number, owner: string): boolean {
  const path = portClaim(dir, n);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, owner);
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue; /* released meanwhile */
    }
    const [pid, startTime] = text.split(" ").map(Number);
    if (text && isAlive({ pid, startTime })) return false;
    try {
      unlinkSync(path);
    } catch {
      /* someone else took it over first */
    }
  }
  return false;
}

function connectSocket(path: string, deadline: number, alive: () => boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = createConnection(path);
      s.once("connect", () => resolve(s));
      s.once("error", (err: NodeJS.ErrnoException) => {
        s.destroy();
        if ((err.code === "ENOENT" || err.code === "ECONNREFUSED") && Date.now() < deadline && alive())
          setTimeout(attempt, 20);
        else
          reject(
            new InternalError(`cannot reach the guest agent at ${path}: ${err.message}`, { cause: err }),
          );
      });
    };
    attempt();
  });
}

/** One session with the guest agent. */
export class AgentClient {
  private readonly reader = new FrameReader();
  private readonly waiters = new Map<number, (type: number, payload: Buffer) => void>();
  private nextId = 1;
  private closedError: Error | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly release: () => void,
  ) {
    socket.on("data", (chunk: Buffer) => {
      let frames;
      try {
        frames = this.reader.push(chunk);
      } catch (err) {
        return this.fail(err as Error);
      }
      for (const f of frames) this.waiters.get(f.id)?.(f.type, f.payload);
    });
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new InternalError("the guest agent closed the connection")));
  }

  /** Whether the connection is gone. */
  get closed(): boolean {
    return this.closedError !== null;
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.release();
    for (const w of [...this.waiters.values()]) w(-1, Buffer.from(err.message));
  }

  /**
   * Connects and says HELLO; waits for the agent until `deadline` (epoch ms), e.g. during boot,
   * and stops waiting early once `alive` says the VM is gone.
   * @throws TimeoutError, LimitExceededError (every port busy), InternalError
   */
  static async connect(
    address: ChannelAddress,
    deadline: number,
    alive: () => boolean = () => true,
  ): Promise<AgentClient> {
    let socket: Socket;
    let release = (): void => undefined;
    if (address.kind === "vsock") {
      socket = await connectSocket(address.socket, deadline, alive);
      socket.write(`CONNECT ${address.port}\n`);
      await new Promise<void>((resolve, reject) => {
        let said = "";
        const onData = (c: Buffer): void => {
          said += c.toString("latin1");
          if (!said.includes("\n")) return;
          socket.off("data", onData);
          if (said.startsWith("OK")) resolve();
          else reject(new InternalError(`vsock connect refused: ${said.trim()}`));
        };
        socket.on("data", onData);
      });
    } else {
      const me = selfIdentity();
      const owner = `${me.pid} ${me.startTime}`;
      let port = -1;
      const start = Math.floor(Math.random() * address.count);
      while (port < 0) {
        for (let i = 0; i < address.count && port < 0; i++) {
          const n = (start + i) % address.count;
          if (tryClaim(address.dir, n, owner)) port = n;
        }
        if (port >= 0) break;
        if (Date.now() > deadline || !alive()) {
          throw new LimitExceededError(`all ${address.count} agent channels of the VM are busy`, {
            hint: "wait for running commands to finish",
          });
        }
        await sleep(20);
      }
      const claimed = port;
      let released = false;
      release = () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(portClaim(address.dir, claimed), "utf8") === owner)
            unlinkSync(portClaim(address.dir, claimed));
        } catch {
          /* already gone */
        }
      };
      try {
        socket = await connectSocket(portSocket(address.dir, claimed), deadline, alive);
      } catch (err) {
        release();
        throw err;
      }
    }
    const client = new AgentClient(socket, release);
    try {
      await client.request(
        T.hello,
        Buffer.from(String(Date.now())),
        R.hello,
        Math.max(deadline - Date.now(), 1),
      );
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Sends one request and waits for the reply of type `expect`. */
  private request(type: number, payload: Buffer, expect: number, timeoutMs: number): Promise<Buffer> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new TimeoutError(`the guest agent did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(id, (t, p) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        if (t === expect) resolve(p);
        else reject(new InternalError(`guest agent: ${p.toString()}`));
      });
      this.send(type, id, payload);
    });
  }

  private send(type: number, id: number, payload?: Buffer): void {
    if (this.closedError) throw this.closedError;
    this.socket.write(encodeFrame(type, id, payload));
  }

  /** The agent's health facts (version, rss_kib, uptime_ms, commands, cgroups). */
  async ping(timeoutMs: number): Promise<Record<string, string>> {
    return parseFacts((await this.request(T.ping, Buffer.alloc(0), R.pong, timeoutMs)).toString());
  }

  /** Asks the guest to end its processes, sync, unmount and power off. */
  async shutdown(timeoutMs: number): Promise<void> {
    await this.request(T.shutdown, Buffer.alloc(0), R.shutdown, timeoutMs);
  }

  /**
   * Runs one command to its end. The agent enforces the timeout; the host gives up 30 s later
   * (a hung guest), closing the session, which makes the agent kill the command.
   */
  exec(req: ExecRequest, io: ExecIo): Promise<ExecOutcome> {
    const started = performance.now();
    const id = this.nextId++;
    const out = new Capped(io.maxOutputBytes);
    const err = new Capped(io.maxOutputBytes);
    return new Promise((resolve, reject) => {
      let aborted = false;
      const onAbort = (): void => {
        aborted = true;
        if (!this.closedError) this.send(T.kill, id);
      };
      const guard =
        req.timeoutMs !== undefined
          ? setTimeout(() => {
              done();
              this.close();
              reject(
                new TimeoutError(`the guest did not end the command ${req.timeoutMs} ms after its timeout`),
              );
            }, req.timeoutMs + 30000)
          : undefined;
      const done = (): void => {
        clearTimeout(guard);
        this.waiters.delete(id);
        io.signal?.removeEventListener("abort", onAbort);
      };
      this.waiters.set(id, (type, payload) => {
        if (type === R.stdout) {
          out.push(payload);
          io.onStdout?.(payload);
        } else if (type === R.stderr) {
          err.push(payload);
          io.onStderr?.(payload);
        } else if (type === R.exit) {
          done();
          if (aborted) return reject(io.signal?.reason ?? new Error("aborted"));
          const { exitCode, timedOut } = decodeExit(payload);
          resolve({
            exitCode,
            timedOut,
            stdout: out.value(),
            stderr: err.value(),
            truncated: out.truncated || err.truncated,
            durationMs: Math.round((performance.now() - started) * 1000) / 1000,
          });
        } else {
          done();
          reject(new InternalError(`guest agent: ${payload.toString()}`));
        }
      });
      io.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        this.send(T.exec, id, encodeExec(req));
        const stdin = io.stdin === undefined ? Buffer.alloc(0) : Buffer.from(io.stdin);
        for (let at = 0; at < stdin.length; at += 1048576)
          this.send(T.stdin, id, stdin.subarray(at, at + 1048576));
        this.send(T.stdin, id);
      } catch (e) {
        done();
        reject(e);
      }
    });
  }

  /** Ends the session; the agent kills this session's commands that are not detached. */
  close(): void {
    this.socket.destroy();
    this.fail(new InternalError("the connection to the guest agent was closed"));
  }
}

/** This process's open connections, by VM, with how many calls use each. */
const shared = new Map<string, { client: Promise<AgentClient>; users: number }>();

/**
 * Runs `fn` with a connection to the VM's agent, shared with this process's other calls to the
 * same VM that are under way; the connection closes when the last of them ends.
 */
export async function withAgent<T>(
  address: ChannelAddress,
  deadline: number,
  alive: () => boolean,
  fn: (client: AgentClient) => Promise<T>,
): Promise<T> {
  const key = JSON.stringify(address);
  let entry = shared.get(key);
  if (entry) {
    const current = await entry.client.catch(() => null);
    if (!current || current.closed) entry = undefined;
  }
  if (!entry || shared.get(key) !== entry) {
    entry = { client: AgentClient.connect(address, deadline, alive), users: 0 };
    shared.set(key, entry);
  }
  const mine = entry;
  mine.users++;
  try {
    return await fn(await mine.client);
  } finally {
    mine.users--;
    if (mine.users === 0) {
      if (shared.get(key) === mine) shared.delete(key);
      (await mine.client.catch(() => null))?.close();
    }
  }
}
