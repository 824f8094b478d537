/**
 * The Durable Object base class behind every model: state in SQLite with its
 * version, idempotent operations, method dispatch, events and WebSocket
 * subscriptions (with the Hibernation API).
 */
import { DurableObject } from "cloudflare:workers";
import { objectsIn, pythonRepr, type Link, type Objects } from "./calls";
import { CallError, describeThrown, Failure } from "./errors";
import {
  callReplyFrame,
  errorFrame,
  eventFrame,
  freshRecord,
  gapFrame,
  patchFrame,
  PING_FRAME,
  PONG_FRAME,
  recordFrom,
  snapshotFrame,
  type EmittedEvent,
  type SocketRecord,
} from "./frames";
import { protocolHeaders, respondFailure } from "./http";
import { carriable, isJson, isJsonObject, type Json, type JsonObject } from "./json";
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
  parseFrame,
  SCHEDULE_REQUEST_PREFIX,
  utf8Length,
  OBJECT_ID_HEADER,
  type Caller,
  type Change,
  type ClientFrame,
  type Operation,
  type Reply,
} from "./protocol";
import { RemoteMethod } from "./remote";
import { checkArguments, migrateState, ModelSpec, type ModelOptions } from "./schema";
import { Draft, fieldBytes, ObjectState, sameJson, stateBytes, textsOf, type FieldTexts, type Touched } from "./state";
import { IndexSync } from "./listing";
import { DEFAULT_SCHEDULE_RETRY, dueOf, retryDelay, scheduledArguments, scheduleId, scheduleJson, type ScheduleRetry, type When } from "./schedules";
import { DEFAULT_RETENTION, ObjectStore, type ChangeKind, type LoggedEvent, type Remembered, type Retention, type ScheduleOp, type Stored } from "./store";
import { selectedSubprotocol, socketMayCall, ticketTags } from "./ticket";
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
  "objectId",
  "objects",
  "schedule",
  "cancelSchedule",
  "schedules",
  "migrations",
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

/** A migration of stored state: the state's JSON as one schema version stored it, to the next version's. */
export type Migration = (data: JsonObject) => JsonObject;

/**
 * Migrations of stored state from older schema versions, by the version they
 * start from. A version without one changes nothing.
 */
export type Migrations = Readonly<Record<number, Migration>>;

/** What a model class carries besides its instances: its declaration and settings. */
export interface ModelClass {
  readonly spec: ModelSpec;
  readonly retention: Retention;
  readonly callTimeoutMs: number;
  readonly scheduleRetry: ScheduleRetry;
}

/** A schedule a call made, stored with its change. */
interface Scheduled {
  at: number;
  method: string;
  args: JsonObject;
}

/**
 * The call that is running: the state it works on, the events it emitted, and
 * what its calls to other objects need (the chain of calls it belongs to, its
 * request id, and how many changing operations it sent to each object).
 */
interface CallContext {
  draft: Draft;
  events: EmittedEvent[];
  chain: readonly Link[];
  requestId: string;
  made: Map<string, number>;
  scheduled: Map<string, Scheduled>;
  cancelled: string[];
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

/** A field a change wrote: its new text and value. */
interface Written {
  text: string;
  value: Json;
}

/** What a change stores besides its state. */
interface AppliedChange {
  events?: EmittedEvent[];
  key: RequestKey | null;
  kind: ChangeKind;
  status: number;
  result?: string | null;
  schedules?: ScheduleOp[];
}

/** The next version a change makes, before it is stored. */
interface Next {
  /** The texts of the fields written (all of them when `touched` is null); null: no state. */
  fields: FieldTexts | null;
  touched: Touched;
  values: Map<string, Json>;
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
  /** How long a method body waits for each call it makes to another object, in milliseconds. */
  static callTimeoutMs = 30_000;
  /** How failed schedules are tried again (by default: after 1 s, doubling up to 5 min, 10 runs). */
  static scheduleRetry: ScheduleRetry = DEFAULT_SCHEDULE_RETRY;

  readonly #spec: ModelSpec;
  readonly #model: ModelClass;
  readonly #store: ObjectStore;
  readonly #state: ObjectState;
  #objectId: string | null;
  /** Why the stored state cannot be served (a newer schema version, a failed migration), or null. */
  #refused: Failure | null = null;
  /** The stored state was migrated on load: its next change stores every field. */
  #migrated = false;
  #call: CallContext | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #methods: Map<string, RemoteMethod> | null = null;
  #alarmAt: number | null = null;
  /** When the oldest remembered request id expires (null: none is remembered). */
  #pruneAt: number | null;
  /** The schedule whose call is running, and whether its change removed it. */
  #firing: { id: string; removed: boolean } | null = null;
  readonly #index: IndexSync;
  readonly #connections = new WeakMap<WebSocket, Connection>();

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    const model = (this.#model = this.constructor as unknown as ModelClass);
    this.#spec = model.spec;
    this.#store = new ObjectStore(ctx.storage, model.retention);
    this.#objectId = this.#store.objectId();
    const stored = this.#store.read();
    this.#state = new ObjectState(stored.version, this.#loaded(stored));
    this.#pruneAt = this.#store.nextExpiry();
    this.#index = new IndexSync(env, this.#spec.name, this.#store);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    if (ctx.getWebSockets().length > 0) this.#holdsSockets(true);
    void ctx.blockConcurrencyWhile(async () => {
      this.#alarmAt = await ctx.storage.getAlarm();
    });
  }

  /**
   * The stored fields as the running code reads them: as stored, when the same
   * schema version wrote them; migrated and validated, when an older one did;
   * refused (every operation but a delete fails) when a newer one did or the
   * migration failed.
   */
  #loaded(stored: Stored): Map<string, string> | null {
    if (stored.fields === null) return null;
    const known = this.#spec.schemaVersion;
    if (stored.schemaVersion === known) return this.#spec.normalizeTexts(stored.fields);
    const where = `${this.#spec.name} ${pythonRepr(this.#objectId ?? this.ctx.id.toString())}`;
    if (stored.schemaVersion > known) {
      const message = `${where} is stored by schema version ${stored.schemaVersion}, this code knows up to ${known}`;
      this.#refused = new Failure("validation_error", message, { errors: [{ loc: [], msg: message, type: "schema_version_newer" }] });
      return stored.fields;
    }
    const upgraded = migrateState(this.#spec, this.migrations(), stored, where);
    if (upgraded instanceof Failure) {
      this.#refused = upgraded;
      return stored.fields;
    }
    this.#migrated = true;
    return upgraded;
  }

  /** The object's state, to read and change inside a remote method. */
  protected get state(): S {
    if (this.#call === null) throw new Error("`state` is only available inside a remote method");
    return this.#call.draft.proxy as S;
  }

  /** The object's id (as clients name it). */
  protected get objectId(): string {
    const id = this.#objectId ?? this.ctx.id.name;
    if (id === undefined) throw new Error("the object's id is not known yet");
    return id;
  }

  /**
   * The objects of another model (or this one), to call from inside a remote
   * method: `await this.objects(WalletSpec).get(id).hold(this.objectId, 5)`.
   * Each operation is that object's own (its queue, its version, its request
   * ids), with a request id derived from this call's; it fails at once with
   * `ReentrancyError` on an object already running a method in this chain of
   * calls, and with `TimeoutError` after `callTimeoutMs`. A failed call throws
   * `CallError` (a remote error keeps the other method's type and message).
   */
  protected objects<T extends object, M extends object>(spec: ModelSpec<T, M>): Objects<T, M> {
    const call = this.#call;
    if (call === null) throw new Error("`objects` is only available inside a remote method");
    const timeoutMs = (this.constructor as unknown as { callTimeoutMs: number }).callTimeoutMs;
    return objectsIn({ env: this.env, chain: call.chain, requestId: call.requestId, made: call.made, timeoutMs }, spec);
  }

  /**
   * Inside a remote method: calls this object's remote method `method` with
   * `args` (in its parameters' order) at `when` (a `Date`, an RFC 3339 time with
   * an offset, or seconds from now), and returns the schedule's id. The
   * arguments are checked now, as a call's. The schedule is stored with this
   * call's change (a call that throws schedules nothing) and runs once, at or
   * after its time, as a call of its own (request id `schedule:<id>`); a failed
   * run is tried again after 1 s, 2 s, 4 s... (at most 5 min), 10 times, then
   * kept as failed.
   */
  protected schedule(when: When, method: string, ...args: unknown[]): string {
    const call = this.#call;
    if (call === null) throw new Error("`schedule` is only available inside a remote method");
    const target = this.#methodTable().get(method);
    if (target === undefined || method.startsWith("_")) {
      throw new CallError("unknown_method", `${this.#spec.name} has no remote method ${JSON.stringify(method)} to schedule`);
    }
    const scheduled = { at: dueOf(when), method, args: scheduledArguments(method, target, args) };
    const id = scheduleId();
    call.scheduled.set(id, scheduled);
    return id;
  }

  /** Inside a remote method: cancels a pending or failed schedule of this object, with this call's change. Returns whether there was one. */
  protected cancelSchedule(id: string): boolean {
    const call = this.#call;
    if (call === null) throw new Error("`cancelSchedule` is only available inside a remote method");
    if (call.scheduled.delete(id)) return true;
    if (call.cancelled.includes(id) || this.#store.schedule(id) === null) return false;
    call.cancelled.push(id);
    return true;
  }

  /**
   * The migrations of state stored by older schema versions (`ModelSpec`'s
   * `schemaVersion`), by the version they start from; run when such state is
   * loaded, in order, then the result is validated. None by default; generated
   * bases of models with a schema version over 1 ask for one per older version.
   */
  protected migrations(): Migrations {
    return {};
  }

  /** Emits an event; subscribers receive it once the call's change is stored. */
  protected emit(name: string, data: JsonObject = {}): void {
    if (this.#call === null) throw new Error("`emit` is only available inside a remote method");
    if (typeof name !== "string" || name === "") throw new TypeError("an event needs a name");
    if (!isJsonObject(data) || !isJson(data)) throw new TypeError(`event ${name} data must be a JSON object`);
    this.#call.events.push({ name, dataJson: JSON.stringify(this.#spec.checkEvent(name, data)) });
  }

  /** Runs one operation handed over by the router; never throws for bad input. */
  async dispatch(operation: Operation, caller?: Caller): Promise<Reply> {
    this.#learnId(caller?.objectId);
    if (operation.op === "read") return this.#refused !== null ? failureReply(this.#refused) : this.#readReply(operation.have ?? null);
    return this.#exclusive(() => this.#change(operation, caller?.chain ?? []));
  }

  /** `GET .../schedules`: the object's pending and failed schedules, by time, then id. */
  async schedules(caller?: Caller): Promise<Reply> {
    this.#learnId(caller?.objectId);
    return { status: 200, body: JSON.stringify({ schedules: this.#store.schedules().map(scheduleJson) }) };
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
    const id = request.headers.get(OBJECT_ID_HEADER);
    if (id !== null) this.#learnId(decodeURIComponent(id));
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ticketTags(request));
    server.serializeAttachment(freshRecord());
    this.#holdsSockets(true);
    const headers = protocolHeaders();
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

  /** Keeps the object's id the first time the router names it (and tells the index, if it has not been told). */
  #learnId(objectId: string | undefined): void {
    if (objectId === undefined || objectId === this.#objectId) return;
    this.#objectId = objectId;
    this.#store.rememberObjectId(objectId);
    if (this.#index.needed(this.#state.present)) this.ctx.waitUntil(this.#exclusive(() => this.#syncIndex()));
  }

  /**
   * The object's own bookkeeping, all on the Durable Object's one alarm: runs
   * the schedules that are due, tells the index what it could not tell before,
   * forgets expired request ids, then sets the alarm for the next of these.
   */
  override async alarm(): Promise<void> {
    this.#alarmAt = null;
    this.#pruneAt = this.#store.pruneExpired();
    if (this.#index.retryAt !== null) await this.#exclusive(() => this.#syncIndex());
    await this.#fireDue();
    await this.#planAlarm();
  }

  /** Sets the alarm for the earliest of: the next schedule, the next retry of the index, the next request id to forget. */
  async #planAlarm(): Promise<void> {
    const times = [this.#store.nextDue(), this.#index.retryAt, this.#pruneAt].filter((at): at is number => at !== null);
    if (times.length === 0) return;
    const at = Math.min(...times);
    if (this.#alarmAt !== null && this.#alarmAt <= at) return;
    try {
      await this.ctx.storage.setAlarm(at);
      this.#alarmAt = at;
    } catch (error) {
      console.warn("could not set the alarm:", describeThrown(error).message);
    }
  }

  // --- schedules ------------------------------------------------------------

  /** Runs the schedules that are due, one call at a time with the object's other operations. */
  async #fireDue(): Promise<void> {
    const started = Date.now();
    for (const row of this.#store.dueSchedules(Date.now(), 100)) {
      await this.#exclusive(() => this.#fire(row.id));
      if (Date.now() - started > 10_000) break; // the rest at the next alarm
    }
  }

  /**
   * Runs one schedule as a call of its method with the request id
   * `schedule:<id>`: removed with the call's change when it succeeds (or on its
   * own, when the call changed nothing or was answered from its record), its
   * failed attempt recorded when it fails.
   */
  async #fire(id: string): Promise<void> {
    const row = this.#store.schedule(id);
    if (row === null || row.status !== "pending" || row.due > Date.now()) return;
    const firing = (this.#firing = { id, removed: false });
    let reply: Reply;
    try {
      const args = JSON.parse(row.args) as JsonObject;
      reply = await this.#change({ op: "call", method: row.method, args, requestId: SCHEDULE_REQUEST_PREFIX + id }, []);
    } finally {
      this.#firing = null;
    }
    const where = `${this.#spec.name} ${JSON.stringify(this.#objectId)}`;
    if (reply.status < 300) {
      if (!firing.removed) this.#store.updateSchedules([{ op: "remove", id }]);
      return;
    }
    const { attempts: most } = this.#model.scheduleRetry;
    const attempts = row.attempts + 1;
    const error = JSON.stringify((JSON.parse(reply.body) as { error: JsonObject }).error);
    if (attempts >= most) {
      console.error(`schedule ${id} of ${where} (${row.method}) failed ${attempts} times, and is kept as failed: ${error}`);
      this.#store.updateSchedules([{ op: "retry", id, attempts, due: row.due, status: "failed", error }]);
    } else {
      const delay = retryDelay(this.#model.scheduleRetry, attempts);
      console.warn(`schedule ${id} of ${where} (${row.method}) failed (attempt ${attempts} of ${most}), tried again in ${delay / 1000} s: ${error}`);
      this.#store.updateSchedules([{ op: "retry", id, attempts, due: Date.now() + delay, status: "pending", error }]);
    }
  }

  // --- the index of the model's objects -------------------------------------

  /** Tells the model's index whether the object has state, if it was not told yet; on failure, tries again from the alarm. */
  async #syncIndex(): Promise<void> {
    const objectId = this.#objectId;
    if (objectId === null || !this.#index.needed(this.#state.present)) return;
    await this.#index.sync(objectId, this.#state.version, this.#state.present);
    if (this.#index.retryAt !== null) await this.#planAlarm();
  }

  // --- operations ---------------------------------------------------------

  #exclusive<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(run);
    this.#queue = result.then(noop, noop);
    return result;
  }

  /** A change: replayed from its request id's record, or performed (and remembered if it changed something). */
  async #change(operation: Change, chain: readonly Link[]): Promise<Reply> {
    try {
      if (this.#refused !== null && operation.op !== "delete") throw this.#refused;
      if (operation.requestId === null) return await this.#perform(operation, null, chain);
      const key = { requestId: operation.requestId, digest: await sha256Hex(operationText(operation)) };
      const remembered = this.#store.recall(key.requestId);
      if (remembered !== null) return this.#replay(remembered, key.digest);
      return await this.#perform(operation, key, chain);
    } catch (error) {
      if (error instanceof Failure) return failureReply(error);
      console.error("unexpected failure:", error);
      return failureReply(new Failure("internal", "unexpected server failure; nothing was applied"));
    }
  }

  #perform(operation: Change, key: RequestKey | null, chain: readonly Link[]): Promise<Reply> {
    switch (operation.op) {
      case "call": {
        // A call without a request id gets one for its nested calls to derive theirs from (it is not remembered).
        const requestId = key?.requestId ?? `local:${crypto.randomUUID().replaceAll("-", "")}`;
        return this.#callMethod(operation.method, operation.args, key, operation.have ?? null, [...chain, [this.#spec.name, this.#objectId ?? this.ctx.id.name ?? this.ctx.id.toString()]], requestId);
      }
      case "create":
        return this.#create(operation.state, key, operation.have ?? null);
      case "update":
        return this.#update(operation.fields, operation.ifVersion, key, operation.have ?? null);
      case "delete":
        return this.#delete(key);
    }
  }

  /** The stored reply of a request id, for the same operation only; `state` only while the object is at that version. */
  #replay(remembered: Remembered, digest: string): Reply {
    if (remembered.digest !== null && remembered.digest !== digest) {
      throw new Failure("request_id_reused", `request id ${remembered.requestId} was used for another operation; nothing was changed`);
    }
    const current = this.#state.version === remembered.version;
    const state = current && remembered.kind !== "delete" ? `,"state":${this.#state.text() ?? "null"}` : "";
    const head = { call: `"result":${remembered.result ?? "null"},`, delete: '"deleted":true,', create: "", update: "" }[remembered.kind];
    const tail = remembered.kind === "delete" ? ',"state":null' : state;
    return { status: remembered.status, body: `{${head}"version":${remembered.version}${tail}}` };
  }

  /**
   * `"version":V,"state":{...}`, or, for a client that holds version `have` when
   * the object knows every field changed since (and its state existed all along),
   * `"version":V,"patch":{"since":have,"set":{...}}`.
   */
  #stateMembers(have: number | null): string {
    const state = this.#state;
    if (have !== null && state.present) {
      const names = state.changedSince(have);
      if (names !== null) return `"version":${state.version},"patch":{"since":${have},"set":${state.fieldsText(names)}}`;
    }
    return `"version":${state.version},"state":${state.text() ?? "null"}`;
  }

  #readReply(have: number | null): Reply {
    return { status: 200, body: `{${this.#stateMembers(have)}}` };
  }

  async #callMethod(
    name: string,
    given: JsonObject,
    key: RequestKey | null,
    have: number | null,
    chain: readonly Link[],
    requestId: string,
  ): Promise<Reply> {
    const method = this.#method(name);
    const args = checkArguments(method.args, given);
    const base = this.#baseTexts();
    const call: CallContext = { draft: new Draft(base), events: [], chain, requestId, made: new Map(), scheduled: new Map(), cancelled: [] };
    const result = await this.#run(name, method, args, call);
    const resultJson = this.#encodeResult(name, method, result);
    const written = this.#written(name, call.draft, base);
    checkEvents(call.events);
    // Making or cancelling a schedule is a change too: it is stored with the call's.
    const schedules: ScheduleOp[] = [
      ...[...call.scheduled].map(([id, { at, method, args }]): ScheduleOp => ({
        op: "add",
        row: { id, due: at, at, method, args: JSON.stringify(args), attempts: 0, status: "pending", error: null },
      })),
      ...call.cancelled.map((id): ScheduleOp => ({ op: "remove", id })),
    ];
    if (written.size > 0 || call.events.length > 0 || schedules.length > 0) {
      // A schedule belongs to a state: one made on an object without state stores its
      // defaults (a delete then cancels it); events alone store nothing.
      const next = this.#next(base, written, schedules.length === 0);
      await this.#apply(next, { events: call.events, key, kind: "call", status: 200, result: resultJson, schedules });
    }
    return { status: 200, body: `{"result":${resultJson},${this.#stateMembers(have)}}` };
  }

  async #run(name: string, method: RemoteMethod, args: JsonObject, call: CallContext): Promise<unknown> {
    this.#call = call;
    try {
      return await method.body(args);
    } catch (thrown) {
      if (thrown instanceof CallError && thrown.code === "remote_error") {
        // Another object's method threw and this body let it through: same type and message.
        throw new Failure("remote_error", `${this.#spec.name}.${name} failed: ${thrown.summary}`, thrown.details);
      }
      const { type, message } = describeThrown(thrown);
      const summary = `${this.#spec.name}.${name} raised ${type}${message === "" ? "" : `: ${message}`}`;
      throw new Failure("remote_error", summary, { type, message });
    } finally {
      this.#call = null;
    }
  }

  /**
   * The fields a body changed: of those it touched, the ones whose value now
   * differs, in canonical form, once every touched field is valid for the model
   * (else `invalid_result`) and a value a client could send back.
   */
  #written(name: string, draft: Draft, base: FieldTexts): Map<string, Written> {
    const rejected = `${this.#spec.name}.${name} left a state its fields reject; nothing was changed`;
    const issues: Issue[] = [];
    const changed = new Map<string, Written>();
    for (const outcome of draft.outcomes()) {
      const field = outcome.name;
      if (outcome.deleted) {
        if (base.has(field)) issues.push({ loc: [field], msg: "Field required", type: "missing" });
        continue;
      }
      const value = this.#spec.checkField(field, outcome.value, issues);
      if (value === INVALID) continue;
      const text = JSON.stringify(value);
      const before = base.get(field)!;
      // Equal texts are equal values; texts of one length may be equal values with members in another order.
      if (text === before || (text.length === before.length && sameJson(value, this.#baseValue(field, before)))) continue;
      changed.set(field, { text, value });
    }
    if (issues.length > 0) throw new Failure("invalid_result", rejected, issueDetails(issues));
    for (const { text } of changed.values()) {
      if (!carriable(`[${text}]`)) throw new Failure("invalid_result", rejected);
    }
    return changed;
  }

  #baseValue(name: string, text: string): Json {
    return this.#state.present ? this.#state.value(name)! : (JSON.parse(text) as Json);
  }

  /** The next version after writing `written` over `base`, once it fits the byte limit. */
  #next(base: FieldTexts, written: Map<string, Written>, virtual = true): Next {
    const values = new Map([...written].map(([name, { value }]) => [name, value]));
    const state = this.#state;
    if (!state.present) {
      if (written.size === 0 && virtual) return { fields: null, touched: null, values }; // only events: still no state
      const fields = new Map(base);
      for (const [name, { text }] of written) fields.set(name, text);
      checkStateSize(stateBytes(fields));
      return { fields, touched: null, values };
    }
    let bytes = state.bytes;
    const fields = new Map<string, string>();
    for (const [name, { text }] of written) {
      const before = state.texts!.get(name);
      bytes += fieldBytes(name, text) - (before === undefined ? 0 : fieldBytes(name, before));
      fields.set(name, text);
    }
    checkStateSize(bytes);
    return { fields, touched: new Set(written.keys()), values };
  }

  async #create(given: JsonObject, key: RequestKey | null, have: number | null): Promise<Reply> {
    if (this.#state.present) {
      throw new Failure("already_exists", `the object already has state (version ${this.#state.version})`);
    }
    const fields = textsOf(this.#spec.createState(given));
    checkStateSize(stateBytes(fields));
    await this.#apply({ fields, touched: null, values: new Map() }, { key, kind: "create", status: 201 });
    return { status: 201, body: `{${this.#stateMembers(have)}}` };
  }

  async #update(fields: JsonObject, ifVersion: number | null, key: RequestKey | null, have: number | null): Promise<Reply> {
    const state = this.#state;
    if (ifVersion !== null && ifVersion !== state.version) {
      throw new Failure("conflict", `version is ${state.version}, not ${ifVersion}; nothing was changed`, {
        expected: ifVersion,
        actual: state.version,
      });
    }
    this.#spec.checkUpdate(fields);
    if (!state.present) {
      const created = textsOf(this.#spec.createState(fields));
      checkStateSize(stateBytes(created));
      await this.#apply({ fields: created, touched: null, values: new Map() }, { key, kind: "update", status: 200 });
      return { status: 200, body: `{${this.#stateMembers(have)}}` };
    }
    const written = new Map<string, Written>();
    for (const [name, value] of Object.entries(fields)) {
      const text = JSON.stringify(value);
      const before = state.texts!.get(name);
      if (before !== undefined && (text === before || (text.length === before.length && sameJson(value, state.value(name))))) continue;
      written.set(name, { text, value });
    }
    if (written.size === 0) return this.#readReply(have);
    await this.#apply(this.#next(state.texts!, written), { key, kind: "update", status: 200 });
    return { status: 200, body: `{${this.#stateMembers(have)}}` };
  }

  async #delete(key: RequestKey | null): Promise<Reply> {
    if (!this.#state.present) return { status: 200, body: `{"deleted":false,"version":${this.#state.version},"state":null}` };
    // The schedules the state made go with it; the event log stays.
    await this.#apply({ fields: null, touched: null, values: new Map() }, { key, kind: "delete", status: 200, schedules: [{ op: "clear" }] });
    return { status: 200, body: `{"deleted":true,"version":${this.#state.version},"state":null}` };
  }

  /**
   * Commits the next version, with its events, what it did to schedules (a
   * schedule whose call this is goes with it), and the record of its request id
   * (what a repeat needs: status, version, result); then tells subscribers the
   * state (whole or patched) and the events, and the index when the state
   * appeared or disappeared. State migrated on load is stored whole.
   */
  async #apply(next: Next, change: AppliedChange): Promise<void> {
    const { events = [], key, kind, status, result = null } = change;
    const schedules = [...(change.schedules ?? [])];
    if (this.#firing !== null && !this.#firing.removed) {
      schedules.push({ op: "remove", id: this.#firing.id });
      this.#firing.removed = true;
    }
    if (this.#migrated && next.touched !== null) next = { fields: new Map([...this.#state.texts!, ...next.fields!]), touched: null, values: next.values };
    const version = this.#state.version + 1;
    const remembered: Remembered | null = key === null ? null : { ...key, kind, status, version, result };
    const logged: LoggedEvent[] = events.map((event, index) => ({
      version,
      index,
      count: events.length,
      name: event.name,
      data: event.dataJson,
      size: utf8Length(event.name) + utf8Length(event.dataJson),
    }));
    const schemaVersion = this.#spec.schemaVersion;
    this.#store.commit({ version, fields: next.fields, replace: next.touched === null, events: logged, schedules, schemaVersion }, remembered);
    this.#state.advance(version, next.fields, next.touched, next.values);
    this.#migrated = false;
    this.#refused = null;
    this.#broadcast(next.touched, events);
    if (remembered !== null && this.#pruneAt === null) this.#pruneAt = Date.now() + this.#store.retention.maxAgeMs;
    if (this.#index.needed(this.#state.present)) await this.#syncIndex();
    if (schedules.some((op) => op.op === "add") || (remembered !== null && this.#alarmAt === null)) await this.#planAlarm();
  }

  /** The fields a method starts from: the stored state, or the defaults of a virtual object. */
  #baseTexts(): FieldTexts {
    const stored = this.#state.texts;
    if (stored !== null) return stored;
    if (this.#spec.defaultTexts === null) {
      throw new Failure("object_not_found", "the object has no state and its model has fields without defaults; create it first");
    }
    return this.#spec.defaultTexts;
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
      await this.#exclusive(async () => this.#send(ws, [callReplyFrame(id, await this.#change(operation, []))]));
    } finally {
      connection.unanswered -= 1;
    }
  }

  /**
   * Starts a subscription: the current state first, unless the subscriber
   * already holds it (`since`), as a patch when it asked for patches and the
   * object knows what changed since its version; then, for a subscriber that
   * resumes and wants events, the logged events of the versions after `since`
   * (after a gap frame if the log no longer holds them all).
   */
  #subscribe(ws: WebSocket, frame: Extract<ClientFrame, { type: "subscribe" }>): void {
    const connection = this.#connection(ws);
    if (connection.subscription.subscribed) {
      return this.#send(ws, [errorFrame(null, new Failure("bad_request", "this connection is already subscribed"))]);
    }
    if (this.#refused !== null) return this.#send(ws, [errorFrame(null, this.#refused)]);
    const { since, snapshots, events, patches } = frame;
    const subscription = (connection.subscription = { subscribed: true, snapshots, events, patches, since });
    const state = this.#state;
    if (since !== null && state.version <= since) return this.#send(ws, []);
    subscription.since = state.version;
    if (snapshots) {
      const names = patches && since !== null && state.present ? state.changedSince(since) : null;
      const first = names === null ? snapshotFrame(state.version, state.text()) : patchFrame(state.version, since!, state.fieldsText(names));
      this.#send(ws, [first]);
    }
    if (since !== null && events) this.#send(ws, this.#missedEvents(since), undefined, true);
    else if (!snapshots) this.#send(ws, []);
  }

  /** The frames of the logged events after version `since`, after a gap frame if some are no longer logged. */
  #missedEvents(since: number): string[] {
    const version = this.#state.version;
    const { events, dropped } = this.#store.loggedEvents(since, version);
    const frames = events.map(
      (event) =>
        `{"type":"event","version":${event.version},"index":${event.index},"count":${event.count},"name":${JSON.stringify(event.name)},"data":${event.data}}`,
    );
    if (dropped > since) frames.unshift(gapFrame(since, events[0] === undefined ? version : events[0].version - 1));
    return frames;
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
   * The frames of a replay (the events a resuming subscriber missed, up to the
   * event log's 1,000) count in bytes only.
   */
  #send(ws: WebSocket, frames: string[], sizes?: number[], replay = false): void {
    const connection = this.#connection(ws);
    if (connection.closed) return;
    const pingAt = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null;
    if (pingAt !== null && pingAt !== connection.pingAt) {
      connection.pingAt = pingAt;
      this.#acknowledged(connection);
    }
    for (const [index, frame] of frames.entries()) {
      if (!replay) connection.frames += 1;
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

  /**
   * Sends the change that made the current version to every subscriber that
   * does not hold it yet: its state (the fields it set, to a subscriber with
   * patches that holds the version before; else the whole state), then its
   * events. Each frame is encoded once, for every socket.
   */
  #broadcast(touched: Touched, events: EmittedEvent[]): void {
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return;
    const state = this.#state;
    const version = state.version;
    const frames = new LazyFrames();
    const snapshot = () => frames.get("snapshot", () => snapshotFrame(version, state.text()));
    const patch = () => frames.get("patch", () => patchFrame(version, version - 1, state.fieldsText(touched!)));
    const eventFrames = events.map((event, index) => () => frames.get(`event ${index}`, () => eventFrame(version, event, index, events.length)));
    for (const ws of sockets) {
      const { subscription } = this.#connection(ws);
      if (!subscription.subscribed) continue;
      const held = subscription.since;
      if (held !== null && version <= held) continue;
      subscription.since = version;
      const out: [string, number][] = [];
      if (subscription.snapshots) {
        const patched = subscription.patches && held === version - 1 && touched !== null && state.present;
        out.push(patched ? patch() : snapshot());
      }
      if (subscription.events) for (const event of eventFrames) out.push(event());
      if (out.length > 0) this.#send(ws, out.map(([text]) => text), out.map(([, size]) => size));
    }
  }
}

/** Frames of one change, each encoded (and measured) the first time a subscriber needs it. */
class LazyFrames {
  readonly #made = new Map<string, [string, number]>();

  get(key: string, make: () => string): [string, number] {
    let frame = this.#made.get(key);
    if (frame === undefined) {
      const text = make();
      this.#made.set(key, (frame = [text, utf8Length(text)]));
    }
    return frame;
  }
}

/**
 * Declares a model: `class Counter extends DurableModel("Counter", { value:
 * t.int.default(0) }) { ... }`. The name is the model's name on the wire and
 * must match the Python model's.
 */
export function DurableModel<F extends Specs>(name: string, fields: F, options: ModelOptions = {}) {
  const spec = new ModelSpec<Infer<F>>(name, fields, options);
  abstract class Model extends DurableModelObject<Infer<F>> {
    static override readonly spec = spec;
  }
  return Model;
}

function issueDetails(issues: Issue[]): JsonObject {
  return { errors: issues.map((issue) => ({ loc: issue.loc, msg: issue.msg, type: issue.type })) };
}

/** `413 state_too_large` for a state of more than 1 MiB. */
function checkStateSize(bytes: number): void {
  if (bytes > MAX_STATE_BYTES) {
    throw new Failure("state_too_large", `the change would make the state larger than ${MAX_STATE_BYTES} bytes; nothing was changed`, {
      limit: MAX_STATE_BYTES,
    });
  }
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
