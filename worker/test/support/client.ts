/** A small HTTP client for the Worker under test, with the golden token. */
import { SELF } from "cloudflare:test";
import { FrameQueue } from "./sockets";

export const TOKEN = "golden-token";
export const ORIGIN = "http://worker.test";

export interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON body; typed loosely because assertions read arbitrary members. */
  body: any;
}

let counter = 0;
/** A fresh object id, so tests never see each other's objects. */
export function freshId(label = "obj"): string {
  counter += 1;
  return `${label}-${crypto.randomUUID().slice(0, 8)}-${counter}`;
}

export async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const init: RequestInit = {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...headers },
  };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await SELF.fetch(ORIGIN + path, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === "" ? null : JSON.parse(text) };
}

export function objectPath(model: string, id: string): string {
  return `/v1/objects/${model}/${encodeURIComponent(id)}`;
}

export function call(model: string, id: string, method: string, args: object = {}, requestId?: string): Promise<Answer> {
  const body = requestId === undefined ? { args } : { args, request_id: requestId };
  return api("POST", `${objectPath(model, id)}/call/${method}`, body);
}

/** Opens a WebSocket to an object, with the token. */
export async function connect(model: string, id: string): Promise<FrameQueue> {
  const res = await SELF.fetch(`${ORIGIN}${objectPath(model, id)}/ws`, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${TOKEN}`, "Durable-Protocol": "1" },
  });
  return FrameQueue.accept(res);
}
