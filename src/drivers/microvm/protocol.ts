/**
 * The host half of the guest agent's wire protocol (the guest half is agent/agent.c; constants
 * mirror agent/agent.h). Frames: magic "WRN1", u32 payload length, u8 type, 3 zero bytes, u32
 * request id, payload; little-endian. Pure encoding and decoding, unit-tested.
 */

/** Frame magic, "WRN1" read as a little-endian u32. */
export const FRAME_MAGIC = 0x314e5257;
/** Bytes before the payload. */
export const FRAME_HEADER = 16;
/** Largest payload the agent accepts. */
export const FRAME_MAX = 16 * 1048576;

/** Request types (host to guest). */
export const T = { hello: 1, exec: 2, stdin: 3, kill: 4, ping: 5, shutdown: 6 } as const;
/** Reply types (guest to host). */
export const R = {
  hello: 0x81,
  stdout: 0x82,
  stderr: 0x83,
  exit: 0x84,
  error: 0x85,
  pong: 0x86,
  shutdown: 0x87,
} as const;

/** Exec flag: leave what the command starts in the background running. */
export const EXEC_DETACH = 1;

/** One decoded frame. */
export interface Frame {
  type: number;
  id: number;
  payload: Buffer;
}

/** Encodes one frame. */
export function encodeFrame(type: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(FRAME_HEADER);
  h.writeUInt32LE(FRAME_MAGIC, 0);
  h.writeUInt32LE(payload.length, 4);
  h.writeUInt8(type, 8);
  h.writeUInt32LE(id >>> 0, 12);
  return Buffer.concat([h, payload]);
}

/** What an exec request carries. */
export interface ExecRequest {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs?: number;
  detach?: boolean;
}

/** Payload of an exec request: u32 flags, timeout, argc, envc, then NUL-terminated strings. */
export function encodeExec(r: ExecRequest): Buffer {
  const strings = [r.cwd, ...r.argv, ...Object.entries(r.env).map(([k, v]) => `${k}=${v}`)];
  for (const s of strings) {
    if (s.includes("\0")) throw new TypeError("argv, cwd and env must not contain NUL bytes");
  }
  const h = Buffer.alloc(16);
  h.writeUInt32LE(r.detach ? EXEC_DETACH : 0, 0);
  h.writeUInt32LE(Math.min(Math.max(Math.ceil(r.timeoutMs ?? 0), 0), 0xffffffff), 4);
  h.writeUInt32LE(r.argv.length, 8);
  h.writeUInt32LE(Object.keys(r.env).length, 12);
  return Buffer.concat([h, Buffer.from(strings.map((s) => `${s}\0`).join(""))]);
}

/** Decodes an exit payload: exit code and whether the command timed out. */
export function decodeExit(payload: Buffer): { exitCode: number; timedOut: boolean } {
  return { exitCode: payload.readInt32LE(0), timedOut: payload.readUInt32LE(4) !== 0 };
}

/** Splits a byte stream into frames; keeps a partial frame until the rest arrives. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  /**
   * Adds bytes and returns the frames they complete.
   * @throws Error on a frame that does not start with the magic or is too large.
   */
  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames: Frame[] = [];
    while (this.pending.length >= FRAME_HEADER) {
      const magic = this.pending.readUInt32LE(0);
      const len = this.pending.readUInt32LE(4);
      if (magic !== FRAME_MAGIC || len > FRAME_MAX) throw new Error("malformed frame from the guest agent");
      if (this.pending.length < FRAME_HEADER + len) break;
      frames.push({
        type: this.pending.readUInt8(8),
        id: this.pending.readUInt32LE(12),
        payload: Buffer.from(this.pending.subarray(FRAME_HEADER, FRAME_HEADER + len)),
      });
      this.pending = this.pending.subarray(FRAME_HEADER + len);
    }
    return frames;
  }
}

/** Parses the agent's `key=value ...` health facts. */
export function parseFacts(text: string): Record<string, string> {
  const facts: Record<string, string> = {};
  for (const pair of text.trim().split(/\s+/)) {
    const at = pair.indexOf("=");
    if (at > 0) facts[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return facts;
}
