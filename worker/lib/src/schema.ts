/**
 * A model's declaration: its name, fields, remote methods and events, and the
 * checks of states, partial updates, method arguments and events against it.
 * Checks bring values into canonical form as they go (defaults filled in,
 * datetimes and UUIDs as pydantic writes them), so what the Worker stores is
 * what a Python host would have stored.
 */
import { describeThrown, Failure } from "./errors";
import { hasOwn, isJson, isJsonObject, type Json, type JsonObject } from "./json";
import { MODEL_NAME } from "./protocol";
import { RemoteMethod } from "./remote";
import { INVALID, isDefaulted, parseMembers, typeOf, type Invalid, type Issue, type Specs, type Type } from "./types";

/** Throws `validation_error` listing `issues`, if there are any. */
export function raiseIssues(issues: Issue[], what: string): void {
  if (issues.length === 0) return;
  const summary = issues.map((issue) => `${issue.loc.join(".") || what}: ${issue.msg}`).join("; ");
  throw new Failure("validation_error", `invalid ${what}: ${summary}`, {
    errors: issues.map((issue) => ({ loc: issue.loc, msg: issue.msg, type: issue.type })),
  });
}

/** Checks `given` against `specs`: known names only, right types, every required one present. */
export function checkMembers(specs: Specs, given: JsonObject, partial: boolean): Issue[] {
  const issues: Issue[] = [];
  parseMembers(specs, given, [], issues, partial);
  return issues;
}

/** `given` with every missing defaulted member set to a copy of its default. */
export function withDefaults(specs: Specs, given: JsonObject): JsonObject {
  const complete: JsonObject = {};
  for (const [name, spec] of Object.entries(specs)) {
    if (hasOwn(given, name)) complete[name] = given[name]!;
    else if (isDefaulted(spec)) complete[name] = structuredClone(spec.value);
  }
  return complete;
}

/** Checks and completes method arguments, throwing `validation_error`. */
export function checkArguments(specs: Specs, args: JsonObject): JsonObject {
  const issues: Issue[] = [];
  const parsed = parseMembers(specs, args, [], issues);
  raiseIssues(issues, "arguments");
  return parsed as JsonObject;
}

/** Replaces the members of `target` with those of `source`, in `source`'s order. */
function replaceMembers(target: JsonObject, source: JsonObject): void {
  for (const key of Object.keys(target)) delete target[key];
  Object.assign(target, source);
}

/** A remote method as a Python model declares it: its parameters, in order, and its result. */
export interface MethodSpec {
  readonly params: Specs;
  readonly result: Type<Json>;
}

/** What a model declares besides its fields. */
export interface ModelOptions {
  /** Remote methods implemented by same-named methods of the class, taking the arguments in order. */
  readonly methods?: Readonly<Record<string, MethodSpec>>;
  /** The events the model may emit, by name. */
  readonly events?: Readonly<Record<string, Type<JsonObject>>>;
  /** The schema document (`GET /v1/models`) the model was generated from, as JSON text. */
  readonly document?: string;
  /** The model's schema version (`schema_version=` of the Python model; 1 by default). */
  readonly schemaVersion?: number;
}

/**
 * A model: its wire name, its fields, and what it was generated with. `S` is
 * its state's type and `M` its remote methods' signatures (generated code gives
 * both), so that calls to its objects from other objects are typed.
 */
export class ModelSpec<S extends object = JsonObject, M extends object = Record<never, never>> {
  /** Types only: the state and the remote methods (nothing is stored here). */
  declare readonly types?: { state: S; methods: M };
  /** The defaults as JSON text, or null when a field has no default. */
  readonly defaultsJson: string | null;
  /** The defaults field by field, as JSON texts in the fields' order; null when a field has no default. */
  readonly defaultTexts: ReadonlyMap<string, string> | null;
  readonly methods: Readonly<Record<string, MethodSpec>>;
  readonly events: Readonly<Record<string, Type<JsonObject>>> | null;
  readonly document: string | null;
  /** The schema version of the state this code writes; stored state records the one that wrote it. */
  readonly schemaVersion: number;

  constructor(
    readonly name: string,
    readonly fields: Specs,
    options: ModelOptions = {},
  ) {
    if (!MODEL_NAME.test(name)) throw new TypeError(`model name ${JSON.stringify(name)} is not allowed on the wire`);
    const canDefault = Object.values(fields).every(isDefaulted);
    const defaults = canDefault ? withDefaults(fields, {}) : null;
    this.defaultsJson = defaults === null ? null : JSON.stringify(defaults);
    this.defaultTexts = defaults === null ? null : new Map(Object.entries(defaults).map(([name, value]) => [name, JSON.stringify(value)]));
    this.methods = options.methods ?? {};
    this.events = options.events ?? null;
    this.document = options.document ?? null;
    this.schemaVersion = options.schemaVersion ?? 1;
    if (!Number.isSafeInteger(this.schemaVersion) || this.schemaVersion < 1) {
      throw new TypeError(`the schema version of ${name} must be an integer from 1, not ${String(options.schemaVersion)}`);
    }
  }

  /**
   * Issues of a complete state (what a method left behind). A state without
   * issues is brought into canonical form in place.
   */
  checkState(state: JsonObject): Issue[] {
    const issues: Issue[] = [];
    const parsed = parseMembers(this.fields, state, [], issues);
    for (const name of Object.keys(this.fields)) {
      if (!hasOwn(state, name) && isDefaulted(this.fields[name]!)) {
        issues.push({ loc: [name], msg: "Field required", type: "missing" });
      }
    }
    if (issues.length === 0 && parsed !== INVALID) replaceMembers(state, parsed);
    return issues;
  }

  /** A complete, checked state from the fields given to `create`. */
  createState(given: JsonObject): JsonObject {
    const issues: Issue[] = [];
    const parsed = parseMembers(this.fields, given, [], issues);
    raiseIssues(issues, "state");
    return parsed as JsonObject;
  }

  /** Checks the fields given to `update`, bringing them into canonical form in place. */
  checkUpdate(fields: JsonObject): void {
    const issues: Issue[] = [];
    const parsed = parseMembers(this.fields, fields, [], issues, true);
    raiseIssues(issues, "fields");
    replaceMembers(fields, parsed as JsonObject);
  }

  /**
   * One field of a state a method left behind, in canonical form, or `INVALID`
   * after its issues were appended (an unknown field is `extra_forbidden`).
   */
  checkField(name: string, value: unknown, issues: Issue[]): Json | Invalid {
    if (!hasOwn(this.fields, name)) {
      issues.push({ loc: [name], msg: "Extra inputs are not permitted", type: "extra_forbidden" });
      return INVALID;
    }
    return typeOf(this.fields[name]!).parse(value, [name], issues);
  }

  /** Stored field texts brought up to the current fields, in their order: unknown ones dropped, new ones defaulted. */
  normalizeTexts(stored: ReadonlyMap<string, string>): Map<string, string> {
    const texts = new Map<string, string>();
    for (const name of Object.keys(this.fields)) {
      const text = stored.get(name) ?? this.#defaultText(name);
      if (text !== undefined) texts.set(name, text);
    }
    return texts;
  }

  #defaultText(name: string): string | undefined {
    const spec = this.fields[name]!;
    return isDefaulted(spec) ? JSON.stringify(spec.value) : undefined;
  }

  /** A stored state brought up to the current fields: unknown ones dropped, new ones defaulted. */
  normalize(stored: JsonObject): JsonObject {
    const known: JsonObject = {};
    for (const name of Object.keys(this.fields)) {
      if (hasOwn(stored, name)) known[name] = stored[name] as Json;
    }
    return withDefaults(this.fields, known);
  }

  /**
   * The declared remote methods, bound to `instance`: each calls the method of
   * the same name with the arguments in declaration order.
   */
  boundMethods(instance: object): Map<string, RemoteMethod> {
    const table = new Map<string, RemoteMethod>();
    for (const [name, method] of Object.entries(this.methods)) {
      const implementation: unknown = (instance as Record<string, unknown>)[name];
      if (typeof implementation !== "function") throw new TypeError(`${this.name} does not implement its remote method ${name}`);
      const order = Object.keys(method.params);
      const body = (args: unknown) => (implementation as (...values: Json[]) => unknown).apply(instance, order.map((key) => (args as JsonObject)[key]!));
      table.set(name, new RemoteMethod(method.params, method.result, body));
    }
    return table;
  }

  /**
   * Checks an event about to be emitted against its declaration; the data in
   * canonical form. Throws a `ValidationError` (a remote error, as a Python
   * method constructing an invalid `Event` would raise).
   */
  checkEvent(name: string, data: JsonObject): JsonObject {
    if (this.events === null) return data;
    const type = hasOwn(this.events, name) ? this.events[name] : undefined;
    if (type === undefined) throw new EventError(`${JSON.stringify(name)} is not an event of ${this.name}'s module`);
    const issues: Issue[] = [];
    const parsed = type.parse(data, [], issues);
    if (parsed === INVALID) {
      const summary = issues.map((issue) => `${issue.loc.join(".") || "(root)"}: ${issue.msg}`).join("; ");
      throw new EventError(`event ${name} does not validate: ${summary}`);
    }
    return parsed;
  }
}

/**
 * State stored by an older schema version, brought to the model's: its JSON
 * (every stored field, known or not) through the migrations from its version
 * up to the model's, in order (a version without one changes nothing), then
 * validated as a whole state. Answers the fields' texts, or the failure every
 * operation on the object gets (`validation_error`, of type `migration_failed`
 * when a migration threw).
 */
export function migrateState(
  spec: ModelSpec,
  migrations: Readonly<Record<number, (data: JsonObject) => JsonObject>>,
  stored: { fields: ReadonlyMap<string, string> | null; schemaVersion: number },
  where: string,
): Map<string, string> | Failure {
  const from = stored.schemaVersion;
  let data: JsonObject = Object.fromEntries([...(stored.fields ?? [])].map(([name, text]) => [name, JSON.parse(text) as Json]));
  try {
    for (let version = from; version < spec.schemaVersion; version++) {
      const step = Object.hasOwn(migrations, version) ? migrations[version] : undefined;
      if (step === undefined) continue;
      const next: unknown = step(data);
      if (!isJsonObject(next) || !isJson(next)) {
        throw new TypeError(`the migration from schema version ${version} returned ${Array.isArray(next) ? "an array" : typeof next}, not a JSON object`);
      }
      data = next;
    }
  } catch (thrown) {
    const { type, message } = describeThrown(thrown);
    const text = `migrating ${where} from schema version ${from} failed: ${type}: ${message}`;
    return new Failure("validation_error", text, { errors: [{ loc: [], msg: text, type: "migration_failed" }] });
  }
  const issues: Issue[] = [];
  const parsed = parseMembers(spec.fields, data, [], issues);
  if (parsed === INVALID || issues.length > 0) {
    const summary = issues.map((issue) => `${issue.loc.join(".") || "(root)"}: ${issue.msg}`).join("; ");
    return new Failure("validation_error", `${where} stored by schema version ${from} does not validate after its migrations to ${spec.schemaVersion}: ${summary}`, {
      errors: issues.map((issue) => ({ loc: issue.loc, msg: issue.msg, type: issue.type })),
    });
  }
  return new Map(Object.entries(parsed).map(([name, value]) => [name, JSON.stringify(value)]));
}

/** An event that does not match its declaration: reported as pydantic's `ValidationError`. */
class EventError extends Error {
  override name = "ValidationError";
}
