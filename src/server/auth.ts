/**
 * Authentication of the HTTP API: a bearer token (created on first start in the state dir, mode
 * 0600) compared in constant time, and a Host-header check that defeats DNS rebinding while the
 * server listens on loopback only.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, closeSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import type { FastifyRequest } from "fastify";
import { InvalidArgumentError, UnauthorizedError } from "../core/errors.js";

/** File name of the generated token in the state dir. */
export const TOKEN_FILE_NAME = "server-token";

/** Where the server's token came from. */
export interface ResolvedToken {
  token: string;
  /** `file` (a token file, maybe just created) or `env` (WARREN_API_KEY). */
  source: "file" | "env";
  /** The token file, when the source is a file. */
  path: string | null;
  /** Whether the file was created by this call. */
  created: boolean;
}

/**
 * The server's token: `tokenFile` if given (created when missing), else `WARREN_API_KEY`, else
 * `<stateDir>/server-token` (created with a random token on first start, reused afterwards).
 * @throws InvalidArgumentError when a token file is empty or the key is too short
 */
export function resolveServerToken(o: {
  stateDir: string;
  tokenFile?: string;
  env?: NodeJS.ProcessEnv;
}): ResolvedToken {
  const fromEnv = (o.env ?? process.env).WARREN_API_KEY;
  if (!o.tokenFile && fromEnv) {
    return { token: checkToken(fromEnv.trim(), "WARREN_API_KEY"), source: "env", path: null, created: false };
  }
  const path = o.tokenFile ?? join(o.stateDir, TOKEN_FILE_NAME);
  const created = createTokenFile(path);
  const token = checkToken(readFileSync(path, "utf8").trim(), `token file ${path}`);
  // A token file others can read is no secret: tighten it (it is ours, or we could not read it).
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  return { token, source: "file", path, created };
}

/** Creates a token file with a new random token unless it exists; true when created. */
function createTokenFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, randomBytes(32).toString("base64url") + "\n");
  } finally {
    closeSync(fd);
  }
  return true;
}

function checkToken(token: string, where: string): string {
  if (token.length < 16 || /\s/.test(token)) {
    throw new InvalidArgumentError(`${where} holds no usable token`, {
      hint: "a token is at least 16 characters without spaces; delete the file to have a new one made",
    });
  }
  return token;
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

/**
 * Checks `Authorization: Bearer <token>` in constant time.
 * @throws UnauthorizedError when missing or wrong
 */
export function checkBearer(request: FastifyRequest, token: string): void {
  const header = request.headers.authorization;
  const m = typeof header === "string" ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
  // Hashing first makes both sides the same length, so the comparison leaks nothing.
  if (!m || !timingSafeEqual(digest(m[1]), digest(token))) {
    throw new UnauthorizedError(
      m ? "the API token is wrong" : "missing API token (Authorization: Bearer <token>)",
      {
        hint: "send the token from the server's token file (see `warren serve` output) as a bearer token; the SDK and CLI read WARREN_API_KEY",
      },
    );
  }
}

/** Whether the server is bound to a loopback address only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || (isIP(h) === 4 && h.startsWith("127."));
}

/** The Host header values accepted on a loopback server listening on `port`. */
export function allowedHostHeaders(bindHost: string, port: number): Set<string> {
  const names = new Set(["localhost", "127.0.0.1", "[::1]"]);
  const bare = bindHost.replace(/^\[|\]$/g, "");
  names.add(isIP(bare) === 6 ? `[${bare}]` : bare);
  return new Set([...names].map((n) => `${n}:${port}`.toLowerCase()));
}

/**
 * DNS-rebinding protection: a page on another origin that rebinds its name to 127.0.0.1 still
 * sends its own name in Host, so anything but a loopback name with our port is refused.
 * @throws InvalidArgumentError (HTTP 403) for any other Host
 */
export function checkHostHeader(request: FastifyRequest, allowed: Set<string>): void {
  const host = request.headers.host?.toLowerCase();
  if (!host || !allowed.has(host)) {
    throw new InvalidArgumentError(`Host header "${request.headers.host ?? ""}" is not allowed`, {
      hint: `the server listens on loopback; use one of ${[...allowed].join(", ")} (or bind with --host to serve other names)`,
      details: { reason: "host-not-allowed" },
    });
  }
}
