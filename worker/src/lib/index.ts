/**
 * Typed models on Durable Objects, speaking the cloudflare-durable wire
 * protocol version 1. A TypeScript model mirrors a Python `DurableModel`:
 *
 * ```ts
 * export class Counter extends DurableModel("Counter", { value: t.int.default(0) }) {
 *   increment = remote({ by: t.int.default(1) }, t.int, ({ by }) => (this.state.value += by));
 * }
 * ```
 */
export { DurableModel, DurableModelObject, type ModelClass } from "./object";
export { remote, RemoteMethod } from "./remote";
export { t, type Type, type Defaulted, type Spec, type Specs, type Infer, type Issue } from "./types";
export { RemoteException, ValueError, PermissionError, KeyError, Failure, ERROR_CODES, type ErrorCode } from "./errors";
export { createRouter, DurableShutdown, type ModelBindings } from "./router";
export { ModelSpec } from "./schema";
export { DEFAULT_RETENTION, type Retention } from "./store";
export type { Json, JsonObject } from "./json";
export { PROTOCOL_VERSION, PROTOCOL_HEADER, type Operation, type Change, type Reply } from "./protocol";
