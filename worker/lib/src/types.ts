/**
 * Runtime types for fields, arguments, results and events: a small vocabulary
 * (`t.int`, `t.str.with({ maxLength: 10 })`, `t.list(t.str)`, ...) whose static
 * types are inferred, and whose checks follow pydantic's strict mode on JSON
 * input with unknown members forbidden at every level: the same values are
 * accepted and refused, with the same error type names, as on the Python hosts.
 *
 * Code generated from a Python model (`durable codegen typescript`) is written
 * in this vocabulary; it can also be written by hand.
 */
import { hasOwn, isFloatLiteral, isJsonObject, type Json, type JsonObject } from "./json";
import { parseDate, parseDateTime, parseUuid } from "./temporal";

/** Where an issue was found: field or argument names and list indexes. */
export type Location = (string | number)[];

/** One validation problem, sent to clients in `details.errors` (pydantic's shape and type names). */
export interface Issue {
  loc: Location;
  msg: string;
  type: string;
}

/** Returned by `parse` for a value that does not validate (its issues were appended). */
export const INVALID: unique symbol = Symbol("invalid");
export type Invalid = typeof INVALID;

/**
 * How closely a value matched a type, as pydantic's smart unions weigh it: a
 * union takes the first member that matches exactly, else the one that set the
 * most fields, else the first that matched at all.
 */
export interface Match {
  exact: boolean;
  fieldsSet: number;
}

/** A runtime check for values of type `T`. */
export interface Type<T extends Json> {
  /** A short name for messages, e.g. `int` or `list[str]`. */
  readonly label: string;
  /**
   * The value in canonical form (defaults filled in, numbers unboxed, datetimes
   * and UUIDs as pydantic writes them), or `INVALID` after an issue was appended
   * for every place where `value` is not a `T`.
   */
  parse(value: unknown, loc: Location, issues: Issue[], match?: Match): T | Invalid;
  /** Appends an issue for every place where `value` is not a `T`. */
  check(value: unknown, loc: Location, issues: Issue[]): void;
  /** The same type with a default value: the argument or field becomes optional. */
  default(value: T): Defaulted<T>;
}

/** A type with a default value. The default is deep-copied on each use. */
export interface Defaulted<T extends Json> {
  readonly type: Type<T>;
  readonly value: T;
}

/** A field or argument declaration: a type (required) or a defaulted type (optional). */
export type Spec<T extends Json = Json> = Type<T> | Defaulted<T>;
export type Specs = Record<string, Spec>;

/** The value type a spec declares. */
export type ValueOf<S> = S extends Spec<infer T> ? T : never;

/** The object type a set of specs declares (all members present). */
export type Infer<S extends Specs> = { -readonly [K in keyof S]: ValueOf<S[K]> };

/** The issues found when checking `value` against `type`. */
export function validate(type: Type<Json>, value: unknown, loc: Location = []): Issue[] {
  const issues: Issue[] = [];
  type.check(value, loc, issues);
  return issues;
}

export function isDefaulted(spec: Spec): spec is Defaulted<Json> {
  return !("parse" in spec);
}

export function typeOf(spec: Spec): Type<Json> {
  return isDefaulted(spec) ? spec.type : spec;
}

/** A fresh copy of a spec's default, or `undefined` when it has none. */
export function defaultOf(spec: Spec): Json | undefined {
  return isDefaulted(spec) ? structuredClone(spec.value) : undefined;
}

// --- the base -----------------------------------------------------------------

/** Base of every type: subclasses implement `parseValue`. */
abstract class BaseType<T extends Json> implements Type<T> {
  abstract readonly label: string;
  abstract parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): T | Invalid;

  parse(value: unknown, loc: Location, issues: Issue[], match: Match = { exact: true, fieldsSet: 0 }): T | Invalid {
    return this.parseValue(value, loc, issues, match);
  }

  check(value: unknown, loc: Location, issues: Issue[]): void {
    this.parse(value, loc, issues);
  }

  default(value: T): Defaulted<T> {
    const issues: Issue[] = [];
    const parsed = this.parse(structuredClone(value), [], issues);
    if (parsed === INVALID) throw new TypeError(`default ${JSON.stringify(value)} is not a ${this.label}: ${issues[0]?.msg}`);
    return { type: this, value: parsed };
  }
}

function fail(issues: Issue[], loc: Location, type: string, msg: string): Invalid {
  issues.push({ loc, msg, type });
  return INVALID;
}

/** The number a JSON value holds: a primitive, or a boxed float literal such as `2.0` (see `parseJson`). */
function numberOf(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (isFloatLiteral(value)) return value.valueOf();
  return undefined;
}

/** Python's repr of a JSON scalar, for messages. */
function repr(value: Json): string {
  if (typeof value === "string") return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  if (value === null) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  return JSON.stringify(value);
}

/** `'a', 'b' or 'c'`, as pydantic lists expected values. */
function orList(values: readonly Json[]): string {
  const shown = values.map(repr);
  return shown.length <= 1 ? (shown[0] ?? "") : `${shown.slice(0, -1).join(", ")} or ${shown[shown.length - 1]}`;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// --- numbers ------------------------------------------------------------------

/** Bounds of a number, in pydantic's names (`multipleOf` is `multiple_of`). */
export interface NumberConstraints {
  ge?: number;
  gt?: number;
  le?: number;
  lt?: number;
  multipleOf?: number;
}

/** pydantic checks a number's constraints in this order and reports the first that fails. */
function checkNumber(value: number, c: NumberConstraints, isInt: boolean, loc: Location, issues: Issue[]): boolean {
  const m = c.multipleOf;
  if (m !== undefined && !isMultiple(value, m, isInt)) {
    return !fail(issues, loc, "multiple_of", `Input should be a multiple of ${m}`);
  }
  if (c.le !== undefined && !(value <= c.le)) return !fail(issues, loc, "less_than_equal", `Input should be less than or equal to ${c.le}`);
  if (c.lt !== undefined && !(value < c.lt)) return !fail(issues, loc, "less_than", `Input should be less than ${c.lt}`);
  if (c.ge !== undefined && !(value >= c.ge)) return !fail(issues, loc, "greater_than_equal", `Input should be greater than or equal to ${c.ge}`);
  if (c.gt !== undefined && !(value > c.gt)) return !fail(issues, loc, "greater_than", `Input should be greater than ${c.gt}`);
  return true;
}

function isMultiple(value: number, of: number, isInt: boolean): boolean {
  if (isInt) return value % of === 0;
  // pydantic's test for floats: within 1e-9 of the nearest multiple (halves rounded away from 0).
  const quotient = value / of;
  const nearest = Math.sign(quotient) * Math.round(Math.abs(quotient));
  return !(Math.abs(value - nearest * of) > 1e-9);
}

class IntType extends BaseType<number> {
  readonly label = "int";
  constructor(readonly constraints: NumberConstraints = {}) {
    super();
  }

  /** The same type with bounds: `t.int.with({ ge: 0 })`. */
  with(constraints: NumberConstraints): IntType {
    return new IntType({ ...this.constraints, ...constraints });
  }

  parseValue(value: unknown, loc: Location, issues: Issue[]): number | Invalid {
    if (typeof value !== "number" || !Number.isInteger(value)) return fail(issues, loc, "int_type", "Input should be a valid integer");
    if (!Number.isSafeInteger(value)) {
      return fail(issues, loc, "int_out_of_range", "Input should be an integer between -(2^53-1) and 2^53-1");
    }
    if (!checkNumber(value, this.constraints, true, loc, issues)) return INVALID;
    return value === 0 ? 0 : value;
  }
}

class FloatType extends BaseType<number> {
  readonly label = "float";
  constructor(readonly constraints: NumberConstraints = {}) {
    super();
  }

  /** The same type with bounds: `t.float.with({ gt: 0 })`. */
  with(constraints: NumberConstraints): FloatType {
    return new FloatType({ ...this.constraints, ...constraints });
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): number | Invalid {
    const number = numberOf(value);
    if (number === undefined || !Number.isFinite(number)) return fail(issues, loc, "float_type", "Input should be a valid number");
    if (typeof value === "number") match.exact = false; // an integer taken as a float
    if (!checkNumber(number, this.constraints, false, loc, issues)) return INVALID;
    return number;
  }
}

// --- strings, booleans, None, anything -----------------------------------------

/** Constraints of a string, in pydantic's names. `pattern` is searched, not anchored. */
export interface StringConstraints {
  minLength?: number;
  maxLength?: number;
  pattern?: string;
}

class StrType extends BaseType<string> {
  readonly label = "str";
  readonly #pattern: RegExp | null;
  constructor(readonly constraints: StringConstraints = {}) {
    super();
    this.#pattern = constraints.pattern === undefined ? null : new RegExp(rustDigits(constraints.pattern), "u");
  }

  /** The same type with constraints: `t.str.with({ maxLength: 100 })`. */
  with(constraints: StringConstraints): StrType {
    return new StrType({ ...this.constraints, ...constraints });
  }

  parseValue(value: unknown, loc: Location, issues: Issue[]): string | Invalid {
    if (typeof value !== "string") return fail(issues, loc, "string_type", "Input should be a valid string");
    const { minLength, maxLength, pattern } = this.constraints;
    if (minLength !== undefined || maxLength !== undefined) {
      const length = codePoints(value);
      if (minLength !== undefined && length < minLength) {
        return fail(issues, loc, "string_too_short", `String should have at least ${plural(minLength, "character")}`);
      }
      if (maxLength !== undefined && length > maxLength) {
        return fail(issues, loc, "string_too_long", `String should have at most ${plural(maxLength, "character")}`);
      }
    }
    if (this.#pattern !== null && !this.#pattern.test(value)) {
      return fail(issues, loc, "string_pattern_mismatch", `String should match pattern '${pattern}'`);
    }
    return value;
  }
}

/**
 * pydantic searches patterns with Rust's regex crate, where `\d` is any Unicode
 * decimal digit; JavaScript's `\d` is ASCII only, so it becomes `\p{Nd}`.
 */
function rustDigits(pattern: string): string {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c !== "\\" || i + 1 === pattern.length) {
      out += c;
      continue;
    }
    const next = pattern[++i]!;
    out += next === "d" ? "\\p{Nd}" : next === "D" ? "\\P{Nd}" : c + next;
  }
  return out;
}

/** Length in code points, as Python counts a `str`. */
function codePoints(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

function simple<T extends Json>(label: string, accepts: (value: unknown) => boolean, type: string, msg: string): Type<T> {
  class Simple extends BaseType<T> {
    readonly label = label;
    parseValue(value: unknown, loc: Location, issues: Issue[]): T | Invalid {
      return accepts(value) ? (value as T) : fail(issues, loc, type, msg);
    }
  }
  return new Simple();
}

class AnyType extends BaseType<Json> {
  readonly label = "Any";
  parseValue(value: unknown, loc: Location, issues: Issue[]): Json | Invalid {
    const plain = plainJson(value);
    return plain === undefined ? fail(issues, loc, "any_type", "Input should be a JSON value") : plain;
  }
}

/** A JSON value with its boxed float literals unboxed; `undefined` if it is not JSON. */
function plainJson(value: unknown): Json | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : undefined;
    case "object": {
      if (value === null) return null;
      if (isFloatLiteral(value)) return value.valueOf();
      if (Array.isArray(value)) {
        const out: Json[] = [];
        for (const item of value) {
          const plain = plainJson(item);
          if (plain === undefined) return undefined;
          out.push(plain);
        }
        return out;
      }
      if (!isJsonObject(value)) return undefined;
      const out: JsonObject = {};
      for (const [key, item] of Object.entries(value)) {
        const plain = plainJson(item);
        if (plain === undefined) return undefined;
        out[key] = plain;
      }
      return out;
    }
    default:
      return undefined;
  }
}

// --- datetimes, dates, UUIDs -----------------------------------------------------

class DateTimeType extends BaseType<string> {
  readonly label = "datetime";
  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): string | Invalid {
    if (typeof value !== "string") return fail(issues, loc, "datetime_type", "Input should be a valid datetime");
    const parsed = parseDateTime(value);
    if (typeof parsed !== "string") return fail(issues, loc, "datetime_parsing", `Input should be a valid datetime, ${parsed.error}`);
    match.exact = false;
    return parsed;
  }
}

class DateType extends BaseType<string> {
  readonly label = "date";
  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): string | Invalid {
    if (typeof value !== "string") return fail(issues, loc, "date_type", "Input should be a valid date");
    const parsed = parseDate(value);
    if (typeof parsed !== "string") {
      return fail(issues, loc, "date_parsing", `Input should be a valid date in the format YYYY-MM-DD, ${parsed.error}`);
    }
    match.exact = false;
    return parsed;
  }
}

class UuidType extends BaseType<string> {
  readonly label: string;
  constructor(readonly version: number | null = null) {
    super();
    this.label = version === null ? "uuid" : `uuid${version}`;
  }

  /** A UUID of one version: `t.uuid.with({ version: 4 })`. */
  with(constraints: { version: number }): UuidType {
    return new UuidType(constraints.version);
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): string | Invalid {
    if (typeof value !== "string") return fail(issues, loc, "uuid_type", "UUID input should be a string, bytes or UUID object");
    const parsed = parseUuid(value);
    if (typeof parsed !== "string") return fail(issues, loc, "uuid_parsing", `Input should be a valid UUID, ${parsed.error}`);
    if (this.version !== null && parseInt(parsed[14]!, 16) !== this.version) {
      return fail(issues, loc, "uuid_version", `UUID version ${this.version} expected`);
    }
    match.exact = false;
    return parsed;
  }
}

// --- containers -----------------------------------------------------------------

/** Bounds of a list's or a dict's number of items. */
export interface LengthConstraints {
  minLength?: number;
  maxLength?: number;
}

function checkLength(kind: "List" | "Dictionary", length: number, c: LengthConstraints, loc: Location, issues: Issue[]): boolean {
  if (c.minLength !== undefined && length < c.minLength) {
    const msg = `${kind} should have at least ${plural(c.minLength, "item")} after validation, not ${length}`;
    return !fail(issues, loc, "too_short", msg);
  }
  if (c.maxLength !== undefined && length > c.maxLength) {
    const msg = `${kind} should have at most ${plural(c.maxLength, "item")} after validation, not ${length}`;
    return !fail(issues, loc, "too_long", msg);
  }
  return true;
}

class ListType<T extends Json> extends BaseType<T[]> {
  readonly label: string;
  constructor(
    readonly item: Type<T>,
    readonly constraints: LengthConstraints = {},
  ) {
    super();
    this.label = `list[${item.label}]`;
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): T[] | Invalid {
    if (!Array.isArray(value)) return fail(issues, loc, "list_type", "Input should be a valid array");
    const { maxLength } = this.constraints;
    if (maxLength !== undefined && value.length > maxLength) {
      return fail(issues, loc, "too_long", `List should have at most ${plural(maxLength, "item")} after validation, not ${value.length}`);
    }
    const out: T[] = [];
    let valid = true;
    value.forEach((entry, index) => {
      const parsed = this.item.parse(entry, [...loc, index], issues, match);
      if (parsed === INVALID) valid = false;
      else out.push(parsed);
    });
    if (!valid) return INVALID;
    return checkLength("List", out.length, this.constraints, loc, issues) ? out : INVALID;
  }
}

class DictType<T extends Json> extends BaseType<Record<string, T>> {
  readonly label: string;
  constructor(
    readonly item: Type<T>,
    readonly constraints: LengthConstraints = {},
  ) {
    super();
    this.label = `dict[str, ${item.label}]`;
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): Record<string, T> | Invalid {
    if (!isJsonObject(value)) return fail(issues, loc, "dict_type", "Input should be an object");
    const { maxLength } = this.constraints;
    const out: Record<string, T> = {};
    const found: Issue[] = [];
    let count = 0;
    for (const [key, entry] of Object.entries(value)) {
      const parsed = this.item.parse(entry, [...loc, key], found, match);
      if (parsed === INVALID) continue;
      out[key] = parsed;
      // As pydantic: too many valid items ends the check at once, with that issue alone.
      if (maxLength !== undefined && ++count > maxLength) {
        return fail(issues, loc, "too_long", `Dictionary should have at most ${plural(maxLength, "item")} after validation, not more`);
      }
    }
    if (found.length > 0) {
      issues.push(...found);
      return INVALID;
    }
    return checkLength("Dictionary", Object.keys(out).length, this.constraints, loc, issues) ? out : INVALID;
  }
}

/** The object type of a set of member specs (defaulted members are present too). */
export type ObjectOf<M extends Specs> = { -readonly [K in keyof M]: ValueOf<M[K]> };

/** A nested model: a JSON object with exactly these members (those with defaults may be left out). */
class ObjectType<M extends Specs> extends BaseType<ObjectOf<M> & JsonObject> {
  constructor(
    readonly members: M,
    readonly label: string,
  ) {
    super();
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): (ObjectOf<M> & JsonObject) | Invalid {
    if (!isJsonObject(value)) return fail(issues, loc, "model_type", "Input should be an object");
    const inner: Match = { exact: true, fieldsSet: 0 };
    const out = parseMembers(this.members, value, loc, issues, false, inner);
    match.exact = false;
    match.fieldsSet += inner.fieldsSet;
    return out === INVALID ? INVALID : (out as ObjectOf<M> & JsonObject);
  }
}

/**
 * Checks `given` against `specs` as pydantic checks a model's fields: each
 * member in declaration order (given, defaulted, or `missing`), then every
 * unknown member (`extra_forbidden`). With `partial`, absent members are left
 * out instead. Returns the members in declaration order.
 */
export function parseMembers(
  specs: Specs,
  given: JsonObject,
  loc: Location,
  issues: Issue[],
  partial = false,
  match: Match = { exact: true, fieldsSet: 0 },
): JsonObject | Invalid {
  const out: JsonObject = {};
  let valid = true;
  for (const [name, spec] of Object.entries(specs)) {
    if (hasOwn(given, name)) {
      const parsed = typeOf(spec).parse(given[name], [...loc, name], issues, match);
      if (parsed === INVALID) valid = false;
      else out[name] = parsed;
      match.fieldsSet++;
    } else if (isDefaulted(spec)) {
      if (!partial) out[name] = structuredClone(spec.value);
    } else if (!partial) {
      valid = fail(issues, [...loc, name], "missing", "Field required") !== INVALID;
    }
  }
  for (const name of Object.keys(given)) {
    if (!hasOwn(specs, name)) valid = fail(issues, [...loc, name], "extra_forbidden", "Extra inputs are not permitted") !== INVALID;
  }
  return valid ? out : INVALID;
}

// --- choices ----------------------------------------------------------------------

type Scalar = string | number | boolean | null;

/**
 * One of a fixed set of values (`Literal[...]`, or an `Enum`'s values with
 * `errorType` "enum"). As in pydantic, numbers and booleans match by value
 * (`1`, `1.0` and `true` all match `1`) and the declared value is kept.
 */
class ChoiceType<T extends Scalar> extends BaseType<T> {
  constructor(
    readonly values: readonly T[],
    readonly label: string,
    readonly errorType: "literal_error" | "enum",
  ) {
    super();
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): T | Invalid {
    for (const expected of this.values) {
      if (expected === value) return expected;
    }
    const number = typeof value === "boolean" ? Number(value) : numberOf(value);
    if (number !== undefined) {
      for (const expected of this.values) {
        const candidate = typeof expected === "boolean" ? Number(expected) : expected;
        if (typeof candidate === "number" && candidate === number) {
          match.exact = false;
          return expected;
        }
      }
    }
    return fail(issues, loc, this.errorType, `Input should be ${orList(this.values)}`);
  }
}

class NullableType<T extends Json> extends BaseType<T | null> {
  readonly label: string;
  constructor(readonly inner: Type<T>) {
    super();
    this.label = `${inner.label} | None`;
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): T | null | Invalid {
    return value === null ? null : this.inner.parse(value, loc, issues, match);
  }
}

/**
 * One of several types, chosen as pydantic's smart unions choose: the first
 * exact match, else the match that set the most fields, else the first. When
 * none matches, the issues of every member are reported, each under the
 * member's tag (pydantic's loc item for union members).
 */
class UnionType<T extends Json> extends BaseType<T> {
  readonly label: string;
  constructor(
    readonly members: readonly Type<T>[],
    readonly tags: readonly string[],
  ) {
    super();
    this.label = members.map((member) => member.label).join(" | ");
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): T | Invalid {
    const failures: Issue[] = [];
    let best: { value: T; match: Match } | null = null;
    for (const [index, member] of this.members.entries()) {
      const memberMatch: Match = { exact: true, fieldsSet: 0 };
      const memberIssues: Issue[] = [];
      const parsed = member.parse(value, [...loc, this.tags[index] ?? member.label], memberIssues, memberMatch);
      if (parsed === INVALID) {
        failures.push(...memberIssues);
        continue;
      }
      if (memberMatch.exact) {
        match.fieldsSet += memberMatch.fieldsSet;
        return parsed;
      }
      if (best === null || memberMatch.fieldsSet > best.match.fieldsSet) best = { value: parsed, match: memberMatch };
    }
    if (best !== null) {
      match.exact = false;
      match.fieldsSet += best.match.fieldsSet;
      return best.value;
    }
    issues.push(...failures);
    return INVALID;
  }
}

/**
 * A union of models told apart by one member (pydantic's discriminated union,
 * `Field(discriminator=...)`): the value of `property` picks the model.
 */
class TaggedUnionType<T extends JsonObject> extends BaseType<T> {
  readonly label: string;
  constructor(
    readonly property: string,
    readonly choices: Readonly<Record<string, Type<T>>>,
  ) {
    super();
    this.label = Object.values(choices)
      .map((choice) => choice.label)
      .join(" | ");
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): T | Invalid {
    if (!isJsonObject(value)) return fail(issues, loc, "dict_type", "Input should be an object");
    const tags = Object.keys(this.choices);
    const expected = tags.map((tag) => `'${tag}'`).join(", ");
    if (!hasOwn(value, this.property)) {
      return fail(issues, loc, "union_tag_not_found", `Unable to extract tag using discriminator '${this.property}'`);
    }
    const tag = value[this.property];
    const choice = typeof tag === "string" && hasOwn(this.choices, tag) ? this.choices[tag] : undefined;
    if (choice === undefined) {
      const shown = `'${typeof tag === "string" ? tag : repr(plainJson(tag) ?? null)}'`;
      return fail(issues, loc, "union_tag_invalid", `Input tag ${shown} found using '${this.property}' does not match any of the expected tags: ${expected}`);
    }
    return choice.parse(value, [...loc, tag as string], issues, match);
  }
}

/** A type defined later (a recursive model): `t.lazy("Node", () => Node)`. */
class LazyType<T extends Json> extends BaseType<T> {
  #resolved: Type<T> | null = null;
  constructor(
    readonly label: string,
    readonly resolve: () => Type<T>,
  ) {
    super();
  }

  parseValue(value: unknown, loc: Location, issues: Issue[], match: Match): T | Invalid {
    this.#resolved ??= this.resolve();
    return this.#resolved.parse(value, loc, issues, match);
  }
}

// --- the vocabulary -----------------------------------------------------------------

type Members<T extends readonly Type<Json>[]> = T[number] extends Type<infer V> ? V : never;
type Choices<C extends Record<string, Type<JsonObject>>> = C[keyof C] extends Type<infer V> ? V & JsonObject : never;

/** The type vocabulary. */
export const t = {
  /** An integer: a JSON number without fraction or exponent (`2.0`, `"2"` and `true` are refused). */
  int: new IntType(),
  /** A number (an integer is accepted). */
  float: new FloatType(),
  str: new StrType(),
  /** `true` or `false` (`0`, `1` and strings are refused). */
  bool: simple<boolean>("bool", (v) => typeof v === "boolean", "bool_type", "Input should be a valid boolean"),
  /** Only `null` (Python's `None`). */
  none: simple<null>("None", (v) => v === null, "none_required", "Input should be None"),
  /** Any JSON value (Python's `Any`). */
  json: new AnyType() as Type<Json>,
  /** A datetime as RFC 3339 text; stored as pydantic writes it (`2020-01-01T00:00:00Z`). */
  datetime: new DateTimeType(),
  /** A date as `YYYY-MM-DD`. */
  date: new DateType(),
  /** A UUID as text; stored lowercase with hyphens. */
  uuid: new UuidType(),
  list<T extends Json>(item: Type<T>, constraints?: LengthConstraints): Type<T[]> {
    return new ListType(item, constraints);
  },
  /** A JSON object with string keys and values of one type. */
  dict<T extends Json>(item: Type<T>, constraints?: LengthConstraints): Type<Record<string, T>> {
    return new DictType(item, constraints);
  },
  /** A nested model: exactly these members; members with a default may be left out. */
  object<M extends Specs>(members: M, name = "object"): Type<ObjectOf<M> & JsonObject> {
    return new ObjectType(members, name);
  },
  nullable<T extends Json>(inner: Type<T>): Type<T | null> {
    return new NullableType(inner);
  },
  /** One of the given values (Python's `Literal[...]`). */
  literal<const T extends readonly Scalar[]>(...values: T): Type<T[number]> {
    return new ChoiceType<T[number]>(values, `Literal[${values.map(repr).join(", ")}]`, "literal_error");
  },
  /** One of an `Enum`'s values. */
  enum<const T extends readonly Scalar[]>(name: string, values: T): Type<T[number]> {
    return new ChoiceType<T[number]>(values, name, "enum");
  },
  /** One of several types; `tags` name each member in error locations (pydantic's labels). */
  union<const T extends readonly Type<Json>[]>(members: T, tags: readonly string[] = []): Type<Members<T>> {
    return new UnionType(members as unknown as readonly Type<Members<T>>[], tags);
  },
  /** Models told apart by the value of `property`. */
  tagged<const C extends Record<string, Type<JsonObject>>>(property: string, choices: C): Type<Choices<C>> {
    return new TaggedUnionType(property, choices as unknown as Record<string, Type<Choices<C>>>);
  },
  lazy<T extends Json>(label: string, resolve: () => Type<T>): Type<T> {
    return new LazyType(label, resolve);
  },
};
