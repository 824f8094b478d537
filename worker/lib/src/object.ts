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
  NOT_SUBSCRIBED,
  PING_FRAME,
  PONG_FRAME,
  snapshotFrame,
  subscriptionFrom,
  type EmittedEvent,
  type Subscription,
} from "./frames";
import { respondFailure } from "./http";
import { isJson, isJsonObject, type Json, type JsonObject } from "./json";
import {
  exceedsBytes,
  failureReply,
  FrameError,
  MAX_FRAME_BYTES,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  parseFrame,
  type ClientFrame,
  type Operation,
  type Reply,
} from "./protocol";
import { RemoteMethod } from "./remote";
import { selectedSubprotocol, socketMayCall, ticketTags } from "./ticket";
import { checkArguments, ModelSpec } from "./schema";
import { DEFAULT_RETENTION, ObjectStore, type Retention, type Stored } from "./store";
import { INVALID, type Infer, type Issue, type Specs } from "./types";

/** Names of the base class that remote methods may not take. */
const RESERVED = new Set([
  "fetch",
  "alarm",
  "dispatch",
  "webSocketMessage",
  "webSocketClose",
  "webSocketError",
  "state",
  "emit",
  "ctx",
  "env",
  "constructor",
]);

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

/**
 * Base class of every model object. Subclass it through `DurableModel(name,
 * fields)`, declare remote methods as class fields with `remote(...)`, and
 * export the class from the Worker's main module.
 */
export abstract class DurableModelObject<S extends object = JsonObject> extends DurableObject {
  /** The model's name and fields; set by `DurableModel()`. */
  declare static readonly spec: ModelSpec;
  /** How many request ids each object remembers, and for how long. */
  static retention: Retention = DEFAULT_RETENTION;

  readonly #spec: ModelSpec;
  readonly #store: ObjectStore;
  #current: Stored;
  #call: CallContext | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #methods: Map<string, RemoteMethod> | null = null;
  #alarmAt: number | null = null;
  readonly #subscriptions = new WeakMap<WebSocket, Subscription>();

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    const model = this.constructor as unknown as ModelClass;
    this.#spec = model.spec;
    this.#store = new ObjectStore(ctx.storage, model.retention);
    this.#current = this.#normalized(this.#store.read());
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
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
    return this.#exclusive(() => this.#mutate(operation));
  }

  /** Accepts a WebSocket the router has already authorised. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return respondFailure(new Failure("bad_request", "expected a WebSocket upgrade"));
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ticketTags(request));
    server.serializeAttachment(NOT_SUBSCRIBED);
    const headers: Record<string, string> = { [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) };
    const subprotocol = selectedSubprotocol(request);
    if (subprotocol !== null) headers["Sec-WebSocket-Protocol"] = subprotocol;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (typeof message !== "string") return closeSocket(ws, 1003, "binary frames are not accepted");
    if (exceedsBytes(message, MAX_FRAME_BYTES)) return closeSocket(ws, 1009, "frame larger than 1 MiB");
    let frame: ClientFrame;
    try {
      frame = parseFrame(message);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      return send(ws, errorFrame(error.id, error));
    }
    await this.#onFrame(ws, frame);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeSocket(ws, replyCloseCode(code), reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    console.warn("WebSocket error:", describeThrown(error).message);
    closeSocket(ws, 1011, "socket error");
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

  async #mutate(operation: Exclude<Operation, { op: "read" }>): Promise<Reply> {
    try {
      const remembered = operation.requestId === null ? null : this.#store.recall(operation.requestId);
      if (remembered !== null) return remembered;
      switch (operation.op) {
        case "call":
          return await this.#callMethod(operation.method, operation.args, operation.requestId);
        case "create":
          return await this.#create(operation.state, operation.requestId);
        case "update":
          return await this.#update(operation.fields, operation.ifVersion, operation.requestId);
        case "delete":
          return await this.#delete(operation.requestId);
      }
    } catch (error) {
      if (error instanceof Failure) return failureReply(error);
      console.error("unexpected failure:", error);
      return failureReply(new Failure("internal", "unexpected server failure; nothing was applied"));
    }
  }

  #readReply(): Reply {
    const { version, stateJson } = this.#current;
    return { status: 200, body: `{"version":${version},"state":${stateJson ?? "null"}}` };
  }

  async #callMethod(name: string, given: JsonObject, requestId: string | null): Promise<Reply> {
    const method = this.#method(name);
    const args = checkArguments(method.args, given);
    const baseJson = this.#baseStateJson();
    const call: CallContext = { draft: JSON.parse(baseJson) as JsonObject, events: [] };
    const result = await this.#run(name, method, args, call);
    const resultJson = encodeResult(method, result);
    const stateJson = this.#encodeState(call.draft);
    if (stateJson === baseJson) return this.#unchanged(resultJson, call.events);
    const version = this.#current.version + 1;
    const reply = { status: 200, body: `{"result":${resultJson},"version":${version},"state":${stateJson}}` };
    await this.#apply({ version, stateJson }, requestId, reply, call.events);
    return reply;
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

  /** A call that changed nothing: same version, nothing written, its events still sent. */
  #unchanged(resultJson: string, events: EmittedEvent[]): Reply {
    const { version, stateJson } = this.#current;
    this.#broadcast(version, undefined, events);
    return { status: 200, body: `{"result":${resultJson},"version":${version},"state":${stateJson ?? "null"}}` };
  }

  async #create(given: JsonObject, requestId: string | null): Promise<Reply> {
    if (this.#current.stateJson !== null) {
      throw new Failure("already_exists", `the object already has state (version ${this.#current.version})`);
    }
    const stateJson = JSON.stringify(this.#spec.createState(given));
    return this.#write(201, stateJson, requestId);
  }

  async #update(fields: JsonObject, ifVersion: number | null, requestId: string | null): Promise<Reply> {
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
    if (nextJson === stateJson) return { status: 200, body: `{"version":${version},"state":${stateJson}}` };
    return this.#write(200, nextJson, requestId);
  }

  async #delete(requestId: string | null): Promise<Reply> {
    const { version, stateJson } = this.#current;
    if (stateJson === null) return { status: 200, body: `{"deleted":false,"version":${version},"state":null}` };
    const reply = { status: 200, body: `{"deleted":true,"version":${version + 1},"state":null}` };
    await this.#apply({ version: version + 1, stateJson: null }, requestId, reply, []);
    return reply;
  }

  /** Stores a new state as the next version, replying `{"version", "state"}` with `status`. */
  async #write(status: number, stateJson: string, requestId: string | null): Promise<Reply> {
    const version = this.#current.version + 1;
    const reply = { status, body: `{"version":${version},"state":${stateJson}}` };
    await this.#apply({ version, stateJson }, requestId, reply, []);
    return reply;
  }

  /** Commits a change with its request id, then tells subscribers: snapshot first, then events. */
  async #apply(next: Stored, requestId: string | null, reply: Reply, events: EmittedEvent[]): Promise<void> {
    this.#store.commit(next, requestId === null ? null : { requestId, reply });
    this.#current = next;
    this.#broadcast(next.version, next.stateJson, events);
    if (requestId !== null) await this.#scheduleExpiry();
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

  /** The state a method left behind as JSON text, or a `ValidationError` if it broke the fields. */
  #encodeState(draft: JsonObject): string {
    const issues = this.#spec.checkState(draft);
    if (issues.length > 0) {
      const summary = issues.map((issue) => `${issue.loc.join(".")}: ${issue.msg}`).join("; ");
      const message = `the method left an invalid state: ${summary}`;
      throw new Failure("remote_error", message, { type: "ValidationError", message });
    }
    return JSON.stringify(draft);
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
        return send(ws, PONG_FRAME);
      case "subscribe":
        return this.#subscribe(ws, frame);
      case "call": {
        const method = frame.operation.op === "call" ? frame.operation.method : "";
        if (!socketMayCall(this.ctx.getTags(ws), method)) {
          return send(ws, errorFrame(frame.id, new Failure("forbidden", `the ticket does not allow ${JSON.stringify(method)} here`)));
        }
        const reply = await this.dispatch(frame.operation);
        return send(ws, callReplyFrame(frame.id, reply));
      }
    }
  }

  #subscribe(ws: WebSocket, frame: Extract<ClientFrame, { type: "subscribe" }>): void {
    if (this.#subscription(ws).subscribed) {
      return send(ws, errorFrame(null, new Failure("bad_request", "this connection is already subscribed")));
    }
    const subscription: Subscription = { subscribed: true, snapshots: frame.snapshots, events: frame.events };
    ws.serializeAttachment(subscription);
    this.#subscriptions.set(ws, subscription);
    const { version, stateJson } = this.#current;
    if (frame.snapshots && (frame.since === null || version > frame.since)) send(ws, snapshotFrame(version, stateJson));
  }

  #subscription(ws: WebSocket): Subscription {
    let subscription = this.#subscriptions.get(ws);
    if (subscription === undefined) {
      subscription = subscriptionFrom(ws.deserializeAttachment());
      this.#subscriptions.set(ws, subscription);
    }
    return subscription;
  }

  /** Sends a change (`stateJson` undefined: no new snapshot) and its events to every subscriber. */
  #broadcast(version: number, stateJson: string | null | undefined, events: EmittedEvent[]): void {
    if (stateJson === undefined && events.length === 0) return;
    const snapshot = stateJson === undefined ? null : snapshotFrame(version, stateJson);
    const eventFrames = events.map((event) => eventFrame(version, event));
    for (const ws of this.ctx.getWebSockets()) {
      const subscription = this.#subscription(ws);
      if (!subscription.subscribed) continue;
      if (snapshot !== null && subscription.snapshots) send(ws, snapshot);
      if (subscription.events) eventFrames.forEach((frame) => send(ws, frame));
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

/** The result as JSON text, checked against the declared result type. */
function encodeResult(method: RemoteMethod, result: unknown): string {
  const value = result === undefined ? null : result;
  if (!isJson(value)) throw new Failure("invalid_result", "the method returned a value that is not JSON");
  if (method.returns !== null) {
    const issues: Issue[] = [];
    const parsed = method.returns.parse(value, [], issues);
    if (parsed === INVALID) {
      throw new Failure("invalid_result", `the method's result is not a ${method.returns.label}: ${issues[0]!.msg}`);
    }
    return JSON.stringify(parsed);
  }
  return JSON.stringify(value as Json);
}

function send(ws: WebSocket, frame: string): void {
  try {
    ws.send(frame);
  } catch {
    // The socket is closing; its client resumes with `since` when it reconnects.
  }
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
