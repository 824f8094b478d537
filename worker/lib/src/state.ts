/**
 * An object's state in memory, between calls and during one.
 *
 * `ObjectState` is the committed state: each field's JSON text (what is stored
 * and sent), in the model's field order, the state's size in bytes, and which
 * fields each recent version changed, so that a client holding an older version
 * can be sent only those (a patch). `Draft` is what a method body sees as
 * `this.state`: a proxy that decodes a field only when the body reads it and
 * records every field the body read or assigned, so that only those are
 * checked, compared and encoded afterwards. A small change to a large object
 * costs what it changes.
 */
import type { Json, JsonObject } from "./json";
import { utf8Length } from "./protocol";

/** How many versions an object remembers the changed fields of, to send patches. */
export const HISTORY = 64;

/** The fields a version changed; `null`: the state was replaced whole (created, deleted, or written first). */
export type Touched = ReadonlySet<string> | null;

/** A state's fields: each field's JSON text, in the model's field order. */
export type FieldTexts = ReadonlyMap<string, string>;

/** The bytes one field takes in the state's JSON text: `"name":text`. */
export function fieldBytes(name: string, text: string): number {
  return utf8Length(JSON.stringify(name)) + 1 + utf8Length(text);
}

/** The size in UTF-8 bytes of the JSON text `joinFields` makes of `texts`. */
export function stateBytes(texts: FieldTexts): number {
  let total = 2 + Math.max(texts.size - 1, 0);
  for (const [name, text] of texts) total += fieldBytes(name, text);
  return total;
}

/** `{"a":...,"b":...}` from the texts of the fields named (all of them by default), in the fields' order. */
export function joinFields(texts: FieldTexts, names?: ReadonlySet<string>): string {
  const parts: string[] = [];
  for (const [name, text] of texts) {
    if (names === undefined || names.has(name)) parts.push(`${JSON.stringify(name)}:${text}`);
  }
  return `{${parts.join(",")}}`;
}

/** The fields of a JSON object as texts, in the object's order. */
export function textsOf(state: JsonObject): Map<string, string> {
  return new Map(Object.entries(state).map(([name, value]) => [name, JSON.stringify(value)]));
}

/** A version as the object made it: its fields (null: no state) and what changed. */
export interface Version {
  version: number;
  texts: FieldTexts | null;
  touched: Touched;
}

/** The committed state of one object, kept in memory between calls. */
export class ObjectState {
  #version: number;
  #texts: Map<string, string> | null;
  #bytes: number;
  /** Decoded values of stored fields, made on demand (for comparisons only: never handed to bodies). */
  readonly #values = new Map<string, Json>();
  /** The state's JSON text, made on demand once per version. */
  #text: string | null | undefined;
  /** Changed fields of the most recent versions, oldest first. */
  readonly #history: { version: number; touched: Touched }[] = [];

  constructor(version: number, texts: FieldTexts | null) {
    this.#version = version;
    this.#texts = texts === null ? null : new Map(texts);
    this.#bytes = texts === null ? 0 : stateBytes(texts);
  }

  get version(): number {
    return this.#version;
  }

  get present(): boolean {
    return this.#texts !== null;
  }

  /** Bytes of the state's JSON text (0 without state). */
  get bytes(): number {
    return this.#bytes;
  }

  get texts(): FieldTexts | null {
    return this.#texts;
  }

  /** A stored field's value, decoded once (undefined when the object has no such field). */
  value(name: string): Json | undefined {
    if (this.#texts === null) return undefined;
    let value = this.#values.get(name);
    if (value === undefined) {
      const text = this.#texts.get(name);
      if (text === undefined) return undefined;
      value = JSON.parse(text) as Json;
      this.#values.set(name, value);
    }
    return value;
  }

  /** The whole state as JSON text, or null without state. */
  text(): string | null {
    if (this.#text === undefined) this.#text = this.#texts === null ? null : joinFields(this.#texts);
    return this.#text;
  }

  /** The named fields with their current values, as a JSON object's text, in the fields' order. */
  fieldsText(names: ReadonlySet<string>): string {
    return this.#texts === null ? "{}" : joinFields(this.#texts, names);
  }

  /**
   * The fields changed after `version` up to the current one; null when the
   * history does not reach back that far, or the state was replaced meanwhile
   * (then only the whole state will do).
   */
  changedSince(version: number): Set<string> | null {
    if (version > this.#version) return null;
    const changed = new Set<string>();
    if (version === this.#version) return changed;
    for (let i = this.#history.length - 1; i >= 0; i--) {
      const entry = this.#history[i]!;
      if (entry.version <= version) return changed;
      if (entry.touched === null) return null;
      for (const name of entry.touched) changed.add(name);
      if (entry.version === version + 1) return changed;
    }
    return null;
  }

  /**
   * Takes the next version: `written` holds the texts of the fields that changed
   * (all of them when `touched` is null: the state was replaced, or is gone if
   * `written` is null), with their decoded values when they are known.
   */
  advance(version: number, written: FieldTexts | null, touched: Touched, values?: ReadonlyMap<string, Json>): void {
    if (touched === null || written === null || this.#texts === null) {
      this.#texts = written === null ? null : new Map(written);
      this.#bytes = written === null ? 0 : stateBytes(written);
      this.#values.clear();
    } else {
      for (const [name, text] of written) {
        const before = this.#texts.get(name);
        this.#bytes += fieldBytes(name, text) - (before === undefined ? 0 : fieldBytes(name, before));
        this.#texts.set(name, text);
        this.#values.delete(name);
      }
    }
    for (const [name, value] of values ?? []) this.#values.set(name, value);
    this.#version = version;
    this.#text = undefined;
    this.#history.push({ version, touched });
    if (this.#history.length > HISTORY) this.#history.shift();
  }
}

/** Marks a field a body deleted. */
const DELETED: unique symbol = Symbol("deleted");

/** What a body did to one field it touched. */
export type FieldOutcome = { name: string; deleted: true } | { name: string; deleted: false; value: unknown };

/**
 * The state a method body works on (`this.state`): a proxy over the fields'
 * texts that decodes a field the first time the body reads it (a fresh copy,
 * so a body that throws leaves nothing behind) and records the fields the body
 * read, assigned or deleted. Reading a field and changing it in place counts as
 * touching it; fields never touched are never decoded, checked or encoded.
 */
export class Draft {
  readonly proxy: JsonObject;
  readonly #base: FieldTexts;
  readonly #values = new Map<string, unknown>();
  readonly #touched = new Set<string>();

  constructor(base: FieldTexts) {
    this.#base = base;
    const draft = this;
    const target: JsonObject = {};
    this.proxy = new Proxy(target, {
      get(target, key, receiver) {
        if (typeof key === "string" && draft.#has(key)) return draft.#read(key);
        return Reflect.get(target, key, receiver);
      },
      set(target, key, value, receiver) {
        if (typeof key !== "string") return Reflect.set(target, key, value, receiver);
        draft.#write(key, value);
        return true;
      },
      defineProperty(target, key, descriptor) {
        if (typeof key !== "string" || !("value" in descriptor)) return Reflect.defineProperty(target, key, descriptor);
        draft.#write(key, descriptor.value);
        return true;
      },
      deleteProperty(target, key) {
        if (typeof key !== "string") return Reflect.deleteProperty(target, key);
        draft.#write(key, DELETED);
        return true;
      },
      has(target, key) {
        return typeof key === "string" && draft.#has(key) ? true : Reflect.has(target, key);
      },
      ownKeys() {
        return draft.#keys();
      },
      getOwnPropertyDescriptor(target, key) {
        if (typeof key !== "string" || !draft.#has(key)) return Reflect.getOwnPropertyDescriptor(target, key);
        return { value: draft.#read(key), writable: true, enumerable: true, configurable: true };
      },
    });
  }

  #has(name: string): boolean {
    const value = this.#values.get(name);
    if (value !== undefined || this.#values.has(name)) return value !== DELETED;
    return this.#base.has(name);
  }

  #read(name: string): unknown {
    this.#touched.add(name);
    if (this.#values.has(name)) return this.#values.get(name);
    const value: unknown = JSON.parse(this.#base.get(name)!);
    this.#values.set(name, value);
    return value;
  }

  #write(name: string, value: unknown): void {
    this.#touched.add(name);
    this.#values.set(name, value);
  }

  #keys(): string[] {
    const keys = [...this.#base.keys()].filter((name) => this.#has(name));
    for (const [name, value] of this.#values) if (value !== DELETED && !this.#base.has(name)) keys.push(name);
    return keys;
  }

  /** The fields the body touched, with what it left in each, in the order it first touched them. */
  outcomes(): FieldOutcome[] {
    return [...this.#touched].map((name) => {
      const value = this.#values.get(name);
      if (value === DELETED || (!this.#values.has(name) && !this.#base.has(name))) return { name, deleted: true };
      return { name, deleted: false, value };
    });
  }
}

/** Whether two JSON values are equal as values (members of objects in any order). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, index) => sameJson(item, b[index]));
  }
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && sameJson((a as JsonObject)[key], (b as JsonObject)[key]));
}
