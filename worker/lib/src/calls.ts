/**
 * Calls between objects: what a method body uses to call, read, create, update
 * or delete another object of the same Worker (`this.objects(WalletSpec).get(id)`).
 *
 * A call from A to B is B's own operation: B's one-at-a-time queue, B's
 * version, B's idempotency; A's body awaits its reply; the two changes commit
 * separately. Each nested operation that changes something carries a request id
 * derived from the outer operation's and its position among the body's
 * operations on that object, so a body run again for the same request (a retry
 * after a crash) is answered from the records its first run left instead of
 * applying them twice. An operation on an object already running a method in
 * the chain fails at once with `ReentrancyError`; every nested operation waits
 * at most the caller's call timeout.
 */
import { CallError, CallTimeoutError, Failure, ReentrancyError } from "./errors";
import { carriable, isJson, type Json, type JsonObject } from "./json";
import { checkObjectId, type Caller, type Operation, type Reply } from "./protocol";
import { namespaceOf } from "./registry";
import type { ModelSpec } from "./schema";

/** An object in a chain of calls: its model and id. */
export type Link = readonly [model: string, objectId: string];

/** What a method body's nested operations need to know about the body. */
export interface CallScope {
  /** The Worker's environment (the namespaces of the models). */
  readonly env: object;
  /** The objects running a method in this chain of calls, outermost first; the calling object last. */
  readonly chain: readonly Link[];
  /** The outer operation's request id (made up when it came without one). */
  readonly requestId: string;
  /** How many changing operations the body has sent to each object so far. */
  readonly made: Map<string, number>;
  /** How long each nested operation may take, in milliseconds. */
  readonly timeoutMs: number;
}

/** An object's state as another object reads it: `state` is null while it has none. */
export interface Loaded<S> {
  version: number;
  state: S | null;
}

/** The remote methods of a model as another object calls them: the same parameters, a promise of the result. */
export type Calls<M> = {
  [K in keyof M]: M[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : never;
};

/** Reading and writing another object's state, as clients do. */
export interface StateOperations<S> {
  /** The object's model name and id. */
  readonly model: string;
  readonly id: string;
  load(): Promise<Loaded<S>>;
  /** Creates the object (missing fields take their defaults); `AlreadyExistsError` if it has state. */
  create(state?: Partial<S>): Promise<Loaded<S>>;
  /** Sets some fields; with `ifVersion`, only at that version (`ConflictError` otherwise). */
  update(fields: Partial<S>, options?: { ifVersion?: number }): Promise<Loaded<S>>;
  delete(): Promise<{ deleted: boolean; version: number }>;
}

/** Another object, as a method body sees it: its state operations and its remote methods, typed from its model. */
export type ObjectHandle<S, M> = StateOperations<S> & Calls<M>;

/** The objects of one model, as a method body reaches them. */
export interface Objects<S, M> {
  /** The object with this id (no I/O until an operation is awaited). */
  get(id: string): ObjectHandle<S, M>;
  /** Calls a remote method by name with arguments by parameter name (for models without generated types). */
  call(id: string, method: string, args?: JsonObject): Promise<Json>;
}

/** The RPC surface of a model object, as other objects see it. */
interface ObjectStub {
  dispatch(operation: Operation, caller?: Caller): Promise<Reply>;
}

/** `Model('id')`, as Python writes a model and an id, for chains in messages. */
export function describeLink([model, id]: Link): string {
  return `${model}(${pythonRepr(id)})`;
}

/** A string as Python's `repr` writes it (quotes chosen as Python does, escapes of control characters). */
export function pythonRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === "\\") out += "\\\\";
    else if (char === quote) out += `\\${quote}`;
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += char;
  }
  return out + quote;
}

/** The objects of the model `spec` describes, reached from a body running in `scope`. */
export function objectsIn<S extends object, M extends object>(scope: CallScope, spec: ModelSpec<S, M>): Objects<S, M> {
  return {
    get: (id) => handle(scope, spec, id),
    call: async (id, method, args = {}) => (await send(scope, spec.name, id, (requestId) => ({ op: "call", method, args, requestId }))).result!,
  };
}

function handle<S extends object, M extends object>(scope: CallScope, spec: ModelSpec<S, M>, id: string): ObjectHandle<S, M> {
  const model = spec.name;
  const loaded = (body: JsonObject) => ({ version: body.version as number, state: (body.state ?? null) as S | null });
  const operations: StateOperations<S> = {
    model,
    id,
    load: async () => loaded(await send(scope, model, id, () => ({ op: "read" }), false)),
    create: async (state = {}) => loaded(await send(scope, model, id, (requestId) => ({ op: "create", state: json(state), requestId }))),
    update: async (fields, options = {}) =>
      loaded(
        await send(scope, model, id, (requestId) => ({ op: "update", fields: json(fields), ifVersion: options.ifVersion ?? null, requestId })),
      ),
    delete: async () => {
      const body = await send(scope, model, id, (requestId) => ({ op: "delete", requestId }));
      return { deleted: body.deleted === true, version: body.version as number };
    },
  };
  const methods: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const [name, method] of Object.entries(spec.methods)) {
    const order = Object.keys(method.params);
    methods[name] = async (...values: unknown[]) => {
      if (values.length > order.length) throw new TypeError(`${model}.${name} takes at most ${order.length} arguments`);
      const args: JsonObject = {};
      values.forEach((value, index) => {
        if (value !== undefined) args[order[index]!] = value as Json;
      });
      const body = await send(scope, model, id, (requestId) => ({ op: "call", method: name, args: json(args), requestId }));
      return body.result;
    };
  }
  return Object.assign(methods, operations) as unknown as ObjectHandle<S, M>;
}

/** Values sent to another object must be JSON a client could send. */
function json<T>(value: T): JsonObject {
  if (!isJson(value) || !carriable(JSON.stringify(value))) {
    throw new CallError("validation_error", "the values sent to another object must be JSON (integers within ±(2^53 − 1))");
  }
  return value as unknown as JsonObject;
}

/**
 * Sends one operation to `model`'s object `id` on behalf of the body running in
 * `scope`, and answers the reply's body (throwing `CallError` for an error reply).
 */
async function send(
  scope: CallScope,
  model: string,
  id: string,
  build: (requestId: string | null) => Operation,
  changes = true,
): Promise<JsonObject> {
  try {
    checkObjectId(id);
  } catch (error) {
    if (error instanceof Failure) throw new CallError(error.code, error.message, error.details);
    throw error;
  }
  const link: Link = [model, id];
  if (scope.chain.some(([m, i]) => m === model && i === id)) {
    throw new ReentrancyError(
      `${[...scope.chain, link].map(describeLink).join(" -> ")}: ${describeLink(link)} is already running a method ` +
        "in this chain of calls, and would wait for itself forever",
    );
  }
  const namespace = namespaceOf(scope.env, model);
  if (namespace === undefined) throw new CallError("unknown_model", `no model named ${JSON.stringify(model)} is served here`);
  const operation = build(changes ? await nestedRequestId(scope, link) : null);
  const stub = namespace.get(namespace.idFromName(id)) as unknown as ObjectStub;
  const what = `${describeLink(link)}: ${operation.op === "call" ? operation.method : operation.op}`;
  const reply = await withTimeout(dispatch(stub, operation, { objectId: id, chain: scope.chain }), scope.timeoutMs, what);
  const body = JSON.parse(reply.body) as JsonObject;
  if (reply.status >= 300) throw CallError.fromEnvelope(body.error);
  return body;
}

async function dispatch(stub: ObjectStub, operation: Operation, caller: Caller): Promise<Reply> {
  try {
    return await stub.dispatch(operation, caller);
  } catch (error) {
    const flags = (typeof error === "object" && error !== null ? error : {}) as { overloaded?: boolean; retryable?: boolean };
    if (flags.overloaded === true) throw new CallError("overloaded", "the object is overloaded; retry later");
    if (flags.retryable === true) throw new CallError("unavailable", "the object is restarting; retry");
    console.error("a call to another object failed:", error);
    throw new CallError("internal", "unexpected failure of a call to another object");
  }
}

/**
 * The request id of the body's next changing operation on `link`:
 * `"n:" + hex(sha256(outer + "\0" + model + "\0" + id + "\0" + k))[:40]`, where k
 * counts the body's earlier changing operations on that object. The position is
 * taken before anything is awaited, so operations started together keep the
 * order in which the body started them.
 */
export async function nestedRequestId(scope: CallScope, [model, id]: Link): Promise<string> {
  const key = `${model}\0${id}`;
  const number = scope.made.get(key) ?? 0;
  scope.made.set(key, number + 1);
  const text = [scope.requestId, model, id, String(number)].join("\0");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hex = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `n:${hex.slice(0, 40)}`;
}

/** `promise`, or a `TimeoutError` after `ms` milliseconds (the operation itself is not cancelled). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new CallTimeoutError(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}
