/**
 * Tickets: short-lived permissions on one object, signed by an application with
 * the Worker's token, that a browser presents instead of the token
 * (`Authorization: Ticket <t>`, or the WebSocket subprotocol `durable.ticket.<t>`).
 * The format is in docs/protocol.md; `cloudflare_durable.issue_ticket` makes them.
 */
import { Failure } from "./errors";

/** The subprotocol browsers offer, and the Worker selects. */
export const SUBPROTOCOL = "durable.v1";
const TICKET_PREFIX = "durable.ticket.";
const MAX_TICKET_SECONDS = 3600;
const CLOCK_SKEW_SECONDS = 60;
/** The header the router sets on a WebSocket it opens with a ticket: the operations allowed. */
export const TICKET_ALLOW_HEADER = "Durable-Ticket-Allow";
/** The WebSocket tag of a ticket socket, and the prefix of the tags naming what it may call. */
export const TICKET_TAG = "ticket";
export const ALLOW_TAG_PREFIX = "allow:";

/** What a valid ticket allows. */
export interface Ticket {
  model: string;
  id: string;
  allow: string[];
  exp: number;
}

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

async function hmac(key: ArrayBuffer | CryptoKey, data: string): Promise<ArrayBuffer> {
  const cryptoKey =
    key instanceof ArrayBuffer
      ? await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      : key;
  return crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(data));
}

/** HMAC-SHA256(UTF-8(token), "cloudflare-durable ticket v1"), as a signing key; once per token. */
function ticketKey(token: string): Promise<CryptoKey> {
  let key = keys.get(token);
  if (key === undefined) {
    key = hmac(encoder.encode(token).buffer as ArrayBuffer, "cloudflare-durable ticket v1").then((raw) =>
      crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
    );
    keys.set(token, key);
  }
  return key;
}

function unbase64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * A ticket for `id` of `model`, signed with the Worker's token, valid `ttl` seconds
 * (the same bytes `cloudflare_durable.issue_ticket` makes).
 */
export async function issueTicket(
  token: string,
  model: string,
  id: string,
  allow: string[] = ["load"],
  ttl = 60,
  now = Date.now() / 1000,
): Promise<string> {
  const payload = { model, id, allow: [...new Set(allow)].sort(), exp: Math.trunc(now + ttl) };
  const body = `t1.${base64url(encoder.encode(JSON.stringify(payload)))}`;
  return `${body}.${base64url(new Uint8Array(await hmac(await ticketKey(token), body)))}`;
}

/** The ticket a request presents (Authorization: Ticket, or a WebSocket subprotocol), or null. */
export function presentedTicket(request: Request): string | null {
  const match = /^Ticket +(.+)$/i.exec(request.headers.get("Authorization") ?? "");
  if (match !== null) return match[1]!.trim();
  for (const protocol of (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",")) {
    const value = protocol.trim();
    if (value.startsWith(TICKET_PREFIX)) return value.slice(TICKET_PREFIX.length);
  }
  return null;
}

/** The scope of a ticket the token signed and that is current; `unauthorized` otherwise. */
export async function readTicket(ticket: string, token: string, now = Date.now() / 1000): Promise<Ticket> {
  const refused = new Failure("unauthorized", "the ticket is invalid or has expired");
  const [prefix, encoded, signature, ...rest] = ticket.split(".");
  if (prefix !== "t1" || !encoded || !signature || rest.length > 0) throw refused;
  const presented = unbase64url(signature);
  const payloadBytes = unbase64url(encoded);
  if (presented === null || payloadBytes === null) throw refused;
  const expected = new Uint8Array(await hmac(await ticketKey(token), `t1.${encoded}`));
  if (presented.length !== expected.length || !crypto.subtle.timingSafeEqual(presented, expected)) throw refused;
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder().decode(payloadBytes));
  } catch {
    throw refused;
  }
  const scope = payload as Ticket;
  const valid =
    typeof payload === "object" && payload !== null && Object.keys(payload).sort().join() === "allow,exp,id,model" &&
    typeof scope.model === "string" && typeof scope.id === "string" && Number.isInteger(scope.exp) &&
    Array.isArray(scope.allow) && scope.allow.every((name) => typeof name === "string");
  if (!valid || !(now < scope.exp && scope.exp <= now + MAX_TICKET_SECONDS + CLOCK_SKEW_SECONDS)) throw refused;
  return scope;
}

/** `forbidden` unless the ticket allows `operation` on this object. */
export function checkTicket(ticket: Ticket, model: string, id: string, operation: string): void {
  if (ticket.model !== model || ticket.id !== id || !ticket.allow.includes(operation)) {
    throw new Failure("forbidden", `the ticket does not allow ${JSON.stringify(operation)} here`);
  }
}

/** The tags a ticket socket is accepted with (the DO checks calls against them). */
export function ticketTags(request: Request): string[] {
  const allowed = request.headers.get(TICKET_ALLOW_HEADER);
  if (allowed === null) return [];
  return [TICKET_TAG, ...allowed.split(",").filter((name) => name !== "").map((name) => ALLOW_TAG_PREFIX + name)];
}

/** Whether a socket accepted with `tags` may call `method`. */
export function socketMayCall(tags: string[], method: string): boolean {
  return !tags.includes(TICKET_TAG) || tags.includes(ALLOW_TAG_PREFIX + method);
}

/** The subprotocol to select in a 101 answer: `durable.v1` when the client offered it. */
export function selectedSubprotocol(request: Request): string | null {
  const offered = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((value) => value.trim());
  return offered.includes(SUBPROTOCOL) ? SUBPROTOCOL : null;
}
