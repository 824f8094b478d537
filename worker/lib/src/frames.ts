/** Server-to-client WebSocket frames, and what a socket keeps across hibernation. */
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

/** The fields a change set (their values at `version`), to a client that holds version `since`. */
export function patchFrame(version: number, since: number, setJson: string): string {
  return `{"type":"patch","version":${version},"since":${since},"set":${setJson}}`;
}

/** Event `index` of the `count` events the change to `version` emitted. */
export function eventFrame(version: number, event: EmittedEvent, index: number, count: number): string {
  return `{"type":"event","version":${version},"index":${index},"count":${count},"name":${JSON.stringify(event.name)},"data":${event.dataJson}}`;
}

/** Events of versions `since + 1` to `until` may be missing: the object's event log no longer holds them all. */
export function gapFrame(since: number, until: number): string {
  return `{"type":"gap","since":${since},"until":${until}}`;
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

/** What a socket asked for with its `subscribe` frame, and how far it has got. */
export interface Subscription {
  subscribed: boolean;
  snapshots: boolean;
  events: boolean;
  /** Send a change as the fields it set to a subscriber that holds the version before it. */
  patches: boolean;
  /**
   * The latest version the subscriber holds: the `since` it subscribed with,
   * then each version sent to it. Nothing at or below it is sent (null: everything).
   */
  since: number | null;
}

export const NOT_SUBSCRIBED: Subscription = { subscribed: false, snapshots: false, events: false, patches: false, since: null };

/**
 * What a socket keeps in its attachment, so that it survives hibernation: its
 * subscription, and the frames and bytes sent to it since the client's last
 * ping (`pingAt`: the runtime's timestamp of the last ping it answered).
 */
export interface SocketRecord {
  subscription: Subscription;
  frames: number;
  bytes: number;
  pingAt: number | null;
}

export function freshRecord(): SocketRecord {
  return { subscription: NOT_SUBSCRIBED, frames: 0, bytes: 0, pingAt: null };
}

const count = (value: unknown): number => (Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0);

/** Reads a socket record back from an attachment (anything unexpected: a fresh record). */
export function recordFrom(attachment: unknown): SocketRecord {
  if (typeof attachment !== "object" || attachment === null) return freshRecord();
  const { subscription, frames, bytes, pingAt } = attachment as Record<string, unknown>;
  return {
    subscription: subscriptionFrom(subscription),
    frames: count(frames),
    bytes: count(bytes),
    pingAt: typeof pingAt === "number" ? pingAt : null,
  };
}

/** Reads a subscription back (anything unexpected: not subscribed). */
export function subscriptionFrom(value: unknown): Subscription {
  if (typeof value !== "object" || value === null) return NOT_SUBSCRIBED;
  const { subscribed, snapshots, events, patches, since } = value as Record<string, unknown>;
  if (subscribed !== true) return NOT_SUBSCRIBED;
  const from = Number.isSafeInteger(since) ? (since as number) : null;
  return { subscribed: true, snapshots: snapshots === true, events: events === true, patches: patches === true, since: from };
}
