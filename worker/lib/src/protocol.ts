/**
 * Protocol version 1: constants, identifier rules, and the parsers of request
 * bodies and WebSocket frames. Nothing here does I/O.
 */
import { Failure } from "./errors";
import { hasOwn, isJsonObject, parseJson, type JsonObject } from "./json";

export const PROTOCOL_VERSION = 1;
export const PROTOCOL_HEADER = "Durable-Protocol";
/** Largest accepted HTTP body and WebSocket frame, in bytes. */
export const MAX_BODY_BYTES = 1_048_576;
export const MAX_FRAME_BYTES = 1_048_576;
export const MAX_ID_BYTES = 256;

export const MODEL_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
export const METHOD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

const encoder = new TextEncoder();

/** The length of `text` in UTF-8 bytes. */
export function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}

/** Whether `text` is longer than `limit` UTF-8 bytes, without encoding short strings. */
export function exceedsBytes(text: string, limit: number): boolean {
  // Every UTF-16 code unit takes 1 to 3 bytes: skip the encoding when the bounds decide.
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return utf8Length(text) > limit;
}

/** Checks an object id: 1 to 256 bytes of UTF-8, no control characters. */
export function checkObjectId(id: string): void {
  if (id.length === 0) throw new Failure("bad_request", "object id is empty");
  if (exceedsBytes(id, MAX_ID_BYTES)) {
    throw new Failure("bad_request", `object id is longer than ${MAX_ID_BYTES} bytes`);
  }
  if (CONTROL_CHARACTER.test(id)) throw new Failure("bad_request", "object id contains a control character");
  if (id === "." || id === "..") throw new Failure("bad_request", "object ids . and .. are reserved: URLs cannot carry them");
  if (/[\ud800-\udfff]/.test(id) && !id.isWellFormed()) {
    throw new Failure("bad_request", "object id is not valid UTF-8");
  }
}

export function checkModelName(name: string): void {
  if (!MODEL_NAME.test(name)) throw new Failure("bad_request", `malformed model name ${JSON.stringify(name)}`);
}

export function checkMethodName(name: string): void {
  if (!METHOD_NAME.test(name)) throw new Failure("bad_request", `malformed method name ${JSON.stringify(name)}`);
}

/** The operations an object performs, as the router and sockets hand them over. */
export type Operation =
  | { op: "read" }
  | { op: "call"; method: string; args: JsonObject; requestId: string | null }
  | { op: "create"; state: JsonObject; requestId: string | null }
  | { op: "update"; fields: JsonObject; ifVersion: number | null; requestId: string | null }
  | { op: "delete"; requestId: string | null };

/** An object's reply: an HTTP status and a JSON body as text. */
export interface Reply {
  status: number;
  body: string;
}

/** The reply for a failure, as its error envelope. */
export function failureReply(failure: Failure): Reply {
  return { status: failure.status, body: JSON.stringify(failure.toEnvelope()) };
}

function rejectUnknownMembers(body: JsonObject, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw new Failure("bad_request", `unknown member ${JSON.stringify(key)} in ${what}`);
    }
  }
}

function objectMember(body: JsonObject, key: string, what: string): JsonObject | undefined {
  if (!hasOwn(body, key)) return undefined;
  const value = body[key];
  if (!isJsonObject(value)) throw new Failure("bad_request", `${what} member ${JSON.stringify(key)} must be an object`);
  return value;
}

function isVersion(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** The optional `request_id` member (a missing or null id means none). */
export function requestIdMember(body: JsonObject): string | null {
  if (!hasOwn(body, "request_id") || body.request_id === null) return null;
  const id = body.request_id;
  if (typeof id !== "string" || !REQUEST_ID.test(id)) {
    throw new Failure("bad_request", "request_id must be 1 to 128 characters of [A-Za-z0-9_.:-]");
  }
  return id;
}

/** `POST .../call/{method}` body: `{"args"?: {...}, "request_id"?: "..."}`. */
export function parseCallBody(method: string, body: JsonObject): Operation {
  rejectUnknownMembers(body, ["args", "request_id"], "call body");
  const args = objectMember(body, "args", "call body") ?? {};
  return { op: "call", method, args, requestId: requestIdMember(body) };
}

/** `PUT` body: `{"state"?: {...}, "request_id"?: "..."}`; missing state means all defaults. */
export function parseCreateBody(body: JsonObject): Operation {
  rejectUnknownMembers(body, ["state", "request_id"], "create body");
  const state = objectMember(body, "state", "create body") ?? {};
  return { op: "create", state, requestId: requestIdMember(body) };
}

/** `PATCH` body: `{"fields": {...}, "if_version"?: int | null, "request_id"?: "..."}`. */
export function parseUpdateBody(body: JsonObject): Operation {
  rejectUnknownMembers(body, ["fields", "if_version", "request_id"], "update body");
  const fields = objectMember(body, "fields", "update body");
  if (fields === undefined) throw new Failure("bad_request", 'update body needs a "fields" object');
  const ifVersion = hasOwn(body, "if_version") ? body.if_version : null;
  if (ifVersion !== null && !isVersion(ifVersion)) {
    throw new Failure("bad_request", "if_version must be a non-negative integer or null");
  }
  return { op: "update", fields, ifVersion: ifVersion as number | null, requestId: requestIdMember(body) };
}

/** `DELETE` body (optional): `{"request_id"?: "..."}`. */
export function parseDeleteBody(body: JsonObject): Operation {
  rejectUnknownMembers(body, ["request_id"], "delete body");
  return { op: "delete", requestId: requestIdMember(body) };
}

/** A frame a client sends over the WebSocket. */
export type ClientFrame =
  | { type: "subscribe"; since: number | null; snapshots: boolean; events: boolean }
  | { type: "call"; id: number; operation: Operation }
  | { type: "ping" };

/** A frame the server could not accept; `id` is the call id when it was readable. */
export class FrameError extends Failure {
  constructor(
    readonly id: number | null,
    message: string,
  ) {
    super("bad_request", message);
  }
}

/** Parses one text frame, throwing `FrameError` for anything malformed or unknown. */
export function parseFrame(text: string): ClientFrame {
  let frame: unknown;
  try {
    frame = parseJson(text);
  } catch {
    throw new FrameError(null, "frame is not valid JSON");
  }
  if (!isJsonObject(frame)) throw new FrameError(null, "frame must be a JSON object");
  switch (frame.type) {
    case "subscribe":
      return parseSubscribe(frame);
    case "call":
      return parseCallFrame(frame);
    case "ping":
      rejectFrameMembers(frame, ["type"], null);
      return { type: "ping" };
    default:
      throw new FrameError(null, `unknown frame type ${JSON.stringify(frame.type ?? null)}`);
  }
}

function rejectFrameMembers(frame: JsonObject, allowed: readonly string[], id: number | null): void {
  try {
    rejectUnknownMembers(frame, allowed, `${String(frame.type)} frame`);
  } catch (error) {
    throw new FrameError(id, (error as Error).message);
  }
}

function flag(frame: JsonObject, key: string): boolean {
  if (!hasOwn(frame, key)) return true;
  const value = frame[key];
  if (typeof value !== "boolean") throw new FrameError(null, `subscribe member ${JSON.stringify(key)} must be a boolean`);
  return value;
}

function parseSubscribe(frame: JsonObject): ClientFrame {
  rejectFrameMembers(frame, ["type", "since", "snapshots", "events"], null);
  const since = hasOwn(frame, "since") ? frame.since : null;
  if (since !== null && !isVersion(since)) {
    throw new FrameError(null, 'subscribe member "since" must be a non-negative integer or null');
  }
  return { type: "subscribe", since: since as number | null, snapshots: flag(frame, "snapshots"), events: flag(frame, "events") };
}

function parseCallFrame(frame: JsonObject): ClientFrame {
  const id = frame.id;
  if (typeof id !== "number" || !Number.isSafeInteger(id)) {
    throw new FrameError(null, 'call frame needs an integer "id"');
  }
  rejectFrameMembers(frame, ["type", "id", "method", "args", "request_id"], id);
  const method = frame.method;
  if (typeof method !== "string" || !METHOD_NAME.test(method)) {
    throw new FrameError(id, 'call frame needs a well-formed "method" name');
  }
  try {
    const { type: _type, id: _id, method: _method, ...body } = frame;
    return { type: "call", id, operation: parseCallBody(method, body) };
  } catch (error) {
    throw new FrameError(id, (error as Error).message);
  }
}
