/** Server-to-client WebSocket frames, and the subscription settings a socket keeps. */
import { Failure } from "./errors";
import type { Reply } from "./protocol";

export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';

/** An event a call emitted, its data already JSON text. */
export interface EmittedEvent {
  name: string;
  dataJson: string;
}

export function snapshotFrame(version: number, stateJson: string | null): string {
  return `{"type":"snapshot","version":${version},"state":${stateJson ?? "null"}}`;
}

export function eventFrame(version: number, event: EmittedEvent): string {
  return `{"type":"event","version":${version},"name":${JSON.stringify(event.name)},"data":${event.dataJson}}`;
}

/** The `result` or `error` frame answering call `id`, from the reply an HTTP call would get. */
export function callReplyFrame(id: number, reply: Reply): string {
  const type = reply.status < 300 ? "result" : "error";
  // The reply body is a JSON object: splice the frame's members in front of its own.
  return `{"type":"${type}","id":${id},${reply.body.slice(1)}`;
}

/** An `error` frame for a frame that could not be accepted (`id` null) or a failed call. */
export function errorFrame(id: number | null, failure: Failure): string {
  return JSON.stringify({ type: "error", id, ...failure.toEnvelope() });
}

/** What a socket asked for; kept in its attachment so it survives hibernation. */
export interface Subscription {
  subscribed: boolean;
  snapshots: boolean;
  events: boolean;
}

export const NOT_SUBSCRIBED: Subscription = { subscribed: false, snapshots: false, events: false };

/** Reads a subscription back from a socket attachment (anything unexpected: not subscribed). */
export function subscriptionFrom(attachment: unknown): Subscription {
  if (typeof attachment !== "object" || attachment === null) return NOT_SUBSCRIBED;
  const { subscribed, snapshots, events } = attachment as Record<string, unknown>;
  if (subscribed !== true) return NOT_SUBSCRIBED;
  return { subscribed: true, snapshots: snapshots === true, events: events === true };
}
