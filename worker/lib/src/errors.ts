/**
 * Error codes of the wire protocol, the exceptions objects throw, and the
 * JSON error envelope.
 */
import type { JsonObject } from "./json";

/** Every error code of protocol version 1, with its HTTP status and retry flag. */
export const ERROR_CODES = {
  bad_request: { status: 400, retryable: false },
  invalid_id: { status: 400, retryable: false },
  unsupported_protocol: { status: 400, retryable: false },
  unauthorized: { status: 401, retryable: false },
  forbidden: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  unknown_model: { status: 404, retryable: false },
  unknown_method: { status: 404, retryable: false },
  object_not_found: { status: 404, retryable: false },
  method_not_allowed: { status: 405, retryable: false },
  conflict: { status: 409, retryable: false },
  already_exists: { status: 409, retryable: false },
  request_id_reused: { status: 409, retryable: false },
  payload_too_large: { status: 413, retryable: false },
  state_too_large: { status: 413, retryable: false },
  unsupported_media_type: { status: 415, retryable: false },
  validation_error: { status: 422, retryable: false },
  remote_error: { status: 422, retryable: false },
  invalid_result: { status: 500, retryable: false },
  internal: { status: 500, retryable: true },
  overloaded: { status: 503, retryable: false },
  unavailable: { status: 503, retryable: true },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A request that fails with a protocol error code; turned into an envelope at the edge. */
export class Failure extends Error {
  override readonly name = "Failure";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: JsonObject,
  ) {
    super(message);
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** The error envelope: `{"error": {"code", "message", "retryable", "details"}}`; `details` is `{}` when empty. */
  toEnvelope(): JsonObject {
    return {
      error: { code: this.code, message: this.message, retryable: ERROR_CODES[this.code].retryable, details: this.details ?? {} },
    };
  }
}

/**
 * Base class for exceptions that a remote method throws on purpose. The
 * caller receives `remote_error` with `details.type` set to `name`, so give
 * each subclass an explicit `name` (bundlers may rename classes).
 */
export class RemoteException extends Error {
  override name = "RemoteException";
}

/** An argument or state has the right type but a wrong value (Python's `ValueError`). */
export class ValueError extends RemoteException {
  override name = "ValueError";
}

/** The caller may not do this (Python's `PermissionError`). */
export class PermissionError extends RemoteException {
  override name = "PermissionError";
}

/** A key or id that should exist does not (Python's `KeyError`). */
export class KeyError extends RemoteException {
  override name = "KeyError";
}

/**
 * The class a Python client (and a Python method body) raises for each code:
 * the type name a nested call's failure takes inside a body.
 */
export const EXCEPTION_NAMES: Record<ErrorCode, string> = {
  bad_request: "BadRequestError",
  invalid_id: "InvalidIdError",
  unsupported_protocol: "UnsupportedProtocolError",
  unauthorized: "UnauthorizedError",
  forbidden: "ForbiddenError",
  not_found: "NotFoundError",
  unknown_model: "UnknownModelError",
  unknown_method: "UnknownMethodError",
  object_not_found: "ObjectNotFoundError",
  method_not_allowed: "MethodNotAllowedError",
  conflict: "ConflictError",
  already_exists: "AlreadyExistsError",
  request_id_reused: "RequestIdReusedError",
  payload_too_large: "PayloadTooLargeError",
  state_too_large: "StateTooLargeError",
  unsupported_media_type: "UnsupportedMediaTypeError",
  validation_error: "ValidationError",
  remote_error: "RemoteError",
  invalid_result: "InvalidResultError",
  internal: "ServerError",
  overloaded: "OverloadedError",
  unavailable: "UnavailableError",
};

/**
 * A call to another object failed: thrown inside the method body that made it.
 *
 * For `remote_error` (the other object's method threw), `name` and `message`
 * are that exception's type name and message, as the other method threw them
 * (`error.type === "ValueError"`); for every other code, `name` is the class a
 * Python body would see (`ConflictError`, `ValidationError`, ...) and `message`
 * the error's message. A body that does not catch it fails with the same
 * `remote_error` type and message (the summary says which call failed).
 */
export class CallError extends Error {
  override name: string;
  constructor(
    readonly code: ErrorCode,
    /** The error envelope's message (for `remote_error`, the other method's summary). */
    readonly summary: string,
    readonly details: JsonObject = {},
  ) {
    const remote = code === "remote_error" && typeof details.type === "string";
    super(remote ? String(details.message ?? "") : summary);
    this.name = remote ? (details.type as string) : EXCEPTION_NAMES[code];
  }

  /** The exception's type name: for a remote error, what the other method threw. */
  get type(): string {
    return this.name;
  }

  /** From an error envelope's `error` member (anything unexpected: `internal`). */
  static fromEnvelope(error: unknown): CallError {
    const { code, message, details } = (typeof error === "object" && error !== null ? error : {}) as Record<string, unknown>;
    const known = typeof code === "string" && Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : "internal";
    const detail = typeof details === "object" && details !== null && !Array.isArray(details) ? (details as JsonObject) : {};
    return new CallError(known, typeof message === "string" ? message : "the call failed", detail);
  }
}

/**
 * A method re-entered an object already running a method in its chain of calls
 * (A calling A, or A calling B calling A): it would wait for itself forever, so
 * it fails at once. The message names the chain.
 */
export class ReentrancyError extends Error {
  override name = "ReentrancyError";
}

/** A call to another object got no answer within the caller's call timeout. */
export class CallTimeoutError extends Error {
  override name = "TimeoutError";
}

/** The type name and message of anything a method threw. */
export function describeThrown(thrown: unknown): { type: string; message: string } {
  if (thrown instanceof Error) {
    const type = typeof thrown.name === "string" && thrown.name !== "" ? thrown.name : "Error";
    return { type, message: thrown.message };
  }
  return { type: "Error", message: String(thrown) };
}
