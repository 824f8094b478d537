/**
 * Runtime type checks for fields, arguments and results: a small vocabulary
 * (`t.int`, `t.str`, `t.list(t.str)`, ...) whose static types are inferred, so
 * a model's fields and a method's arguments are declared once.
 */
import { hasOwn, isJson, isJsonObject, type Json, type JsonObject } from "./json";

/** Where an issue was found: field or argument names and list indexes. */
export type Location = (string | number)[];

/** One validation problem, sent to clients in `details.errors`. */
export interface Issue {
  loc: Location;
  msg: string;
  type: string;
}

/** A runtime check for values of type `T`. */
export interface Type<T extends Json> {
  /** A short name for messages, e.g. `int` or `list[str]`. */
  readonly label: string;
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
  return !hasOwn(spec, "check");
}

export function typeOf(spec: Spec): Type<Json> {
  return isDefaulted(spec) ? spec.type : spec;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "list";
  switch (typeof value) {
    case "number":
      return Number.isInteger(value) ? "int" : "float";
    case "string":
      return "str";
    case "boolean":
      return "bool";
    case "object":
      return "object";
    default:
      return typeof value;
  }
}

function makeType<T extends Json>(
  label: string,
  check: (value: unknown, loc: Location, issues: Issue[]) => void,
): Type<T> {
  const type: Type<T> = {
    label,
    check,
    default: (value: T): Defaulted<T> => {
      const issues = validate(type as Type<Json>, value);
      if (issues.length > 0) throw new TypeError(`default ${JSON.stringify(value)} is not a ${label}`);
      return { type, value };
    },
  };
  return type;
}

function scalar<T extends Json>(label: string, accepts: (value: unknown) => boolean): Type<T> {
  return makeType<T>(label, (value, loc, issues) => {
    if (!accepts(value)) {
      issues.push({ loc, msg: `expected ${label}, got ${describe(value)}`, type: `${label}_type` });
    }
  });
}

function list<T extends Json>(item: Type<T>): Type<T[]> {
  return makeType<T[]>(`list[${item.label}]`, (value, loc, issues) => {
    if (!Array.isArray(value)) {
      issues.push({ loc, msg: `expected list, got ${describe(value)}`, type: "list_type" });
      return;
    }
    value.forEach((entry, index) => item.check(entry, [...loc, index], issues));
  });
}

function dict<T extends Json>(item: Type<T>): Type<Record<string, T>> {
  return makeType<Record<string, T>>(`dict[str, ${item.label}]`, (value, loc, issues) => {
    if (!isJsonObject(value)) {
      issues.push({ loc, msg: `expected dict, got ${describe(value)}`, type: "dict_type" });
      return;
    }
    for (const [key, entry] of Object.entries(value)) item.check(entry, [...loc, key], issues);
  });
}

type TypeMap = Record<string, Type<Json>>;
type ObjectOf<M extends TypeMap> = { [K in keyof M]: M[K] extends Type<infer T> ? T : never };

/** A JSON object with exactly these members, each required (like a nested pydantic model). */
function object<M extends TypeMap>(members: M, label = "object"): Type<ObjectOf<M>> {
  return makeType<ObjectOf<M> & JsonObject>(label, (value, loc, issues) => {
    if (!isJsonObject(value)) {
      issues.push({ loc, msg: `expected ${label}, got ${describe(value)}`, type: "model_type" });
      return;
    }
    checkObjectMembers(members, value, loc, issues);
  }) as Type<ObjectOf<M>>;
}

function checkObjectMembers(members: TypeMap, value: JsonObject, loc: Location, issues: Issue[]): void {
  for (const [key, type] of Object.entries(members)) {
    if (hasOwn(value, key)) type.check(value[key], [...loc, key], issues);
    else issues.push({ loc: [...loc, key], msg: "field required", type: "missing" });
  }
  for (const key of Object.keys(value)) {
    if (!hasOwn(members, key)) {
      issues.push({ loc: [...loc, key], msg: "extra field not permitted", type: "extra_forbidden" });
    }
  }
}

function nullable<T extends Json>(inner: Type<T>): Type<T | null> {
  return makeType<T | null>(`${inner.label} | None`, (value, loc, issues) => {
    if (value !== null) inner.check(value, loc, issues);
  });
}

function literal<const T extends readonly (string | number | boolean)[]>(...values: T): Type<T[number]> {
  const label = `Literal[${values.map((v) => JSON.stringify(v)).join(", ")}]`;
  return makeType<T[number]>(label, (value, loc, issues) => {
    if (!values.includes(value as T[number])) {
      issues.push({ loc, msg: `expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}`, type: "literal_error" });
    }
  });
}

/** The type vocabulary. */
export const t = {
  /** An integer (a JSON number without a fraction; booleans are rejected). */
  int: scalar<number>("int", (v) => typeof v === "number" && Number.isSafeInteger(v)),
  /** Any finite number. */
  float: scalar<number>("float", (v) => typeof v === "number" && Number.isFinite(v)),
  str: scalar<string>("str", (v) => typeof v === "string"),
  bool: scalar<boolean>("bool", (v) => typeof v === "boolean"),
  /** Any JSON value. */
  json: scalar<Json>("Any", isJson),
  list,
  dict,
  object,
  nullable,
  literal,
};
