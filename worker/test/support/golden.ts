/**
 * Runs the golden cases of docs/golden/ against a Worker: inside workerd through
 * `SELF`, or over real sockets against lib/scripts/serve.mjs.
 */
import { expect } from "vitest";
import { issueTicket } from "../../lib/src/ticket";
import { mismatch } from "./match";
import { FrameQueue } from "./sockets";

export const GOLDEN_TOKEN = "golden-token";

/** How requests reach the Worker. */
export interface Target {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  origin: string;
  fetch(url: string, init?: RequestInit): Promise<Response>;
  /** Pause after each frame sent, for clients that may reorder frames sent back to back. */
  sendDelayMs?: number;
}

type Auth = string | null | undefined;
type Headers = Record<string, string>;
/** A ticket the runner signs with the golden token; `{ticket}` in `auth` and headers is replaced by it. */
type TicketSpec = { model: string; id: string; allow: string[]; expired?: boolean };

interface HttpStep {
  request: { method: string; path: string; headers?: Headers; body?: unknown; raw_body?: string; auth?: Auth; ticket?: TicketSpec };
  response: { status: number; body?: unknown };
}

export type Step =
  | HttpStep
  | { ws_open: string; auth?: Auth; headers?: Headers; subprotocol?: string; ticket?: TicketSpec }
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

/** Request headers for a step: `auth` omitted sends the right token, null none, a string as is. */
function headersFor(auth: Auth, hasAuth: boolean, extra: Headers = {}, json = false): Headers {
  const headers: Headers = {};
  if (json) headers["Content-Type"] = "application/json";
  if (!hasAuth) headers.Authorization = `Bearer ${GOLDEN_TOKEN}`;
  else if (auth !== null && auth !== undefined) headers.Authorization = auth;
  return { ...headers, ...extra };
}

function expectMatch(expected: unknown, actual: unknown, where: string): void {
  const problem = mismatch(expected, actual);
  expect(problem, `${where}: ${problem}\nactual: ${JSON.stringify(actual)}`).toBeNull();
}

async function expectReply(res: Response, status: number, body: unknown, where: string): Promise<void> {
  const text = await res.text();
  expect(res.status, `${where}: status (body ${text})`).toBe(status);
  expect(res.headers.get("Durable-Protocol"), `${where}: Durable-Protocol header`).toBe("1");
  if (body !== undefined) expectMatch(body, JSON.parse(text), where);
}

async function runHttp(target: Target, step: HttpStep, run: string, where: string): Promise<void> {
  const request = await withTicket(step.request, run);
  const hasBody = "body" in request || "raw_body" in request;
  const init: RequestInit = {
    method: request.method,
    headers: headersFor(request.auth, "auth" in request, request.headers, hasBody),
  };
  if ("raw_body" in request) init.body = request.raw_body;
  else if ("body" in request) init.body = JSON.stringify(request.body);
  const res = await target.fetch(target.origin + request.path.replaceAll("{run}", run), init);
  await expectReply(res, step.response.status, step.response.body, where);
}

function upgradeInit(auth: Auth, hasAuth: boolean, extra?: Headers): RequestInit {
  return { headers: { Upgrade: "websocket", ...headersFor(auth, hasAuth, extra) } };
}

/** Runs one case: its steps in order, with one WebSocket at most. */
export async function runCase(target: Target, golden: GoldenCase, run: string): Promise<void> {
  let socket: FrameQueue | null = null;
  try {
    for (const [index, step] of golden.steps.entries()) {
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
    const res = await target.fetch(target.origin + step.ws_open.replaceAll("{run}", run), upgradeInit(step.auth, "auth" in step, step.headers));
    expect(res.status, `${where}: handshake status`).toBe(101);
    expect(res.headers.get("Durable-Protocol"), `${where}: Durable-Protocol header`).toBe("1");
    expect(res.headers.get("Sec-WebSocket-Protocol"), `${where}: selected subprotocol`).toBe(step.subprotocol ?? null);
    return FrameQueue.accept(res);
  } else if ("ws_open_refused" in step) {
    step = await withTicket(step, run);
    const res = await target.fetch(
      target.origin + step.ws_open_refused.replaceAll("{run}", run),
      upgradeInit(step.auth, "auth" in step, step.headers),
    );
    expect(res.webSocket, `${where}: refused handshake must not upgrade`).toBeNull();
    await expectReply(res, step.status, step.body, where);
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
