/**
 * Protocol version 1: constants, identifier rules, and the parsers of request
 * bodies and WebSocket frames. Nothing here does I/O.
 */
import { Failure, type ErrorCode } from "./errors";
import { hasOwn, isJsonObject, JsonError, parseJson, type JsonObject, type Location, type ParsedJson } from "./json";

export const PROTOCOL_VERSION = 1;
export const PROTOCOL_HEADER = "Durable-Protocol";
/** What the server supports beyond version 1, on every reply and handshake: patches (`have`, `patches`). */
export const FEATURES_HEADER = "Durable-Features";
export const FEATURES = "patch";
/** Largest accepted HTTP body and WebSocket frame, in bytes. */
export const MAX_BODY_BYTES = 1_048_576;
export const MAX_FRAME_BYTES = 1_048_576;
export const MAX_ID_BYTES = 256;
/** Largest encoded state (compact UTF-8 JSON) an object may hold. */
export const MAX_STATE_BYTES = 1_048_576;
/** Largest total size of the events one change emits (each event's name and encoded data). */
export const MAX_EVENTS_BYTES = 262_144;
/** Largest encoded result a method may return. */
export const MAX_RESULT_BYTES = 1_048_576;
/** An object's event log keeps at most this many events... */
export const EVENT_LOG_EVENTS = 1_000;
/** ...this many bytes of them (each event: its name and its data's JSON, in UTF-8)... */
export const EVENT_LOG_BYTES = 1_048_576;
/** ...for at most this long, in milliseconds. */
export const EVENT_LOG_MS = 24 * 3_600_000;
/** Times a schedule's call is tried before the schedule is kept as failed. */
export const SCHEDULE_ATTEMPTS = 10;
/** Milliseconds before the first retry of a failed schedule; each later one waits twice as long... */
export const SCHEDULE_RETRY_FIRST_MS = 1_000;
/** ...up to this. */
export const SCHEDULE_RETRY_MAX_MS = 300_000;
/** The request id of a schedule's call is this and the schedule's id. */
export const SCHEDULE_REQUEST_PREFIX = "schedule:";
/** Ids a listing page holds when the request does not say, and at most. */
export const LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1_000;
/** Calls one connection may have waiting for their reply; more are answered `overloaded`. */
export const MAX_UNANSWERED_CALLS = 256;
/** Frames and bytes a server sends on a connection between two pings before it closes it (4008). */
export const MAX_UNACKNOWLEDGED_FRAMES = 1_000;
export const MAX_UNACKNOWLEDGED_BYTES = 8_388_608;

/** Close codes a server sends. */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  binary: 1003,
  tooBig: 1009,
  unexpected: 1011,
  fellBehind: 4008,
} as const;

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

/** Checks an object id: 1 to 256 bytes of UTF-8, no control characters, not `.` or `..`. */
export function checkObjectId(id: string): void {
  if (id.length === 0) throw new Failure("invalid_id", "object id is empty");
  if (exceedsBytes(id, MAX_ID_BYTES)) {
    throw new Failure("invalid_id", `object id is longer than ${MAX_ID_BYTES} bytes`);
  }
  if (CONTROL_CHARACTER.test(id)) throw new Failure("invalid_id", "object id contains a control character");
  if (id === "." || id === "..") throw new Failure("invalid_id", "object ids . and .. are reserved: URLs cannot carry them");
  if (/[\ud800-\udfff]/.test(id) && !id.isWellFormed()) {
    throw new Failure("invalid_id", "object id is not valid UTF-8");
  }
}

export function checkModelName(name: string): void {
  if (!MODEL_NAME.test(name)) throw new Failure("invalid_id", `malformed model name ${JSON.stringify(name)}`);
}

export function checkMethodName(name: string): void {
  if (!METHOD_NAME.test(name)) throw new Failure("invalid_id", `malformed method name ${JSON.stringify(name)}`);
}

/**
 * The operations an object performs, as the router and sockets hand them over.
 * `have` is the version of the state the client holds (null: none): the reply
 * may then carry a patch instead of the state. It is not part of what a request
 * id is bound to.
 */
export type Operation =
  | { op: "read"; have?: number | null }
  | { op: "call"; method: string; args: JsonObject; requestId: string | null; have?: number | null }
  | { op: "create"; state: JsonObject; requestId: string | null; have?: number | null }
  | { op: "update"; fields: JsonObject; ifVersion: number | null; requestId: string | null; have?: number | null }
  | { op: "delete"; requestId: string | null };

export type Change = Exclude<Operation, { op: "read" }>;

/**
 * What an object is told with an operation: its own id (as clients name it;
 * a Durable Object only knows the hash of it), and the chain of objects whose
 * method bodies are waiting on this operation, outermost first (empty for a
 * client's request).
 */
export interface Caller {
  objectId: string;
  chain: readonly (readonly [model: string, objectId: string])[];
}

/** The header the router gives a WebSocket handshake the object's id in (percent-encoded). */
export const OBJECT_ID_HEADER = "Durable-Object-Id";

/**
 * What identifies an operation for its request id: its kind, method and
 * members, as JSON with sorted keys (the digest of this text is stored).
 */
export function operationText(operation: Change): string {
  switch (operation.op) {
    case "call":
      return canonicalJson({ kind: "call", method: operation.method, args: operation.args });
    case "create":
      return canonicalJson({ kind: "create", state: operation.state });
    case "update":
      return canonicalJson({ kind: "update", fields: operation.fields, if_version: operation.ifVersion });
    case "delete":
      return canonicalJson({ kind: "delete" });
  }
}

/** Compact JSON with the members of every object sorted by name. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isJsonObject(value)) {
    const members = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`);
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

/** An object's reply: an HTTP status and a JSON body as text. */
export interface Reply {
  status: number;
  body: string;
}

/** The reply for a failure, as its error envelope. */
export function failureReply(failure: Failure): Reply {
  return { status: failure.status, body: JSON.stringify(failure.toEnvelope()) };
}

// --- bodies -------------------------------------------------------------------

/** A request body, or the empty body (`{}`) when none was sent. */
export const EMPTY_BODY: ParsedJson = { value: {}, outOfRange: [], integralFloats: [] };

/**
 * Parses a body's text (already decoded from UTF-8): a JSON object, nested at
 * most 64 levels, with finite numbers and well-formed strings (`400 bad_request`).
 */
export function parseBody(text: string): ParsedJson {
  let parsed: ParsedJson;
  try {
    parsed = parseJson(text);
  } catch (error) {
    if (error instanceof JsonError) throw new Failure("bad_request", `the body is refused: ${error.message}`);
    throw error;
  }
  if (!isJsonObject(parsed.value)) throw new Failure("bad_request", "the body must be a JSON object");
  return parsed;
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

/** Whether member `key` of `parsed` is a JSON integer literal from 0 to 2^53 − 1 (not `1.0`, not `1e0`). */
function isCount(parsed: ParsedJson, key: string): boolean {
  const value = (parsed.value as JsonObject)[key];
  return Number.isSafeInteger(value) && (value as number) >= 0 && !parsed.integralFloats.includes(key);
}

/** The optional `request_id` member (a missing or null id means none). */
export function requestIdMember(body: JsonObject): string | null {
  if (!hasOwn(body, "request_id") || body.request_id === null) return null;
  const id = body.request_id;
  if (typeof id !== "string" || !REQUEST_ID.test(id)) {
    throw new Failure("invalid_id", "request_id must be 1 to 128 characters of [A-Za-z0-9_.:-]");
  }
  return id;
}

/** `422 validation_error` for integers beyond ±(2^53 − 1), located from the body's root. */
export function checkIntegerRange(outOfRange: Location[]): void {
  if (outOfRange.length === 0) return;
  const where = outOfRange.map((loc) => loc.join(".")).join(", ");
  const msg = "integer outside the range -(2**53 - 1) to 2**53 - 1";
  throw new Failure("validation_error", `${msg}: ${where}`, {
    errors: outOfRange.map((loc) => ({ loc, msg, type: "int_out_of_range" })),
  });
}

/** An optional version member (`if_version`, `have`): an integer from 0 to 2^53 − 1, or null. */
function versionMember(body: ParsedJson, key: string): number | null {
  const value = body.value as JsonObject;
  const version = hasOwn(value, key) ? value[key] : null;
  if (version !== null && !isCount(body, key)) {
    throw new Failure("bad_request", `${key} must be an integer from 0 to 2**53 - 1, or null`);
  }
  return version as number | null;
}

/** `POST .../call/{method}` body: `{"args"?: {...}, "request_id"?: "...", "have"?: int}`. */
export function parseCallBody(method: string, body: ParsedJson): Change {
  const value = body.value as JsonObject;
  rejectUnknownMembers(value, ["args", "request_id", "have"], "call body");
  const args = objectMember(value, "args", "call body") ?? {};
  const requestId = requestIdMember(value);
  const have = versionMember(body, "have");
  checkIntegerRange(body.outOfRange);
  return { op: "call", method, args, requestId, have };
}

/** `PUT` body: `{"state"?: {...}, "request_id"?: "...", "have"?: int}`; missing state means all defaults. */
export function parseCreateBody(body: ParsedJson): Change {
  const value = body.value as JsonObject;
  rejectUnknownMembers(value, ["state", "request_id", "have"], "create body");
  const state = objectMember(value, "state", "create body") ?? {};
  const requestId = requestIdMember(value);
  const have = versionMember(body, "have");
  checkIntegerRange(body.outOfRange);
  return { op: "create", state, requestId, have };
}

/** `PATCH` body: `{"fields": {...}, "if_version"?: int | null, "request_id"?: "...", "have"?: int}`. */
export function parseUpdateBody(body: ParsedJson): Change {
  const value = body.value as JsonObject;
  rejectUnknownMembers(value, ["fields", "if_version", "request_id", "have"], "update body");
  const fields = objectMember(value, "fields", "update body");
  if (fields === undefined) throw new Failure("bad_request", 'update body needs a "fields" object');
  const ifVersion = versionMember(body, "if_version");
  const requestId = requestIdMember(value);
  const have = versionMember(body, "have");
  checkIntegerRange(body.outOfRange);
  return { op: "update", fields, ifVersion, requestId, have };
}

/**
 * `have` from a `GET` query string (`?have=3`): 1 to 16 ASCII digits, as written
 * (not percent-decoded), else `400 bad_request`; other parameters are ignored,
 * and of several `have` the first counts.
 */
export function haveOfQuery(query: string): number | null {
  for (const part of query.split("&")) {
    const equals = part.indexOf("=");
    const name = equals < 0 ? part : part.slice(0, equals);
    if (name !== "have") continue;
    const value = equals < 0 ? "" : part.slice(equals + 1);
    if (!/^[0-9]{1,16}$/.test(value)) throw new Failure("bad_request", "'have' must be a non-negative integer");
    return Number(value);
  }
  return null;
}

/** `DELETE` body (optional): `{"request_id"?: "..."}`. */
export function parseDeleteBody(body: ParsedJson): Change {
  const value = body.value as JsonObject;
  rejectUnknownMembers(value, ["request_id"], "delete body");
  return { op: "delete", requestId: requestIdMember(value) };
}

// --- frames -------------------------------------------------------------------

/** A frame a client sends over the WebSocket. */
export type ClientFrame =
  | { type: "subscribe"; since: number | null; snapshots: boolean; events: boolean; patches: boolean }
  | { type: "call"; id: number; operation: Change }
  | { type: "ping" };

/** A frame the server could not accept; `id` is the call id when it was readable. */
export class FrameError extends Failure {
  constructor(
    readonly id: number | null,
    message: string,
    code: ErrorCode = "bad_request",
    details?: JsonObject,
  ) {
    super(code, message, details);
  }

  static from(id: number | null, failure: Failure): FrameError {
    return new FrameError(id, failure.message, failure.code, failure.details);
  }
}

/** Parses one text frame, throwing `FrameError` for anything malformed or unknown. */
export function parseFrame(text: string): ClientFrame {
  let parsed: ParsedJson;
  try {
    parsed = parseJson(text);
  } catch (error) {
    if (error instanceof JsonError) throw new FrameError(null, `the frame is refused: ${error.message}`);
    throw error;
  }
  const frame = parsed.value;
  if (!isJsonObject(frame)) throw new FrameError(null, "frame must be a JSON object");
  switch (frame.type) {
    case "subscribe":
      return parseSubscribe(parsed);
    case "call":
      return parseCallFrame(parsed);
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
    throw FrameError.from(id, error as Failure);
  }
}

function flag(frame: JsonObject, key: string, absent = true): boolean {
  if (!hasOwn(frame, key)) return absent;
  const value = frame[key];
  if (typeof value !== "boolean") throw new FrameError(null, `subscribe member ${JSON.stringify(key)} must be a boolean`);
  return value;
}

function parseSubscribe(parsed: ParsedJson): ClientFrame {
  const frame = parsed.value as JsonObject;
  rejectFrameMembers(frame, ["type", "since", "snapshots", "events", "patches"], null);
  const since = hasOwn(frame, "since") ? frame.since : null;
  if (since !== null && !isCount(parsed, "since")) {
    throw new FrameError(null, 'subscribe member "since" must be an integer from 0 to 2**53 - 1, or null');
  }
  return {
    type: "subscribe",
    since: since as number | null,
    snapshots: flag(frame, "snapshots"),
    events: flag(frame, "events"),
    patches: flag(frame, "patches", false),
  };
}

function parseCallFrame(parsed: ParsedJson): ClientFrame {
  const frame = parsed.value as JsonObject;
  if (!isCount(parsed, "id")) {
    throw new FrameError(null, 'call frame needs an "id": an integer from 0 to 2**53 - 1');
  }
  const id = frame.id as number;
  rejectFrameMembers(frame, ["type", "id", "method", "args", "request_id", "have"], id);
  try {
    const method = frame.method;
    if (typeof method !== "string") throw new Failure("bad_request", 'call frame needs a "method" name');
    checkMethodName(method);
    const { type: _type, id: _id, method: _method, ...body } = frame;
    return { type: "call", id, operation: parseCallBody(method, { ...parsed, value: body }) };
  } catch (error) {
    if (error instanceof Failure) throw FrameError.from(id, error);
    throw error;
  }
}
