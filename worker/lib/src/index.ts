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
export { DurableModel, DurableModelObject, type ModelClass } from "./object";
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
export { RemoteException, ValueError, PermissionError, KeyError, Failure, ERROR_CODES, type ErrorCode } from "./errors";
export { createRouter, DurableShutdown, type ModelBindings } from "./router";
export { ModelSpec, type MethodSpec, type ModelOptions } from "./schema";
export { DEFAULT_RETENTION, type Retention } from "./store";
export { parseJson, type Json, type JsonObject } from "./json";
export { PROTOCOL_VERSION, PROTOCOL_HEADER, type Operation, type Change, type Reply } from "./protocol";
export { issueTicket, readTicket, type Ticket } from "./ticket";
