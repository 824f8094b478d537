/**
 * Schedules: calls an object makes to itself for later (`this.schedule(...)`),
 * stored with the change of the call that made them and run from the Durable
 * Object's alarm, each as a call of its method with the request id
 * `schedule:<id>`, once, at or after its time; a failed run is tried again
 * with backoff, then kept as failed.
 */
import { CallError } from "./errors";
import { hasOwn, isJson, type JsonObject } from "./json";
import { SCHEDULE_ATTEMPTS, SCHEDULE_RETRY_FIRST_MS, SCHEDULE_RETRY_MAX_MS } from "./protocol";
import type { RemoteMethod } from "./remote";
import type { ScheduleRow } from "./store";
import { INVALID, parseMembers, type Issue } from "./types";

/**
 * When a schedule runs: a `Date`, an RFC 3339 time with an offset
 * (`"2026-12-01T12:00:00Z"`, as datetime fields hold them), or seconds from now.
 */
export type When = Date | string | number;

/** How a model's failed schedules are tried again. */
export interface ScheduleRetry {
  /** Runs of a schedule before it is kept as failed. */
  attempts: number;
  /** Milliseconds before the first retry; each later one waits twice as long... */
  firstMs: number;
  /** ...up to this. */
  maxMs: number;
}

export const DEFAULT_SCHEDULE_RETRY: ScheduleRetry = {
  attempts: SCHEDULE_ATTEMPTS,
  firstMs: SCHEDULE_RETRY_FIRST_MS,
  maxMs: SCHEDULE_RETRY_MAX_MS,
};

/** Milliseconds before a schedule that failed `attempts` times runs again. */
export function retryDelay(retry: ScheduleRetry, attempts: number): number {
  return Math.min(retry.maxMs, retry.firstMs * 2 ** (attempts - 1));
}

/** When, in milliseconds since the epoch (rounded up), a schedule made now for `when` is due. */
export function dueOf(when: When, now = Date.now()): number {
  if (when instanceof Date) {
    const at = when.getTime();
    if (!Number.isFinite(at)) throw new TypeError("schedule() got an invalid Date");
    return at;
  }
  if (typeof when === "string") {
    if (!/(?:[zZ]|[+-]\d{2}:?\d{2})$/.test(when.trim())) {
      throw new TypeError(`schedule() needs a time with an offset (such as "Z"); ${JSON.stringify(when)} does not say which time it is`);
    }
    // Milliseconds, rounded up (a time kept to the millisecond is never before the one given).
    const text = when.trim();
    const fraction = /\.(\d+)/.exec(text);
    const finer = fraction !== null && /[1-9]/.test(fraction[1]!.slice(3));
    const at = Date.parse(fraction === null ? text : text.replace(fraction[0], `.${fraction[1]!.slice(0, 3).padEnd(3, "0")}`));
    if (!Number.isFinite(at)) throw new TypeError(`schedule() cannot read the time ${JSON.stringify(when)}`);
    return finer ? at + 1 : at;
  }
  if (typeof when !== "number" || !Number.isFinite(when) || Math.abs(when) > 1e11) {
    throw new TypeError(`schedule() takes a Date, a time or seconds, not ${String(when)}`);
  }
  return Math.ceil(now + when * 1000);
}

/**
 * The arguments of a schedule's call, given in the method's order, checked as
 * a call's are (`ValidationError` otherwise), and kept by parameter name as
 * given (canonical form, no defaults filled in), as a Python host keeps them.
 */
export function scheduledArguments(name: string, method: RemoteMethod, values: unknown[]): JsonObject {
  const order = Object.keys(method.args);
  if (values.length > order.length) {
    throw new CallError("validation_error", `${name}() takes ${order.length} argument(s) but ${values.length} were given`);
  }
  const given: JsonObject = {};
  values.forEach((value, index) => {
    if (value !== undefined) given[order[index]!] = value as JsonObject[string];
  });
  if (!isJson(given)) throw new CallError("validation_error", `the arguments of ${name}() must be JSON values`);
  const issues: Issue[] = [];
  const parsed = parseMembers(method.args, given, [], issues);
  if (parsed === INVALID || issues.length > 0) {
    const summary = issues.map((issue) => `${issue.loc.join(".")}: ${issue.msg}`).join("; ");
    throw new CallError("validation_error", `invalid arguments for ${name}(): ${summary}`, {
      errors: issues.map((issue) => ({ loc: issue.loc, msg: issue.msg, type: issue.type })),
    });
  }
  const kept: JsonObject = {};
  for (const key of order) if (hasOwn(given, key)) kept[key] = parsed[key]!;
  return kept;
}

/** A new schedule's id: 32 lowercase hexadecimal characters. */
export function scheduleId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** A stored schedule as `GET .../schedules` lists it. */
export function scheduleJson(row: ScheduleRow): JsonObject {
  return {
    id: row.id,
    when: new Date(row.at).toISOString(),
    method: row.method,
    args: JSON.parse(row.args) as JsonObject,
    attempts: row.attempts,
    status: row.status,
    error: row.error === null ? null : (JSON.parse(row.error) as JsonObject),
  };
}
