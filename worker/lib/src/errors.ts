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

/** The type name and message of anything a method threw. */
export function describeThrown(thrown: unknown): { type: string; message: string } {
  if (thrown instanceof Error) {
    const type = typeof thrown.name === "string" && thrown.name !== "" ? thrown.name : "Error";
    return { type, message: thrown.message };
  }
  return { type: "Error", message: String(thrown) };
}
