/**
 * Warren's error model: one root class with a stable string `code`, a human message, an optional
 * `hint` that says how to fix the problem, structured `details` and the underlying `cause`.
 * Front ends render these; nothing here formats or colours text.
 */

/** Stable error codes; front ends map them to exit codes and HTTP statuses. */
export type ErrorCode =
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "INVALID_ARGUMENT"
  | "INVALID_STATE"
  | "NOT_SUPPORTED"
  | "LIMIT_EXCEEDED"
  | "TIMEOUT"
  | "DRIVER_UNAVAILABLE"
  | "UNAUTHORIZED"
  | "INTERNAL";

/** Options shared by every Warren error. */
export interface WarrenErrorOptions {
  /** How to fix the problem, in one sentence. */
  hint?: string;
  /** Structured facts about the failure (ids, limits, values). */
  details?: Record<string, unknown>;
  /** The lower-level error this one wraps. */
  cause?: unknown;
}

/** Root of every error Warren throws on purpose. */
export class WarrenError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** How to fix the problem, if known. */
  readonly hint?: string;
  /** Structured facts about the failure. */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: WarrenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** The wire form used by `--json` and (later) the HTTP API. */
  toJSON(): { code: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> } {
    return { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }
}

/** A sandbox, environment or driver that does not exist. */
export class NotFoundError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("NOT_FOUND", message, options);
  }
}

/** Creating something whose name is taken. */
export class AlreadyExistsError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("ALREADY_EXISTS", message, options);
  }
}

/** Input that fails validation; nothing was changed. */
export class InvalidArgumentError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("INVALID_ARGUMENT", message, options);
  }
}

/** An operation that the object's current state does not allow. */
export class InvalidStateError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("INVALID_STATE", message, options);
  }
}

/** A driver lacks the capability an option asks for. */
export class NotSupportedError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("NOT_SUPPORTED", message, options);
  }
}

/** A configured maximum would be exceeded. */
export class LimitExceededError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("LIMIT_EXCEEDED", message, options);
  }
}

/** An operation ran past its deadline. */
export class TimeoutError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("TIMEOUT", message, options);
  }
}

/** A driver cannot run on this host (missing tool, missing kernel feature, not opted in). */
export class DriverUnavailableError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("DRIVER_UNAVAILABLE", message, options);
  }
}

/** A caller without valid credentials. */
export class UnauthorizedError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("UNAUTHORIZED", message, options);
  }
}

/** A bug or an unexpected failure of the host. */
export class InternalError extends WarrenError {
  constructor(message: string, options?: WarrenErrorOptions) {
    super("INTERNAL", message, options);
  }
}

/** Wraps anything thrown into a WarrenError, keeping Warren's own errors as they are. */
export function toWarrenError(err: unknown): WarrenError {
  if (err instanceof WarrenError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, { cause: err });
}

/** The error class for each code (used to rebuild errors that crossed a process boundary). */
const CLASS_OF_CODE: Record<ErrorCode, new (message: string, options?: WarrenErrorOptions) => WarrenError> = {
  NOT_FOUND: NotFoundError,
  ALREADY_EXISTS: AlreadyExistsError,
  INVALID_ARGUMENT: InvalidArgumentError,
  INVALID_STATE: InvalidStateError,
  NOT_SUPPORTED: NotSupportedError,
  LIMIT_EXCEEDED: LimitExceededError,
  TIMEOUT: TimeoutError,
  DRIVER_UNAVAILABLE: DriverUnavailableError,
  UNAUTHORIZED: UnauthorizedError,
  INTERNAL: InternalError,
};

/**
 * Rebuilds the WarrenError subclass from its wire form (`toJSON()`), so an error that crossed the
 * HTTP API is the same class with the same fields as in-process. An unknown code or a body that is
 * not an error becomes an InternalError.
 */
export function errorFromWire(wire: unknown, options: { cause?: unknown } = {}): WarrenError {
  const w = (typeof wire === "object" && wire !== null ? wire : {}) as Record<string, unknown>;
  const code = typeof w.code === "string" && w.code in CLASS_OF_CODE ? (w.code as ErrorCode) : "INTERNAL";
  const message = typeof w.message === "string" ? w.message : `malformed error: ${JSON.stringify(wire)}`;
  const details =
    typeof w.details === "object" && w.details !== null ? (w.details as Record<string, unknown>) : undefined;
  return new CLASS_OF_CODE[code](message, {
    hint: typeof w.hint === "string" ? w.hint : undefined,
    details,
    cause: options.cause,
  });
}
