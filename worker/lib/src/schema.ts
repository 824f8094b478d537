/**
 * A model's declaration: its name and fields, and the checks of states,
 * partial updates and method arguments against it.
 */
import { Failure } from "./errors";
import { hasOwn, type Json, type JsonObject } from "./json";
import { MODEL_NAME } from "./protocol";
import { isDefaulted, typeOf, type Issue, type Specs } from "./types";

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
  for (const [name, value] of Object.entries(given)) {
    if (hasOwn(specs, name)) typeOf(specs[name]!).check(value, [name], issues);
    else issues.push({ loc: [name], msg: "unexpected name", type: "extra_forbidden" });
  }
  if (!partial) {
    for (const [name, spec] of Object.entries(specs)) {
      if (!hasOwn(given, name) && !isDefaulted(spec)) issues.push({ loc: [name], msg: "missing", type: "missing" });
    }
  }
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
  raiseIssues(checkMembers(specs, args, false), "arguments");
  return withDefaults(specs, args);
}

/** A model: its wire name and its fields. */
export class ModelSpec {
  /** The defaults as JSON text, or null when a field has no default. */
  readonly defaultsJson: string | null;

  constructor(
    readonly name: string,
    readonly fields: Specs,
  ) {
    if (!MODEL_NAME.test(name)) throw new TypeError(`model name ${JSON.stringify(name)} is not allowed on the wire`);
    const canDefault = Object.values(fields).every(isDefaulted);
    this.defaultsJson = canDefault ? JSON.stringify(withDefaults(fields, {})) : null;
  }

  /** Issues of a complete state (what a method left behind). */
  checkState(state: JsonObject): Issue[] {
    return checkMembers(this.fields, state, false).concat(this.missingFields(state));
  }

  private missingFields(state: JsonObject): Issue[] {
    return Object.keys(this.fields)
      .filter((name) => !hasOwn(state, name) && isDefaulted(this.fields[name]!))
      .map((name) => ({ loc: [name], msg: "missing", type: "missing" }));
  }

  /** A complete, checked state from the fields given to `create`. */
  createState(given: JsonObject): JsonObject {
    raiseIssues(checkMembers(this.fields, given, false), "state");
    return withDefaults(this.fields, given);
  }

  /** Checks the fields given to `update`. */
  checkUpdate(fields: JsonObject): void {
    raiseIssues(checkMembers(this.fields, fields, true), "fields");
  }

  /** A stored state brought up to the current fields: unknown ones dropped, new ones defaulted. */
  normalize(stored: JsonObject): JsonObject {
    const known: JsonObject = {};
    for (const name of Object.keys(this.fields)) {
      if (hasOwn(stored, name)) known[name] = stored[name] as Json;
    }
    return withDefaults(this.fields, known);
  }
}
