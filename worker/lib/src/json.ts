/** JSON values as they travel on the wire and sit in storage. */

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/**
 * A number written with a fraction or an exponent whose value is an integer
 * (`2.0`, `1e3`): `parseJson` boxes it, so validation can refuse it where an
 * integer is expected, as pydantic does, while `JSON.stringify` still writes it
 * as a number. Validation unboxes it.
 */
export type FloatLiteral = Number; // eslint-disable-line @typescript-eslint/no-wrapper-object-types

/** True for a number that `parseJson` boxed (see `FloatLiteral`). */
export function isFloatLiteral(value: unknown): value is FloatLiteral {
  return typeof value === "object" && value !== null && Object.prototype.toString.call(value) === "[object Number]";
}

/** `JSON.parse` that keeps whether an integral number was written as a float (`2.0`): see `FloatLiteral`. */
export function parseJson(text: string): unknown {
  return JSON.parse(text, boxFloatLiterals);
}

function boxFloatLiterals(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== "number" || !Number.isInteger(value) || context?.source === undefined) return value;
  return /[.eE]/.test(context.source) ? new Number(value) : value;
}

/** True for a plain JSON object (not an array, not null, not a boxed number). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !isFloatLiteral(value);
}

/** `Object.hasOwn`, typed as a guard for record lookups that must ignore the prototype. */
export function hasOwn<K extends string>(object: object, key: K): object is Record<K, unknown> {
  return Object.prototype.hasOwnProperty.call(object, key);
}

/** True when `value` is made only of JSON values (finite numbers, plain objects and arrays). */
export function isJson(value: unknown): value is Json {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object":
      if (value === null) return true;
      if (Array.isArray(value)) return value.every(isJson);
      return isPlainObject(value) && Object.values(value).every(isJson);
    default:
      return false;
  }
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
