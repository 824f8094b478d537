/** Remote methods: what a model exposes to clients, with its argument and result types. */
import { RemoteException } from "./errors";
import type { Json } from "./json";
import type { Infer, Specs, Type } from "./types";

/** A method callable over the wire: argument specs, an optional result type, and its body. */
export class RemoteMethod<A = unknown, R = unknown> {
  constructor(
    readonly args: Specs,
    readonly returns: Type<Json> | null,
    readonly body: (args: A) => R | Promise<R>,
  ) {}
}

/**
 * Declares a remote method. Use it as a class field of a model, so the body
 * sees the object as `this`:
 *
 * ```ts
 * increment = remote({ by: t.int.default(1) }, t.int, ({ by }) => {
 *   this.state.value += by;
 *   return this.state.value;
 * });
 * ```
 *
 * Arguments are checked against `args` before the body runs (unknown names,
 * missing required ones and wrong types are `validation_error`); a declared
 * result type is checked after it (`invalid_result`).
 */
export function remote<S extends Specs, R>(args: S, body: (args: Infer<S>) => R | Promise<R>): RemoteMethod<Infer<S>, R>;
export function remote<S extends Specs, R extends Json>(
  args: S,
  returns: Type<R>,
  body: (args: Infer<S>) => R | Promise<R>,
): RemoteMethod<Infer<S>, R>;
export function remote<S extends Specs, R>(
  args: S,
  returnsOrBody: Type<Json> | ((args: Infer<S>) => R | Promise<R>),
  body?: (args: Infer<S>) => R | Promise<R>,
): RemoteMethod<Infer<S>, R> {
  if (typeof returnsOrBody === "function") return new RemoteMethod(args, null, returnsOrBody);
  if (body === undefined) throw new TypeError("remote(args, returns, body) needs a body");
  return new RemoteMethod(args, returnsOrBody, body);
}

/** A value, or a promise of it: what a remote method may return. */
export type Awaitable<T> = T | Promise<T>;

type Same<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;

/**
 * `Self[K]` when it is a method taking exactly the parameters `P`, otherwise
 * the text `Declared`: generated code uses it so that `tsc` names a method
 * whose parameters no longer match the Python model (one gained, lost or
 * retyped), which an abstract method alone would not catch.
 */
export type Exactly<Self, K extends string, P extends readonly unknown[], Declared extends string> = K extends keyof Self
  ? Self[K] extends (...args: infer A) => unknown
    ? Same<A, P> extends true
      ? Self[K]
      : Declared
    : Declared
  : Declared;

/** A remote method without a body yet (Python's `NotImplementedError`): what generated stubs throw. */
export class NotImplementedError extends RemoteException {
  override name = "NotImplementedError";
}
