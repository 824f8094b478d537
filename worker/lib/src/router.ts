/**
 * The Worker's front door: checks the request in the order docs/protocol.md
 * gives (health, Origin and Host, token, protocol version, path, HTTP method,
 * upgrade, model, body), then hands one operation to the object's Durable Object.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { authorized } from "./auth";
import { checkTicket, presentedTicket, readTicket, TICKET_ALLOW_HEADER, type Ticket } from "./ticket";
import { Failure } from "./errors";
import { readJsonBody, respond, respondFailure, respondJson } from "./http";
import { OBJECTS_WITH_SOCKETS, type ModelClass } from "./object";
import { listObjects, parseListQuery, setIndexShards } from "./listing";
import { namespaceOf, registerModel } from "./registry";
import {
  checkMethodName,
  checkModelName,
  checkObjectId,
  EMPTY_BODY,
  haveOfQuery,
  OBJECT_ID_HEADER,
  parseCallBody,
  parseCreateBody,
  parseDeleteBody,
  parseUpdateBody,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  type Caller,
  type Operation,
  type Reply,
} from "./protocol";

/** The RPC surface of a model object, as the router sees it. */
interface ModelStub {
  dispatch(operation: Operation, caller?: Caller): Promise<Reply>;
  schedules(caller?: Caller): Promise<Reply>;
  fetch(request: Request): Promise<Response>;
  goAway(): Promise<number>;
}

type Namespace = DurableObjectNamespace;

/**
 * The environment the router reads: the token, whether serving without one is
 * allowed (`ALLOW_ANONYMOUS` = "true"), the Origins allowed besides the
 * request's own (`ALLOWED_ORIGINS`, comma-separated), and the namespace bindings.
 */
type RouterEnv = { API_TOKEN?: string; ALLOW_ANONYMOUS?: string; ALLOWED_ORIGINS?: string } & object;

/** Maps env binding names to the model classes bound there: `{ COUNTER: Counter }`. */
export type ModelBindings = Record<string, ModelClass>;

/** A request's route after the path was split and decoded. */
type ObjectRoute =
  | { kind: "list"; model: string }
  | { kind: "object"; model: string; id: string }
  | { kind: "call"; model: string; id: string; method: string }
  | { kind: "schedules"; model: string; id: string }
  | { kind: "socket"; model: string; id: string };

const ALLOWED: Record<ObjectRoute["kind"] | "health", readonly string[]> = {
  health: ["GET"],
  list: ["GET"],
  object: ["GET", "PUT", "PATCH", "DELETE"],
  call: ["POST"],
  schedules: ["GET"],
  socket: ["GET"],
};

/** What a router serves besides its models. */
export interface RouterOptions {
  /** Shards of each model's index of objects (default 4); every deployment of the Worker must keep the same. */
  indexShards?: number;
}

const HEALTH_PATH = "/v1/health";
const MODELS_PATH = "/v1/models";
/** Host names a server without a token answers to (DNS rebinding cannot forge them). */
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Builds the Worker's `fetch` handler serving the given models. */
export function createRouter(bindings: ModelBindings, options: RouterOptions = {}): ExportedHandler<RouterEnv> {
  if (options.indexShards !== undefined) setIndexShards(options.indexShards);
  const namespaces = new Map<string, string>();
  for (const [binding, model] of Object.entries(bindings)) namespaces.set(model.spec.name, binding);
  for (const [model, binding] of namespaces) registerModel(model, binding);
  const models = schemaDocument(bindings);
  return {
    async fetch(request, env) {
      try {
        return await route(request, env, namespaces, models);
      } catch (error) {
        if (error instanceof Failure) return respondFailure(error);
        return respondFailure(unexpected(error));
      }
    },
  };
}

async function route(request: Request, env: RouterEnv, namespaces: Map<string, string>, models: string | null): Promise<Response> {
  const path = rawPath(request.url);
  if (path === HEALTH_PATH) return health(request);
  checkOrigin(request, env);
  const ticket = await checkToken(request, env);
  checkProtocol(request);
  if (path === MODELS_PATH) {
    if (ticket !== null) throw new Failure("forbidden", "a ticket is for one object");
    return serveSchemaDocument(request, models);
  }
  const target = parsePath(path);
  checkMethod(request, target.kind, path);
  checkUpgrade(request, target.kind === "socket");
  const namespace = objectNamespace(env, namespaces, target.model);
  if (target.kind === "list") {
    if (ticket !== null) throw new Failure("forbidden", "a ticket is for one object");
    return respondJson(200, { ...(await listObjects(env, target.model, parseListQuery(rawQuery(request.url)))) });
  }
  // A ticket allowing "load" lets its holder read the object's schedules too.
  if (ticket !== null) checkTicket(ticket, target.model, target.id, operationName(target, request.method));
  const caller: Caller = { objectId: target.id, chain: [] };
  if (target.kind === "schedules") return respond(await rpc(() => objectStub(namespace, target.id).schedules(caller)));
  if (target.kind === "socket") return objectStub(namespace, target.id).fetch(withObjectId(withTicketScope(request, ticket), target.id));
  const operation = await readOperation(request, target);
  return respond(await rpc(() => objectStub(namespace, target.id).dispatch(operation, caller)));
}

// --- GET /v1/models: the schema document the models were generated from ---

/** The schema document of the served models (they share the one they were generated from), or null. */
function schemaDocument(bindings: ModelBindings): string | null {
  for (const model of Object.values(bindings)) {
    if (model.spec.document !== null) return model.spec.document;
  }
  return null;
}

function serveSchemaDocument(request: Request, document: string | null): Response {
  if (request.method !== "GET") throw new Failure("method_not_allowed", `${request.method} is not allowed on /v1/models`);
  checkUpgrade(request, false);
  if (document === null) throw new Failure("not_found", "these models were not generated from Python models, so no schema is published");
  return respond({ status: 200, body: document });
}

/** `GET /v1/health`: no token, no Origin or Host check; the protocol version still counts. */
function health(request: Request): Response {
  checkProtocol(request);
  checkMethod(request, "health", HEALTH_PATH);
  checkUpgrade(request, false);
  return respondJson(200, { status: "ok", protocol: PROTOCOL_VERSION });
}

/**
 * The path exactly as the request line carried it: no dot segments removed, no
 * escapes decoded (`new URL(...).pathname` would remove `%2E%2E` segments).
 */
export function rawPath(url: string): string {
  const scheme = url.indexOf("://");
  const rest = url.slice(scheme < 0 ? 0 : scheme + 3);
  const start = rest.search(/[/?#]/);
  if (start < 0 || rest[start] !== "/") return "/";
  const end = rest.slice(start).search(/[?#]/);
  return end < 0 ? rest.slice(start) : rest.slice(start, start + end);
}

/** The query of a URL as sent (after `?`, before `#`), not decoded. */
function rawQuery(url: string): string {
  const start = url.indexOf("?");
  if (start < 0) return "";
  const end = url.indexOf("#", start);
  return end < 0 ? url.slice(start + 1) : url.slice(start + 1, end);
}

function checkMethod(request: Request, kind: keyof typeof ALLOWED, path: string): void {
  if (!ALLOWED[kind].includes(request.method)) {
    throw new Failure("method_not_allowed", `${request.method} is not allowed on ${path}`);
  }
}

function wantsUpgrade(request: Request): boolean {
  return request.headers.get("Upgrade")?.toLowerCase() === "websocket";
}

/** An upgrade only on the WebSocket endpoint, and the WebSocket endpoint only with one. */
function checkUpgrade(request: Request, socket: boolean): void {
  if (wantsUpgrade(request) && !socket) throw new Failure("not_found", "no WebSocket endpoint at this path");
  if (!wantsUpgrade(request) && socket) {
    throw new Failure("bad_request", "this endpoint needs a WebSocket upgrade (Upgrade: websocket)");
  }
}

function isAnonymous(env: RouterEnv): boolean {
  return env.API_TOKEN === undefined || env.API_TOKEN === "";
}

/** Null when the token is right (or none is configured); the ticket presented instead of it. */
async function checkToken(request: Request, env: RouterEnv): Promise<Ticket | null> {
  if (isAnonymous(env)) {
    if (env.ALLOW_ANONYMOUS === "true") return null;
    throw new Failure("unauthorized", "no token configured: set the API_TOKEN secret (or ALLOW_ANONYMOUS=true for local use)");
  }
  if (!(await authorized(request.headers.get("Authorization"), env.API_TOKEN!))) {
    const ticket = presentedTicket(request);
    if (ticket === null) throw new Failure("unauthorized", "missing or wrong bearer token");
    return readTicket(ticket, env.API_TOKEN!);
  }
  return null;
}

/** The name tickets know an operation by: `load` (a read, or opening a socket), or what it does. */
function operationName(target: ObjectRoute, method: string): string {
  if (target.kind === "call") return target.method;
  return { PUT: "create", PATCH: "update", DELETE: "delete" }[method] ?? "load";
}

/** The request to hand the object: a ticket socket carries what the ticket allows it to call. */
function withTicketScope(request: Request, ticket: Ticket | null): Request {
  const headers = new Headers(request.headers);
  headers.delete(TICKET_ALLOW_HEADER);
  if (ticket !== null) headers.set(TICKET_ALLOW_HEADER, ticket.allow.join(","));
  return new Request(request, { headers });
}

/** The request's Host (header, else the URL's), lowercased. */
function requestHost(request: Request): string {
  const header = request.headers.get("Host");
  if (header !== null && header !== "") return header.toLowerCase();
  try {
    return new URL(request.url).host;
  } catch {
    return "";
  }
}

/** `host` without its port: `[::1]:80` gives `[::1]`. */
function hostName(host: string): string {
  const colon = host.lastIndexOf(":");
  return colon > host.lastIndexOf("]") ? host.slice(0, colon) : host;
}

/**
 * Refuses (`403 forbidden`) an `Origin` other than the request's own or one of
 * `ALLOWED_ORIGINS`, and, when serving without a token, a Host that is not a
 * loopback name (a page on another site must not reach a local server).
 */
function checkOrigin(request: Request, env: RouterEnv): void {
  const host = requestHost(request);
  if (isAnonymous(env) && env.ALLOW_ANONYMOUS === "true" && !LOOPBACK_HOSTS.has(hostName(host))) {
    throw new Failure("forbidden", "without a token only localhost, 127.0.0.1 and [::1] are served");
  }
  const origin = request.headers.get("Origin");
  if (origin === null) return;
  if (sameHost(origin, host) || allowedOrigins(env).includes(normalizedOrigin(origin))) return;
  throw new Failure("forbidden", "requests from this Origin are not allowed");
}

function normalizedOrigin(origin: string): string {
  try {
    const url = new URL(origin.trim());
    return url.origin === "null" ? origin.trim() : url.origin;
  } catch {
    return origin.trim();
  }
}

/** Whether the host[:port] of `origin` is the request's Host, as written (letter case aside). */
function sameHost(origin: string, host: string): boolean {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)$/i.exec(origin.trim())?.[1];
  return authority !== undefined && authority.toLowerCase() === host;
}

function allowedOrigins(env: RouterEnv): string[] {
  return (env.ALLOWED_ORIGINS ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map(normalizedOrigin);
}

function checkProtocol(request: Request): void {
  const version = request.headers.get(PROTOCOL_HEADER);
  if (version !== null && version.trim() !== String(PROTOCOL_VERSION)) {
    throw new Failure("unsupported_protocol", `this server speaks ${PROTOCOL_HEADER} ${PROTOCOL_VERSION}, not ${JSON.stringify(version)}`);
  }
}

/**
 * Splits the raw path on "/", then decodes and checks each segment once:
 * the model, then the object id, then what follows them.
 */
function parsePath(path: string): ObjectRoute {
  const segments = path.split("/");
  if (segments.length < 4 || segments[0] !== "" || segments[1] !== "v1" || segments[2] !== "objects") throw notFound(path);
  const model = decodeSegment(segments[3]!);
  checkModelName(model);
  if (segments.length === 4) return { kind: "list", model };
  const id = decodeSegment(segments[4]!);
  checkObjectId(id);
  const rest = segments.slice(5);
  if (rest.length === 0) return { kind: "object", model, id };
  if (rest.length === 1 && rest[0] === "ws") return { kind: "socket", model, id };
  if (rest.length === 1 && rest[0] === "schedules") return { kind: "schedules", model, id };
  if (rest.length === 2 && rest[0] === "call") {
    const method = decodeSegment(rest[1]!);
    checkMethodName(method);
    return { kind: "call", model, id, method };
  }
  throw notFound(path);
}

function notFound(path: string): Failure {
  return new Failure("not_found", `no endpoint at ${path.slice(0, 200)}`);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new Failure("invalid_id", "malformed percent-encoding in the path (each % needs two hex digits of UTF-8)");
  }
}

function objectNamespace(env: RouterEnv, namespaces: Map<string, string>, model: string): Namespace {
  const binding = namespaces.get(model);
  const namespace = binding === undefined ? undefined : (env as Record<string, unknown>)[binding];
  if (namespace === undefined) throw new Failure("unknown_model", `no model named ${JSON.stringify(model)} is served`);
  return namespace as Namespace;
}

function objectStub(namespace: Namespace, id: string): ModelStub {
  return namespace.get(namespace.idFromName(id)) as unknown as ModelStub;
}

/** The operation a request asks for; bodies are read (and refused) before any object is reached. */
async function readOperation(request: Request, target: Extract<ObjectRoute, { kind: "object" | "call" }>): Promise<Operation> {
  if (target.kind === "object" && request.method === "GET") return { op: "read", have: haveOfQuery(rawQuery(request.url)) };
  const body = (await readJsonBody(request)) ?? EMPTY_BODY;
  if (target.kind === "call") return parseCallBody(target.method, body);
  switch (request.method) {
    case "PUT":
      return parseCreateBody(body);
    case "PATCH":
      return parseUpdateBody(body);
    default:
      return parseDeleteBody(body);
  }
}

/** The handshake as the object receives it: with its id, which only the router can tell it. */
function withObjectId(request: Request, id: string): Request {
  const headers = new Headers(request.headers);
  headers.set(OBJECT_ID_HEADER, encodeURIComponent(id));
  return new Request(request, { headers });
}

async function rpc(call: () => Promise<Reply>): Promise<Reply> {
  try {
    return await call();
  } catch (error) {
    throw unexpected(error);
  }
}

/** Maps a failure of the runtime (not of the request) onto `overloaded`, `unavailable` or `internal`. */
function unexpected(error: unknown): Failure {
  const flags = (typeof error === "object" && error !== null ? error : {}) as { overloaded?: boolean; retryable?: boolean };
  if (flags.overloaded === true) return new Failure("overloaded", "the object is overloaded; retry later");
  if (flags.retryable === true) return new Failure("unavailable", "the object is restarting; retry");
  console.error("unexpected failure:", error);
  return new Failure("internal", "unexpected server failure");
}

/**
 * A local server's shutdown hook (scripts/serve.mjs calls it before stopping
 * the runtime): every object of this isolate holding WebSockets closes them
 * with 1001 (going away). Export it from the Worker's main module; a named
 * entrypoint is reachable only through a binding or a local socket, never
 * from the internet. Answers `{"closed": N}`.
 */
export class DurableShutdown extends WorkerEntrypoint<RouterEnv> {
  override async fetch(): Promise<Response> {
    const calls: Promise<number>[] = [];
    for (const [model, ids] of OBJECTS_WITH_SOCKETS) {
      const namespace = namespaceOf(this.env, model);
      if (namespace === undefined) continue;
      for (const id of ids) calls.push((namespace.get(namespace.idFromString(id)) as unknown as ModelStub).goAway());
    }
    const closed = (await Promise.allSettled(calls)).reduce((sum, done) => sum + (done.status === "fulfilled" ? done.value : 0), 0);
    return respondJson(200, { closed });
  }
}
