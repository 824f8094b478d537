/**
 * Typed models on Durable Objects, speaking the cloudflare-durable wire
 * protocol version 1. Models come from Python: `durable codegen typescript`
 * generates each model's state type, fields, method signatures, events and an
 * abstract base class, and the object implements the bodies:
 *
 * ```ts
 * export class Counter extends CounterBase {
 *   override increment(by: number): number {
 *     this.state.value += by;
 *     return this.state.value;
 *   }
 * }
 * ```
 */
export { DurableModel, DurableModelObject, type ModelClass, type Migration, type Migrations } from "./object";
export { DurableIndex, DEFAULT_INDEX_SHARDS } from "./listing";
export { DEFAULT_SCHEDULE_RETRY, type When, type ScheduleRetry } from "./schedules";
export { ModelBase } from "./model";
export { remote, RemoteMethod, NotImplementedError, type Awaitable, type Exactly } from "./remote";
export {
  t,
  INVALID,
  type Type,
  type Defaulted,
  type Spec,
  type Specs,
  type Infer,
  type Issue,
  type Location,
  type NumberConstraints,
  type StringConstraints,
  type LengthConstraints,
} from "./types";
export {
  RemoteException,
  ValueError,
  PermissionError,
  KeyError,
  Failure,
  CallError,
  CallTimeoutError,
  ReentrancyError,
  ERROR_CODES,
  EXCEPTION_NAMES,
  type ErrorCode,
} from "./errors";
export { type Objects, type ObjectHandle, type StateOperations, type Calls, type Loaded } from "./calls";
export { createRouter, DurableShutdown, type ModelBindings, type RouterOptions } from "./router";
export { ModelSpec, type MethodSpec, type ModelOptions } from "./schema";
export { DEFAULT_RETENTION, DEFAULT_LOG_BOUNDS, type Retention, type LogBounds } from "./store";
export { parseJson, type Json, type JsonObject } from "./json";
export { PROTOCOL_VERSION, PROTOCOL_HEADER, type Operation, type Change, type Reply } from "./protocol";
export { issueTicket, readTicket, type Ticket } from "./ticket";
