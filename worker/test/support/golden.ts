/**
 * Runs the golden cases of docs/golden/ against a Worker: inside workerd through
 * `SELF`, or over real sockets against lib/scripts/serve.mjs.
 */
import { expect } from "vitest";
import { issueTicket } from "../../lib/src/ticket";
import { mismatch } from "./match";
import { FrameQueue } from "./sockets";

export const GOLDEN_TOKEN = "golden-token";

/** A reply read from a plain socket. */
export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** How requests reach the Worker. */
export interface Target {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  origin: string;
  fetch(url: string, init?: RequestInit): Promise<Response>;
  /** Sends a request with its path exactly as given (no URL parser on the way); absent when the target cannot. */
  raw?(method: string, path: string, headers: Record<string, string>, body: string | undefined): Promise<RawReply>;
  /** Pause after each frame sent, for clients that may reorder frames sent back to back. */
  sendDelayMs?: number;
}

type Auth = string | null | undefined;
type Headers = Record<string, string>;
/** A ticket the runner signs with the golden token; `{ticket}` in `auth` and headers is replaced by it. */
type TicketSpec = { model: string; id: string; allow: string[]; expired?: boolean };

interface HttpStep {
  request: {
    method: string;
    path: string;
    headers?: Headers;
    body?: unknown;
    raw_body?: string;
    auth?: Auth;
    raw?: boolean;
    fill?: [string, number];
    ticket?: TicketSpec;
  };
  response: { status: number; headers?: Headers; body?: unknown };
}

export type Step =
  | HttpStep
  | { repeat: number; steps: Step[] }
  | {
      ws_open: string;
      auth?: Auth;
      headers?: Headers;
      absent_headers?: string[];
      expect_headers?: Headers;
      subprotocol?: string;
      ticket?: TicketSpec;
    }
  | { ws_send: unknown }
  | { ws_send_raw: string }
  | { ws_expect: unknown }
  | { ws_open_refused: string; auth?: Auth; headers?: Headers; status: number; body?: unknown; ticket?: TicketSpec };

/** `auth` and `headers` with `{ticket}` replaced by a ticket made for `spec` (and `{run}` in its id). */
async function withTicket<T extends { auth?: Auth; headers?: Headers; ticket?: TicketSpec }>(step: T, run: string): Promise<T> {
  const spec = step.ticket;
  if (spec === undefined) return step;
  const now = Date.now() / 1000 - (spec.expired === true ? 120 : 0);
  const ticket = await issueTicket(GOLDEN_TOKEN, spec.model, spec.id.replaceAll("{run}", run), spec.allow, 60, now);
  const fill = (text: string) => text.replaceAll("{ticket}", ticket);
  const headers = Object.fromEntries(Object.entries(step.headers ?? {}).map(([name, value]) => [name, fill(value)]));
  return { ...step, ...("auth" in step ? { auth: typeof step.auth === "string" ? fill(step.auth) : step.auth } : {}), headers };
}

export interface GoldenCase {
  name: string;
  steps: Step[];
}

/** Whether a case sends a path that only a plain socket carries as written. */
export function needsRaw(golden: GoldenCase): boolean {
  return golden.steps.some((step) => "request" in step && step.request.raw === true);
}

/** Request headers for a step: `auth` omitted sends the right token, null none, a string as is; "{origin}" is the server's. */
function headersFor(target: Target, auth: Auth, hasAuth: boolean, extra: Headers = {}, json = false): Headers {
  const headers: Headers = {};
  if (json) headers["Content-Type"] = "application/json";
  if (!hasAuth) headers.Authorization = `Bearer ${GOLDEN_TOKEN}`;
  else if (auth !== null && auth !== undefined) headers.Authorization = auth;
  for (const [name, value] of Object.entries(extra)) headers[name] = value.replaceAll("{origin}", target.origin);
  return headers;
}

function expectMatch(expected: unknown, actual: unknown, where: string): void {
  const problem = mismatch(expected, actual);
  expect(problem, `${where}: ${problem}\nactual: ${JSON.stringify(actual)?.slice(0, 2_000)}`).toBeNull();
}

function expectReply(reply: RawReply, status: number, body: unknown, where: string, headers: Headers = {}): void {
  expect(reply.status, `${where}: status (body ${reply.body.slice(0, 2_000)})`).toBe(status);
  expect(reply.headers["durable-protocol"], `${where}: Durable-Protocol header`).toBe("1");
  for (const [name, value] of Object.entries(headers)) expect(reply.headers[name.toLowerCase()], `${where}: ${name} header`).toBe(value);
  if (body !== undefined) expectMatch(body, JSON.parse(reply.body), where);
}

async function read(res: Response): Promise<RawReply> {
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => (headers[name.toLowerCase()] = value));
  return { status: res.status, headers, body: await res.text() };
}

/** The body a step sends: `raw_body` as is ("{fill}" replaced by `fill`'s character repeated), or `body` as JSON. */
function bodyOf(request: HttpStep["request"]): string | undefined {
  if ("raw_body" in request) {
    const fill = request.fill;
    return fill === undefined ? request.raw_body : request.raw_body!.replaceAll("{fill}", fill[0].repeat(fill[1]));
  }
  return "body" in request ? JSON.stringify(request.body) : undefined;
}

async function runHttp(target: Target, step: HttpStep, run: string, where: string): Promise<void> {
  const request = await withTicket(step.request, run);
  const body = bodyOf(request);
  const headers = headersFor(target, request.auth, "auth" in request, request.headers, body !== undefined);
  const path = request.path.replaceAll("{run}", run);
  let reply: RawReply;
  if (request.raw === true) {
    if (target.raw === undefined) throw new Error(`${where}: this target cannot send raw paths`);
    reply = await target.raw(request.method, path, headers, body);
  } else {
    const init: RequestInit = { method: request.method, headers };
    if (body !== undefined) init.body = body;
    reply = await read(await target.fetch(target.origin + path, init));
  }
  expectReply(reply, step.response.status, step.response.body, where, step.response.headers);
}

function upgradeInit(target: Target, auth: Auth, hasAuth: boolean, extra?: Headers): RequestInit {
  return { headers: { Upgrade: "websocket", ...headersFor(target, auth, hasAuth, extra) } };
}

/** `value` with each `{name}` of `tokens` replaced in every string in it (keys too). */
export function substituted<T>(value: T, tokens: Record<string, string>): T {
  if (typeof value === "string") {
    let text: string = value;
    for (const [name, token] of Object.entries(tokens)) text = text.replaceAll(`{${name}}`, token);
    return text as T;
  }
  if (Array.isArray(value)) return value.map((item) => substituted(item, tokens)) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [substituted(key, tokens), substituted(item, tokens)])) as T;
  }
  return value;
}

/** The steps, with each `{"repeat": n, "steps": [...]}` unrolled (`{i}`: 0 to n-1). */
export function* expanded(steps: Step[]): Generator<Step> {
  for (const step of steps) {
    if ("repeat" in step) {
      for (let number = 0; number < step.repeat; number++) yield* expanded(substituted(step.steps, { i: String(number) }));
    } else {
      yield step;
    }
  }
}

/** Runs one case: its steps in order, with one WebSocket at most. */
export async function runCase(target: Target, golden: GoldenCase, run: string): Promise<void> {
  let socket: FrameQueue | null = null;
  try {
    for (const [index, step] of [...expanded(substituted(golden.steps, { run }))].entries()) {
      const where = `${golden.name} / step ${index + 1}`;
      socket = (await runStep(target, step, run, socket, where)) ?? socket;
    }
  } finally {
    socket?.close();
  }
}

async function runStep(target: Target, step: Step, run: string, socket: FrameQueue | null, where: string): Promise<FrameQueue | null> {
  if ("request" in step) {
    await runHttp(target, step, run, where);
  } else if ("ws_open" in step) {
    step = await withTicket(step, run);
    const res = await target.fetch(target.origin + step.ws_open.replaceAll("{run}", run), upgradeInit(target, step.auth, "auth" in step, step.headers));
    expect(res.status, `${where}: handshake status`).toBe(101);
    expect(res.headers.get("Durable-Protocol"), `${where}: Durable-Protocol header`).toBe("1");
    for (const name of step.absent_headers ?? []) expect(res.headers.get(name), `${where}: ${name}`).toBeNull();
    for (const [name, value] of Object.entries(step.expect_headers ?? {})) expect(res.headers.get(name), `${where}: ${name}`).toBe(value);
    expect(res.headers.get("Sec-WebSocket-Protocol"), `${where}: selected subprotocol`).toBe(step.subprotocol ?? null);
    return FrameQueue.accept(res);
  } else if ("ws_open_refused" in step) {
    step = await withTicket(step, run);
    const res = await target.fetch(
      target.origin + step.ws_open_refused.replaceAll("{run}", run),
      upgradeInit(target, step.auth, "auth" in step, step.headers),
    );
    expect(res.webSocket, `${where}: refused handshake must not upgrade`).toBeNull();
    expectReply(await read(res), step.status, step.body, where);
  } else {
    runSocketStep(step, requireSocket(socket, where), where);
    if (!("ws_expect" in step) && target.sendDelayMs) await new Promise((resolve) => setTimeout(resolve, target.sendDelayMs));
    if ("ws_expect" in step) expectMatch(step.ws_expect, await requireSocket(socket, where).next(), where);
  }
  return null;
}

function requireSocket(socket: FrameQueue | null, where: string): FrameQueue {
  if (socket === null) throw new Error(`${where}: no WebSocket open`);
  return socket;
}

function runSocketStep(step: Step, socket: FrameQueue, where: string): void {
  if ("ws_send" in step) socket.send(JSON.stringify(step.ws_send));
  else if ("ws_send_raw" in step) socket.send(step.ws_send_raw);
  else if (!("ws_expect" in step)) throw new Error(`${where}: unknown step ${JSON.stringify(step)}`);
}
