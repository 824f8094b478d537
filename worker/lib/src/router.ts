/**
 * The Worker's front door: checks the token, the protocol version, the path
 * and the body, then hands one operation to the object's Durable Object.
 */
import { authorized } from "./auth";
import { checkTicket, presentedTicket, readTicket, TICKET_ALLOW_HEADER, type Ticket } from "./ticket";
import { Failure } from "./errors";
import { readJsonObject, respond, respondFailure, respondJson } from "./http";
import type { ModelClass } from "./object";
import {
  checkMethodName,
  checkModelName,
  checkObjectId,
  parseCallBody,
  parseCreateBody,
  parseDeleteBody,
  parseUpdateBody,
  PROTOCOL_HEADER,
  PROTOCOL_VERSION,
  type Operation,
  type Reply,
} from "./protocol";

/** The RPC surface of a model object, as the router sees it. */
interface ModelStub {
  dispatch(operation: Operation): Promise<Reply>;
  fetch(request: Request): Promise<Response>;
}

type Namespace = DurableObjectNamespace;

/** The environment the router reads: the token and the namespace bindings. */
type RouterEnv = { API_TOKEN?: string } & object;

/** Maps env binding names to the model classes bound there: `{ COUNTER: Counter }`. */
export type ModelBindings = Record<string, ModelClass>;

/** A request's route after the path was split and decoded. */
type ObjectRoute =
  | { kind: "object"; model: string; id: string }
  | { kind: "call"; model: string; id: string; method: string }
  | { kind: "socket"; model: string; id: string };

type Route = { kind: "health" } | ObjectRoute;

const ALLOWED: Record<Route["kind"], readonly string[]> = {
  health: ["GET"],
  object: ["GET", "PUT", "PATCH", "DELETE"],
  call: ["POST"],
  socket: ["GET"],
};

/** Builds the Worker's `fetch` handler serving the given models. */
export function createRouter(bindings: ModelBindings): ExportedHandler<RouterEnv> {
  const namespaces = new Map<string, string>();
  for (const [binding, model] of Object.entries(bindings)) namespaces.set(model.spec.name, binding);
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
  const path = new URL(request.url).pathname;
  if (path === "/v1/health") {
    checkMethod(request, "health", path);
    return respondJson(200, { status: "ok", protocol: PROTOCOL_VERSION });
  }
  const ticket = await checkToken(request, env);
  checkProtocol(request);
  if (path === "/v1/models") {
    if (ticket !== null) throw new Failure("forbidden", "a ticket is for one object");
    return serveSchemaDocument(request, models);
  }
  const target = parsePath(path);
  const stub = objectStub(env, namespaces, target.model, target.id);
  checkMethod(request, target.kind, path);
  if (ticket !== null) checkTicket(ticket, target.model, target.id, operationName(target, request.method));
  if (target.kind === "socket") return openSocket(withTicketScope(request, ticket), stub);
  const operation = await readOperation(request, target);
  return respond(await dispatch(stub, operation));
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
  if (document === null) throw new Failure("not_found", "these models were not generated from Python models, so no schema is published");
  return respond({ status: 200, body: document });
}

function checkMethod(request: Request, kind: Route["kind"], path: string): void {
  if (!ALLOWED[kind].includes(request.method)) {
    throw new Failure("method_not_allowed", `${request.method} is not allowed on ${path}`);
  }
}

/** Null when the token is right (or none is configured); the ticket presented instead of it. */
async function checkToken(request: Request, env: RouterEnv): Promise<Ticket | null> {
  const token = env.API_TOKEN;
  if (token === undefined || token === "") return null;
  if (!(await authorized(request.headers.get("Authorization"), token))) {
    const ticket = presentedTicket(request);
    if (ticket === null) throw new Failure("unauthorized", "missing or wrong bearer token");
    return readTicket(ticket, token);
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

function checkProtocol(request: Request): void {
  const version = request.headers.get(PROTOCOL_HEADER);
  if (version !== null && version.trim() !== String(PROTOCOL_VERSION)) {
    throw new Failure("unsupported_protocol", `this server speaks ${PROTOCOL_HEADER} ${PROTOCOL_VERSION}, not ${JSON.stringify(version)}`);
  }
}

/** Splits the raw path first, then decodes and checks each segment once. */
function parsePath(path: string): ObjectRoute {
  const segments = path.split("/");
  if (segments.length < 5 || segments[1] !== "v1" || segments[2] !== "objects") throw notFound(path);
  const model = decodeSegment(segments[3]!);
  checkModelName(model);
  const id = decodeSegment(segments[4]!);
  checkObjectId(id);
  const rest = segments.slice(5);
  if (rest.length === 0) return { kind: "object", model, id };
  if (rest.length === 1 && rest[0] === "ws") return { kind: "socket", model, id };
  if (rest.length === 2 && rest[0] === "call") {
    const method = decodeSegment(rest[1]!);
    checkMethodName(method);
    return { kind: "call", model, id, method };
  }
  throw notFound(path);
}

function notFound(path: string): Failure {
  return new Failure("not_found", `no endpoint at ${path}`);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new Failure("bad_request", "malformed percent-encoding in the path");
  }
}

function objectStub(env: RouterEnv, namespaces: Map<string, string>, model: string, id: string): ModelStub {
  const binding = namespaces.get(model);
  const namespace = binding === undefined ? undefined : (env as Record<string, unknown>)[binding];
  if (namespace === undefined) throw new Failure("unknown_model", `no model named ${JSON.stringify(model)} is served`);
  const ns = namespace as Namespace;
  return ns.get(ns.idFromName(id)) as unknown as ModelStub;
}

async function readOperation(request: Request, target: Exclude<ObjectRoute, { kind: "socket" }>): Promise<Operation> {
  if (target.kind === "call") {
    return parseCallBody(target.method, await readJsonObject(request));
  }
  switch (request.method) {
    case "PUT":
      return parseCreateBody(await readJsonObject(request));
    case "PATCH":
      return parseUpdateBody(await readJsonObject(request));
    case "DELETE":
      return parseDeleteBody(await readJsonObject(request, true));
    default:
      return { op: "read" };
  }
}

function openSocket(request: Request, stub: ModelStub): Promise<Response> {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    throw new Failure("bad_request", "this endpoint needs a WebSocket upgrade (Upgrade: websocket)");
  }
  return stub.fetch(request);
}

async function dispatch(stub: ModelStub, operation: Operation): Promise<Reply> {
  try {
    return await stub.dispatch(operation);
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
