/**
 * The Durable Object base class behind every model: state in SQLite with its
 * version, idempotent operations, method dispatch, events and WebSocket
 * subscriptions (with the Hibernation API).
 */
import { DurableObject } from "cloudflare:workers";
import { describeThrown, Failure } from "./errors";
import {
  callReplyFrame,
  errorFrame,
  eventFrame,
  freshRecord,
  PING_FRAME,
  PONG_FRAME,
  recordFrom,
  snapshotFrame,
  type EmittedEvent,
  type SocketRecord,
} from "./frames";
import { respondFailure } from "./http";
import { inspectJson, isJson, isJsonObject, JsonError, type Json, type JsonObject } from "./json";
import {
  CLOSE,
  exceedsBytes,
  failureReply,
  FrameError,
  MAX_EVENTS_BYTES,
  MAX_FRAME_BYTES,
  MAX_RESULT_BYTES,
  MAX_STATE_BYTES,
  MAX_UNACKNOWLEDGED_BYTES,
  MAX_UNACKNOWLEDGED_FRAMES,
  MAX_UNANSWERED_CALLS,
  operationText,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  parseFrame,
  utf8Length,
  type Change,
  type ClientFrame,
  type Operation,
  type Reply,
} from "./protocol";
import { RemoteMethod } from "./remote";
import { selectedSubprotocol, socketMayCall, ticketTags } from "./ticket";
import { checkArguments, ModelSpec } from "./schema";
import { DEFAULT_RETENTION, ObjectStore, type ChangeKind, type Remembered, type Retention, type Stored } from "./store";
import { INVALID, type Infer, type Issue, type Specs } from "./types";

/** Names of the base class that remote methods may not take. */
const RESERVED = new Set([
  "fetch",
  "alarm",
  "dispatch",
  "goAway",
  "webSocketMessage",
  "webSocketClose",
  "webSocketError",
  "state",
  "emit",
  "ctx",
  "env",
  "constructor",
]);

/**
 * The objects of this isolate that hold WebSockets, by model name (ids as hex
 * strings, hibernating objects included), so that a shutdown can reach them all.
 */
export const OBJECTS_WITH_SOCKETS = new Map<string, Set<string>>();

/** What a model class carries besides its instances: its declaration and retention. */
export interface ModelClass {
  readonly spec: ModelSpec;
  readonly retention: Retention;
}

/** The state of the call that is running: its working copy and the events it emitted. */
interface CallContext {
  draft: JsonObject;
  events: EmittedEvent[];
}

/** A socket as the object sees it: its durable record, and its calls waiting for a reply. */
interface Connection extends SocketRecord {
  unanswered: number;
  closed: boolean;
}

/** What a change remembers under its request id, before its version is known. */
interface RequestKey {
  requestId: string;
  digest: string;
}

/**
 * Base class of every model object. Subclass it through `DurableModel(name,
 * fields)`, declare remote methods as class fields with `remote(...)`, and
 * export the class from the Worker's main module.
 */
export abstract class DurableModelObject<S extends object = JsonObject> extends DurableObject {
  /** The model's name and fields; set by `DurableModel()`. */
  declare static readonly spec: ModelSpec;
  /** How many request ids each object remembers, for how long, and how many bytes of results. */
  static retention: Retention = DEFAULT_RETENTION;

  readonly #spec: ModelSpec;
  readonly #store: ObjectStore;
  #current: Stored;
  #call: CallContext | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #methods: Map<string, RemoteMethod> | null = null;
  #alarmAt: number | null = null;
  readonly #connections = new WeakMap<WebSocket, Connection>();

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    const model = this.constructor as unknown as ModelClass;
    this.#spec = model.spec;
    this.#store = new ObjectStore(ctx.storage, model.retention);
    this.#current = this.#normalized(this.#store.read());
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    if (ctx.getWebSockets().length > 0) this.#holdsSockets(true);
    void ctx.blockConcurrencyWhile(async () => {
      this.#alarmAt = await ctx.storage.getAlarm();
    });
  }

  /** The object's state, to read and change inside a remote method. */
  protected get state(): S {
    if (this.#call === null) throw new Error("`state` is only available inside a remote method");
    return this.#call.draft as S;
  }

  /** Emits an event; subscribers receive it once the call's change is stored. */
  protected emit(name: string, data: JsonObject = {}): void {
    if (this.#call === null) throw new Error("`emit` is only available inside a remote method");
    if (typeof name !== "string" || name === "") throw new TypeError("an event needs a name");
    if (!isJsonObject(data) || !isJson(data)) throw new TypeError(`event ${name} data must be a JSON object`);
    this.#call.events.push({ name, dataJson: JSON.stringify(this.#spec.checkEvent(name, data)) });
  }

  /** Runs one operation handed over by the router; never throws for bad input. */
  async dispatch(operation: Operation): Promise<Reply> {
    if (operation.op === "read") return this.#readReply();
    return this.#exclusive(() => this.#change(operation));
  }

  /** Closes every WebSocket with 1001 (going away): the server is shutting down. */
  async goAway(): Promise<number> {
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) closeSocket(ws, CLOSE.goingAway, "the server is shutting down");
    return sockets.length;
  }

  /** Accepts a WebSocket the router has already authorised. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return respondFailure(new Failure("bad_request", "expected a WebSocket upgrade"));
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ticketTags(request));
    server.serializeAttachment(freshRecord());
    this.#holdsSockets(true);
    const headers: Record<string, string> = { [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) };
    const subprotocol = selectedSubprotocol(request);
    if (subprotocol !== null) headers["Sec-WebSocket-Protocol"] = subprotocol;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (typeof message !== "string") return closeSocket(ws, CLOSE.binary, "binary frames are not accepted");
    if (exceedsBytes(message, MAX_FRAME_BYTES)) return closeSocket(ws, CLOSE.tooBig, "frame larger than 1 MiB");
    let frame: ClientFrame;
    try {
      frame = parseFrame(message);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      return this.#send(ws, [errorFrame(error.id, error)]);
    }
    await this.#onFrame(ws, frame);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeSocket(ws, replyCloseCode(code), reason);
    this.#holdsSockets(this.ctx.getWebSockets().some((other) => other !== ws && other.readyState === WebSocket.OPEN));
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    console.warn("WebSocket error:", describeThrown(error).message);
    closeSocket(ws, CLOSE.unexpected, "socket error");
    this.#holdsSockets(this.ctx.getWebSockets().some((other) => other !== ws && other.readyState === WebSocket.OPEN));
  }

  #holdsSockets(holds: boolean): void {
    const id = this.ctx.id.toString();
    let ids = OBJECTS_WITH_SOCKETS.get(this.#spec.name);
    if (holds) {
      if (ids === undefined) OBJECTS_WITH_SOCKETS.set(this.#spec.name, (ids = new Set()));
      ids.add(id);
    } else {
      ids?.delete(id);
    }
  }

  /** Forgets expired request ids and schedules the next pruning. */
  override async alarm(): Promise<void> {
    const next = this.#store.pruneExpired();
    this.#alarmAt = next;
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  // --- operations ---------------------------------------------------------

  #exclusive<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(run);
    this.#queue = result.then(noop, noop);
    return result;
  }

  /** A change: replayed from its request id's record, or performed (and remembered if it changed something). */
  async #change(operation: Change): Promise<Reply> {
    try {
      if (operation.requestId === null) return await this.#perform(operation, null);
      const key = { requestId: operation.requestId, digest: await sha256Hex(operationText(operation)) };
      const remembered = this.#store.recall(key.requestId);
      if (remembered !== null) return this.#replay(remembered, key.digest);
      return await this.#perform(operation, key);
    } catch (error) {
      if (error instanceof Failure) return failureReply(error);
      console.error("unexpected failure:", error);
      return failureReply(new Failure("internal", "unexpected server failure; nothing was applied"));
    }
  }

  #perform(operation: Change, key: RequestKey | null): Promise<Reply> {
    switch (operation.op) {
      case "call":
        return this.#callMethod(operation.method, operation.args, key);
      case "create":
        return this.#create(operation.state, key);
      case "update":
        return this.#update(operation.fields, operation.ifVersion, key);
      case "delete":
        return this.#delete(key);
    }
  }

  /** The stored reply of a request id, for the same operation only; `state` only while the object is at that version. */
  #replay(remembered: Remembered, digest: string): Reply {
    if (remembered.digest !== null && remembered.digest !== digest) {
      throw new Failure("request_id_reused", `request id ${remembered.requestId} was used for another operation; nothing was changed`);
    }
    const { version, stateJson } = this.#current;
    const state = version === remembered.version ? `,"state":${stateJson ?? "null"}` : "";
    const head = { call: `"result":${remembered.result ?? "null"},`, delete: '"deleted":true,', create: "", update: "" }[remembered.kind];
    return { status: remembered.status, body: `{${head}"version":${remembered.version}${state}}` };
  }

  #readReply(): Reply {
    const { version, stateJson } = this.#current;
    return { status: 200, body: `{"version":${version},"state":${stateJson ?? "null"}}` };
  }

  async #callMethod(name: string, given: JsonObject, key: RequestKey | null): Promise<Reply> {
    const method = this.#method(name);
    const args = checkArguments(method.args, given);
    const baseJson = this.#baseStateJson();
    const call: CallContext = { draft: JSON.parse(baseJson) as JsonObject, events: [] };
    const result = await this.#run(name, method, args, call);
    const resultJson = this.#encodeResult(name, method, result);
    const draftJson = this.#encodeState(name, call.draft);
    checkEvents(call.events);
    const unchanged = draftJson === baseJson;
    if (unchanged && call.events.length === 0) return this.#callReply(resultJson, this.#current);
    // A call that only emitted events is a change too: a new version, the state as it was.
    const next = { version: this.#current.version + 1, stateJson: unchanged ? this.#current.stateJson : draftJson };
    await this.#apply(next, this.#record(key, "call", 200, next.version, resultJson), call.events);
    return this.#callReply(resultJson, next);
  }

  #callReply(resultJson: string, { version, stateJson }: Stored): Reply {
    return { status: 200, body: `{"result":${resultJson},"version":${version},"state":${stateJson ?? "null"}}` };
  }

  async #run(name: string, method: RemoteMethod, args: JsonObject, call: CallContext): Promise<unknown> {
    this.#call = call;
    try {
      return await method.body(args);
    } catch (thrown) {
      const { type, message } = describeThrown(thrown);
      const summary = `${this.#spec.name}.${name} raised ${type}${message === "" ? "" : `: ${message}`}`;
      throw new Failure("remote_error", summary, { type, message });
    } finally {
      this.#call = null;
    }
  }

  async #create(given: JsonObject, key: RequestKey | null): Promise<Reply> {
    if (this.#current.stateJson !== null) {
      throw new Failure("already_exists", `the object already has state (version ${this.#current.version})`);
    }
    const stateJson = checkStateSize(JSON.stringify(this.#spec.createState(given)));
    return this.#write(201, "create", stateJson, key);
  }

  async #update(fields: JsonObject, ifVersion: number | null, key: RequestKey | null): Promise<Reply> {
    const { version, stateJson } = this.#current;
    if (ifVersion !== null && ifVersion !== version) {
      throw new Failure("conflict", `version is ${version}, not ${ifVersion}; nothing was changed`, {
        expected: ifVersion,
        actual: version,
      });
    }
    this.#spec.checkUpdate(fields);
    const next = stateJson === null ? this.#spec.createState(fields) : { ...(JSON.parse(stateJson) as JsonObject), ...fields };
    const nextJson = JSON.stringify(next);
    if (nextJson === stateJson) return this.#readReply();
    return this.#write(200, "update", checkStateSize(nextJson), key);
  }

  async #delete(key: RequestKey | null): Promise<Reply> {
    const { version, stateJson } = this.#current;
    if (stateJson === null) return { status: 200, body: `{"deleted":false,"version":${version},"state":null}` };
    const next = { version: version + 1, stateJson: null };
    await this.#apply(next, this.#record(key, "delete", 200, next.version, null), []);
    return { status: 200, body: `{"deleted":true,"version":${next.version},"state":null}` };
  }

  /** Stores a new state as the next version, replying `{"version", "state"}` with `status`. */
  async #write(status: number, kind: ChangeKind, stateJson: string, key: RequestKey | null): Promise<Reply> {
    const next = { version: this.#current.version + 1, stateJson };
    await this.#apply(next, this.#record(key, kind, status, next.version, null), []);
    return { status, body: `{"version":${next.version},"state":${stateJson}}` };
  }

  #record(key: RequestKey | null, kind: ChangeKind, status: number, version: number, result: string | null): Remembered | null {
    return key === null ? null : { ...key, kind, status, version, result };
  }

  /** Commits a change with its request id, then tells subscribers: snapshot first, then events. */
  async #apply(next: Stored, remembered: Remembered | null, events: EmittedEvent[]): Promise<void> {
    this.#store.commit(next, remembered);
    this.#current = next;
    this.#broadcast(next, events);
    if (remembered !== null) await this.#scheduleExpiry();
  }

  /** Makes sure an alarm will prune request ids; the change is already stored, so this never fails it. */
  async #scheduleExpiry(): Promise<void> {
    if (this.#alarmAt !== null) return;
    const at = Date.now() + this.#store.retention.maxAgeMs;
    try {
      await this.ctx.storage.setAlarm(at);
      this.#alarmAt = at;
    } catch (error) {
      console.warn("could not schedule request id pruning:", describeThrown(error).message);
    }
  }

  /** The JSON text a method starts from: the stored state, or the defaults of a virtual object. */
  #baseStateJson(): string {
    const stored = this.#current.stateJson;
    if (stored !== null) return stored;
    if (this.#spec.defaultsJson === null) {
      throw new Failure("object_not_found", "the object has no state and its model has fields without defaults; create it first");
    }
    return this.#spec.defaultsJson;
  }

  /** The result as JSON text: JSON, of the declared type, at most 1 MiB, and a value a client could send back. */
  #encodeResult(name: string, method: RemoteMethod, result: unknown): string {
    const value = result === undefined ? null : result;
    const rejected = `${this.#spec.name}.${name} returned a value its annotation rejects; nothing was changed`;
    if (!isJson(value)) throw new Failure("invalid_result", rejected);
    let checked = value as Json;
    if (method.returns !== null) {
      const issues: Issue[] = [];
      const parsed = method.returns.parse(value, [], issues);
      if (parsed === INVALID) throw new Failure("invalid_result", rejected, issueDetails(issues));
      checked = parsed; // stored as pydantic writes it (datetimes, UUIDs)
    }
    const json = JSON.stringify(checked);
    if (exceedsBytes(json, MAX_RESULT_BYTES)) {
      throw new Failure("invalid_result", `${this.#spec.name}.${name} returned a result larger than 1 MiB; nothing was changed`);
    }
    if (!carriable(json)) throw new Failure("invalid_result", rejected);
    return json;
  }

  /** The state a method left behind as JSON text: valid for the fields (else `invalid_result`), at most 1 MiB. */
  #encodeState(name: string, draft: JsonObject): string {
    const rejected = `${this.#spec.name}.${name} left a state its fields reject; nothing was changed`;
    const issues = this.#spec.checkState(draft);
    if (issues.length > 0) throw new Failure("invalid_result", rejected, issueDetails(issues));
    const json = checkStateSize(JSON.stringify(draft));
    if (!carriable(json)) throw new Failure("invalid_result", rejected);
    return json;
  }

  #normalized(stored: Stored): Stored {
    if (stored.stateJson === null) return stored;
    const state: unknown = JSON.parse(stored.stateJson);
    const normalized = isJsonObject(state) ? this.#spec.normalize(state) : {};
    return { version: stored.version, stateJson: JSON.stringify(normalized) };
  }

  #method(name: string): RemoteMethod {
    const method = name.startsWith("_") ? undefined : this.#methodTable().get(name);
    if (method === undefined) throw new Failure("unknown_method", `${this.#spec.name} has no remote method ${JSON.stringify(name)}`);
    return method;
  }

  #methodTable(): Map<string, RemoteMethod> {
    if (this.#methods !== null) return this.#methods;
    const table = this.#spec.boundMethods(this);
    for (const [name, value] of Object.entries(this)) {
      if (!(value instanceof RemoteMethod)) continue;
      if (RESERVED.has(name)) throw new Error(`remote method name ${JSON.stringify(name)} is reserved`);
      table.set(name, value as RemoteMethod);
    }
    this.#methods = table;
    return table;
  }

  // --- WebSockets ---------------------------------------------------------

  async #onFrame(ws: WebSocket, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case "ping":
        // As the runtime's own answer to the exact ping text, the pong is not counted.
        this.#acknowledged(this.#connection(ws));
        try {
          ws.send(PONG_FRAME);
        } catch {
          // Closing.
        }
        return;
      case "subscribe":
        return this.#subscribe(ws, frame);
      case "call":
        return this.#callOver(ws, frame.id, frame.operation);
    }
  }

  /**
   * Runs a call frame. Its reply is sent before the next operation on the
   * object starts, so a connection sees each call's snapshot, then its events,
   * then its result.
   */
  async #callOver(ws: WebSocket, id: number, operation: Change): Promise<void> {
    const method = operation.op === "call" ? operation.method : "";
    if (!socketMayCall(this.ctx.getTags(ws), method)) {
      return this.#send(ws, [errorFrame(id, new Failure("forbidden", `the ticket does not allow ${JSON.stringify(method)} here`))]);
    }
    const connection = this.#connection(ws);
    if (connection.unanswered >= MAX_UNANSWERED_CALLS) {
      const refused = new Failure("overloaded", `more than ${MAX_UNANSWERED_CALLS} calls are waiting on this connection; the call was not run`);
      return this.#send(ws, [errorFrame(id, refused)]);
    }
    connection.unanswered += 1;
    try {
      await this.#exclusive(async () => this.#send(ws, [callReplyFrame(id, await this.#change(operation))]));
    } finally {
      connection.unanswered -= 1;
    }
  }

  #subscribe(ws: WebSocket, frame: Extract<ClientFrame, { type: "subscribe" }>): void {
    const connection = this.#connection(ws);
    if (connection.subscription.subscribed) {
      return this.#send(ws, [errorFrame(null, new Failure("bad_request", "this connection is already subscribed"))]);
    }
    connection.subscription = { subscribed: true, snapshots: frame.snapshots, events: frame.events, since: frame.since };
    const { version, stateJson } = this.#current;
    const frames = frame.snapshots && (frame.since === null || version > frame.since) ? [snapshotFrame(version, stateJson)] : [];
    this.#send(ws, frames);
  }

  #connection(ws: WebSocket): Connection {
    let connection = this.#connections.get(ws);
    if (connection === undefined) {
      connection = { ...recordFrom(ws.deserializeAttachment()), unanswered: 0, closed: false };
      this.#connections.set(ws, connection);
    }
    return connection;
  }

  /** The client pinged: what was sent before is counted as read. */
  #acknowledged(connection: Connection): void {
    connection.frames = 0;
    connection.bytes = 0;
  }

  /**
   * Sends frames on one socket, counting what was sent since the client's last
   * ping (the runtime answers `{"type":"ping"}` itself and records when). A
   * socket over 1,000 frames or 8 MiB is closed with 4008 instead: the runtime
   * buffers whatever a client does not read, and shows no send buffer to measure.
   */
  #send(ws: WebSocket, frames: string[], sizes?: number[]): void {
    const connection = this.#connection(ws);
    if (connection.closed) return;
    const pingAt = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null;
    if (pingAt !== null && pingAt !== connection.pingAt) {
      connection.pingAt = pingAt;
      this.#acknowledged(connection);
    }
    for (const [index, frame] of frames.entries()) {
      connection.frames += 1;
      connection.bytes += sizes?.[index] ?? utf8Length(frame);
      if (connection.frames > MAX_UNACKNOWLEDGED_FRAMES || connection.bytes > MAX_UNACKNOWLEDGED_BYTES) {
        connection.closed = true;
        closeSocket(ws, CLOSE.fellBehind, "too many frames unread since the last ping");
        return;
      }
      try {
        ws.send(frame);
      } catch {
        // The socket is closing; its client resumes with `since` when it reconnects.
        connection.closed = true;
        return;
      }
    }
    const { subscription, frames: sent, bytes } = connection;
    try {
      ws.serializeAttachment({ subscription, frames: sent, bytes, pingAt: connection.pingAt } satisfies SocketRecord);
    } catch {
      // Closed meanwhile.
    }
  }

  /** Sends a change's snapshot and events to every subscriber that asked for them and is past `since`. */
  #broadcast({ version, stateJson }: Stored, events: EmittedEvent[]): void {
    const snapshot = snapshotFrame(version, stateJson);
    const eventFrames = events.map((event) => eventFrame(version, event));
    const snapshotSize = utf8Length(snapshot);
    const eventSizes = eventFrames.map(utf8Length);
    for (const ws of this.ctx.getWebSockets()) {
      const { subscription } = this.#connection(ws);
      if (!subscription.subscribed || (subscription.since !== null && version <= subscription.since)) continue;
      const frames: string[] = [];
      const sizes: number[] = [];
      if (subscription.snapshots) frames.push(snapshot), sizes.push(snapshotSize);
      if (subscription.events) frames.push(...eventFrames), sizes.push(...eventSizes);
      if (frames.length > 0) this.#send(ws, frames, sizes);
    }
  }
}

/**
 * Declares a model: `class Counter extends DurableModel("Counter", { value:
 * t.int.default(0) }) { ... }`. The name is the model's name on the wire and
 * must match the Python model's.
 */
export function DurableModel<F extends Specs>(name: string, fields: F) {
  const spec = new ModelSpec(name, fields);
  abstract class Model extends DurableModelObject<Infer<F>> {
    static override readonly spec = spec;
  }
  return Model;
}

function issueDetails(issues: Issue[]): JsonObject {
  return { errors: issues.map((issue) => ({ loc: issue.loc, msg: issue.msg, type: issue.type })) };
}

/** `413 state_too_large` for a state over 1 MiB; returns the state otherwise. */
function checkStateSize(stateJson: string): string {
  if (exceedsBytes(stateJson, MAX_STATE_BYTES)) {
    throw new Failure("state_too_large", `the change would make the state larger than ${MAX_STATE_BYTES} bytes; nothing was changed`, {
      limit: MAX_STATE_BYTES,
    });
  }
  return stateJson;
}

/** `413 state_too_large` when a change's events (names and data) exceed 256 KiB together. */
function checkEvents(events: EmittedEvent[]): void {
  let total = 0;
  for (const event of events) {
    total += utf8Length(event.name) + utf8Length(event.dataJson);
    if (total > MAX_EVENTS_BYTES) {
      throw new Failure("state_too_large", `the change's events exceed ${MAX_EVENTS_BYTES} bytes together; nothing was changed`, {
        limit: MAX_EVENTS_BYTES,
      });
    }
  }
  for (const event of events) {
    if (!carriable(event.dataJson)) throw new Failure("invalid_result", `event ${event.name} holds a value clients cannot be sent`);
  }
}

/**
 * Whether a JSON text the server produced is one a client could send back: no
 * integer beyond ±(2^53 − 1), no unpaired surrogate, nested at most 64 levels.
 */
function carriable(json: string): boolean {
  try {
    return inspectJson(json).outOfRange.length === 0;
  } catch (error) {
    if (error instanceof JsonError) return false;
    throw error;
  }
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

function closeSocket(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}

function noop(): void {}

/**
 * The code to answer a peer's close frame with: its own code when an endpoint may
 * send it, 1000 when it sent none, and 1002 (protocol error) for codes no endpoint
 * may put on the wire (RFC 6455, section 7.4).
 */
export function replyCloseCode(code: number): number {
  if (code === 1005 || code === 1006) return 1000;
  const sendable = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011);
  return sendable || (code >= 3000 && code <= 4999) ? code : 1002;
}
