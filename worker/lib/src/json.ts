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

/** Where a value sits in a JSON document: member names and list indexes from the root. */
export type Location = (string | number)[];

/** The deepest nesting a body or frame may have; the outermost object is level 1. */
export const MAX_DEPTH = 64;
/** The largest integer magnitude the protocol carries (I-JSON, RFC 7493): 2^53 − 1. */
export const MAX_SAFE_DIGITS = "9007199254740991";

/** A JSON text the protocol refuses outright (`400 bad_request`). */
export class JsonError extends Error {
  override readonly name = "JsonError";
}

/** A parsed JSON text, with what `JSON.parse` cannot tell about its number literals. */
export interface ParsedJson {
  value: Json;
  /** Integer literals (no fraction, no exponent) outside ±(2^53 − 1), by location. */
  outOfRange: Location[];
  /** Members of the outermost object written with a fraction or exponent yet integral (`2.0`, `1e2`). */
  integralFloats: string[];
}

/** At most this many out-of-range integers are reported. */
const MAX_REPORTED = 100;

interface Level {
  array: boolean;
  index: number;
  /** The span of the current member's name (quotes included) in an object; -1 before the first. */
  keyStart: number;
  keyEnd: number;
}

/**
 * Parses a JSON text the way the protocol reads bodies and frames: nesting over
 * 64 levels, non-finite numbers (`1e400`) and strings holding an unpaired
 * surrogate are refused with `JsonError` before anything is built; integer
 * literals beyond ±(2^53 − 1), which `JSON.parse` would round, are reported with
 * their locations so that the caller can refuse them.
 */
export function parseJson(text: string): ParsedJson {
  const scanned = inspectJson(text);
  let value: unknown;
  try {
    value = JSON.parse(text, boxFloatLiterals); // keeps 2.0 apart from 2: see FloatLiteral
  } catch {
    throw new JsonError("not valid JSON");
  }
  return { value: value as Json, ...scanned };
}

/**
 * One pass over a JSON text without building it: refuses what `parseJson`
 * refuses and reports its number literals. Malformed JSON is left to `JSON.parse`.
 */
export function inspectJson(text: string): Omit<ParsedJson, "value"> {
  const stack: Level[] = [];
  const found: Omit<ParsedJson, "value"> = { outOfRange: [], integralFloats: [] };
  let expectKey = false;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = scanString(text, i);
      const top = stack[stack.length - 1];
      if (expectKey && top !== undefined && !top.array) [top.keyStart, top.keyEnd] = [i, end];
      i = end;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      i = scanNumber(text, i, stack, found);
    } else {
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (stack.length >= MAX_DEPTH) throw new JsonError(`nested deeper than ${MAX_DEPTH} levels`);
        stack.push({ array: c === 0x5b, index: 0, keyStart: -1, keyEnd: -1 });
        expectKey = c === 0x7b;
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        stack.pop();
        expectKey = false;
      } else if (c === 0x2c /* , */) {
        const top = stack[stack.length - 1];
        if (top?.array) top.index += 1;
        else expectKey = true;
      } else if (c === 0x3a /* : */) {
        expectKey = false;
      }
      i += 1;
    }
  }
  return found;
}

const isHigh = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;
const isLow = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff;

/** The code unit a `\uXXXX` escape at `at` stands for, or -1 if it is not one. */
function escapedUnit(text: string, at: number): number {
  if (text.charCodeAt(at) !== 0x5c || text.charCodeAt(at + 1) !== 0x75 /* u */) return -1;
  const hex = text.slice(at + 2, at + 6);
  return /^[0-9a-fA-F]{4}$/.test(hex) ? parseInt(hex, 16) : -1;
}

/** Skips the string starting at `start`; refuses unpaired surrogates, escaped or not. */
function scanString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c === 0x5c /* \ */) {
      const unit = escapedUnit(text, i);
      if (unit < 0) {
        i += 2;
      } else if (isHigh(unit)) {
        if (!isLow(escapedUnit(text, i + 6))) throw new JsonError("a string holds an unpaired surrogate");
        i += 12;
      } else if (isLow(unit)) {
        throw new JsonError("a string holds an unpaired surrogate");
      } else {
        i += 6;
      }
    } else if (isHigh(c)) {
      if (!isLow(text.charCodeAt(i + 1))) throw new JsonError("a string holds an unpaired surrogate");
      i += 2;
    } else if (isLow(c)) {
      throw new JsonError("a string holds an unpaired surrogate");
    } else {
      i += 1;
    }
  }
  return i;
}

/** Skips the number literal at `start`, noting integers out of range and refusing non-finite numbers. */
function scanNumber(text: string, start: number, stack: Level[], found: Omit<ParsedJson, "value">): number {
  let end = start + 1;
  while (end < text.length && isNumberUnit(text.charCodeAt(end))) end += 1;
  const literal = text.slice(start, end);
  if (/[.eE]/.test(literal)) {
    const value = Number(literal);
    if (value === Infinity || value === -Infinity) throw new JsonError("a number is too large to be finite");
    if (stack.length === 1 && Number.isInteger(value)) {
      const top = stack[0]!;
      if (!top.array) found.integralFloats.push(memberName(text, top));
    }
  } else if (isOutOfRange(literal) && found.outOfRange.length < MAX_REPORTED) {
    found.outOfRange.push(locationOf(text, stack));
  }
  return end;
}

/** Digits, signs, the decimal point and exponent marks. */
function isNumberUnit(unit: number): boolean {
  return (unit >= 0x30 && unit <= 0x39) || unit === 0x2b || unit === 0x2d || unit === 0x2e || unit === 0x45 || unit === 0x65;
}

function isOutOfRange(literal: string): boolean {
  const digits = literal.startsWith("-") ? literal.slice(1) : literal;
  if (digits.length !== MAX_SAFE_DIGITS.length) return digits.length > MAX_SAFE_DIGITS.length;
  return digits > MAX_SAFE_DIGITS;
}

function locationOf(text: string, stack: Level[]): Location {
  return stack.map((level) => (level.array ? level.index : memberName(text, level)));
}

/** The name of the member being read at `level` ("" if the text is too malformed to tell: it fails to parse anyway). */
function memberName(text: string, level: Level): string {
  if (level.keyStart < 0) return "";
  try {
    return String(JSON.parse(text.slice(level.keyStart, level.keyEnd)));
  } catch {
    return "";
  }
}

/**
 * Whether a JSON text the server produced is one a client could send back: no
 * integer beyond ±(2^53 − 1), no unpaired surrogate, nested at most 64 levels.
 */
export function carriable(json: string): boolean {
  try {
    return inspectJson(json).outOfRange.length === 0;
  } catch (error) {
    if (error instanceof JsonError) return false;
    throw error;
  }
}
