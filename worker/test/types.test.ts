import { describe, expect, it } from "vitest";
import { Failure, t } from "../lib/src";
import { parseJson } from "../lib/src/json";
import { checkArguments, ModelSpec } from "../lib/src/schema";
import { INVALID, validate, type Issue, type Type } from "../lib/src/types";

/** The canonical value, or the issues. */
function parse(type: Type<never> | Type<any>, value: unknown): unknown {
  const issues: Issue[] = [];
  const out = type.parse(value, [], issues);
  return out === INVALID ? issues : out;
}

const types = (type: Type<any>, value: unknown) => validate(type, value).map((issue) => issue.type);

describe("t: runtime types, as pydantic's strict mode on JSON", () => {
  it("checks scalars strictly", () => {
    expect(validate(t.int, 3)).toEqual([]);
    expect(validate(t.int, 3.5)).toEqual([{ loc: [], msg: "Input should be a valid integer", type: "int_type" }]);
    expect(types(t.int, true)).toEqual(["int_type"]);
    expect(types(t.int, "3")).toEqual(["int_type"]);
    expect(validate(t.float, 3)).toEqual([]);
    expect(types(t.float, "3")).toEqual(["float_type"]);
    expect(types(t.str, null)).toEqual(["string_type"]);
    expect(types(t.bool, 0)).toEqual(["bool_type"]);
    expect(types(t.none, 0)).toEqual(["none_required"]);
  });

  it("tells 2 from 2.0 when the JSON text said so", () => {
    const body = parseJson('{"a": 2.0, "b": 2, "c": 1e3, "d": [2.5]}').value as Record<string, unknown>;
    expect(types(t.int, body.a)).toEqual(["int_type"]);
    expect(types(t.int, body.b)).toEqual([]);
    expect(types(t.int, body.c)).toEqual(["int_type"]);
    expect(parse(t.float, body.a)).toBe(2);
    expect(parse(t.json, body)).toEqual({ a: 2, b: 2, c: 1000, d: [2.5] });
    expect(JSON.stringify(body)).toBe('{"a":2,"b":2,"c":1000,"d":[2.5]}');
  });

  it("checks number constraints in pydantic's order", () => {
    const even = t.int.with({ ge: 1, le: 10, multipleOf: 2 });
    expect(types(even, 4)).toEqual([]);
    expect(types(even, 3)).toEqual(["multiple_of"]);
    expect(types(even, -2)).toEqual(["greater_than_equal"]);
    expect(types(even, 12)).toEqual(["less_than_equal"]);
    expect(types(t.float.with({ gt: 0, lt: 1 }), 1)).toEqual(["less_than"]);
    expect(types(t.float.with({ gt: 0 }), 0)).toEqual(["greater_than"]);
    expect(types(t.float.with({ multipleOf: 0.1 }), 0.3)).toEqual([]);
    expect(types(t.float.with({ multipleOf: 0.01 }), 0.015)).toEqual(["multiple_of"]);
  });

  it("counts string lengths in code points and searches patterns", () => {
    const short = t.str.with({ minLength: 2, maxLength: 3, pattern: "^a" });
    expect(types(short, "ab")).toEqual([]);
    expect(types(short, "a")).toEqual(["string_too_short"]);
    expect(types(short, "abcd")).toEqual(["string_too_long"]);
    expect(types(short, "bb")).toEqual(["string_pattern_mismatch"]);
    expect(types(t.str.with({ maxLength: 2 }), "😀😀")).toEqual([]);
  });

  it("checks containers with locations", () => {
    const issues = validate(t.list(t.dict(t.int)), [{ a: 1 }, { b: "x" }]);
    expect(issues).toEqual([{ loc: [1, "b"], msg: "Input should be a valid integer", type: "int_type" }]);
    expect(types(t.dict(t.str), [])).toEqual(["dict_type"]);
    expect(types(t.list(t.int, { maxLength: 2 }), ["a", 2, 3])).toEqual(["too_long"]);
    expect(types(t.list(t.int, { minLength: 1 }), [])).toEqual(["too_short"]);
    expect(types(t.dict(t.int, { maxLength: 1 }), { a: 1, b: 2 })).toEqual(["too_long"]);
    // As pydantic: a dict is too long once it has too many valid items, whatever came before.
    expect(types(t.dict(t.int, { maxLength: 2 }), { a: "x", b: 1, c: 2, d: 3 })).toEqual(["too_long"]);
    expect(types(t.dict(t.int, { maxLength: 2 }), { a: 1, b: 2, c: "x" })).toEqual(["int_type"]);
  });

  it("checks nested models exactly and fills their defaults", () => {
    const Message = t.object({ author: t.str, text: t.str.default("") }, "Message");
    expect(parse(Message, { author: "a" })).toEqual({ author: "a", text: "" });
    expect(types(Message, {})).toEqual(["missing"]);
    expect(validate(Message, { author: "a", at: 1 })).toEqual([
      { loc: ["at"], msg: "Extra inputs are not permitted", type: "extra_forbidden" },
    ]);
    expect(types(Message, "hi")).toEqual(["model_type"]);
  });

  it("matches literals and enums by value, as Python compares them", () => {
    expect(parse(t.literal(1), true)).toBe(1);
    expect(parse(t.literal(true), 1)).toBe(true);
    expect(types(t.literal(1), "1")).toEqual(["literal_error"]);
    expect(types(t.enum("Color", ["red", "green"]), "blue")).toEqual(["enum"]);
    expect(validate(t.literal("a", "b"), "c")[0]?.msg).toBe("Input should be 'a' or 'b'");
  });

  it("picks union members as smart unions do, and tags their issues", () => {
    const either = t.union([t.int, t.str], ["int", "str"]);
    expect(parse(either, "x")).toBe("x");
    expect(validate(either, 1.5)).toEqual([
      { loc: ["int"], msg: "Input should be a valid integer", type: "int_type" },
      { loc: ["str"], msg: "Input should be a valid string", type: "string_type" },
    ]);
    expect(parse(t.nullable(t.int), null)).toBeNull();
    expect(types(t.nullable(t.int), "x")).toEqual(["int_type"]);
  });

  it("normalises datetimes, dates and UUIDs as pydantic writes them", () => {
    expect(parse(t.datetime, "2020-01-01 00:00:00+00:00")).toBe("2020-01-01T00:00:00Z");
    expect(parse(t.datetime, "2020-01-01T00:00:00.5")).toBe("2020-01-01T00:00:00.500000");
    expect(parse(t.datetime, "2020-01-01T10:00+0130")).toBe("2020-01-01T10:00:00+01:30");
    expect(parse(t.datetime, "1700000000")).toBe("2023-11-14T22:13:20Z");
    expect(types(t.datetime, "2020-01-01")).toEqual(["datetime_parsing"]);
    expect(types(t.datetime, 1700000000)).toEqual(["datetime_type"]);
    expect(parse(t.date, "2020-02-29")).toBe("2020-02-29");
    expect(types(t.date, "2021-02-29")).toEqual(["date_parsing"]);
    expect(parse(t.uuid, "{12345678-1234-5678-1234-56781234ABCD}")).toBe("12345678-1234-5678-1234-56781234abcd");
    expect(types(t.uuid.with({ version: 4 }), "12345678-1234-5678-1234-567812345678")).toEqual(["uuid_version"]);
  });

  it("refuses a default of the wrong type", () => {
    expect(() => t.int.default("zero" as unknown as number)).toThrow(TypeError);
  });
});

describe("arguments", () => {
  const specs = { by: t.int.default(1), name: t.str };

  it("fills defaults and keeps given values", () => {
    expect(checkArguments(specs, { name: "a" })).toEqual({ by: 1, name: "a" });
    expect(checkArguments(specs, { name: "a", by: 5 })).toEqual({ by: 5, name: "a" });
  });

  it("rejects unknown, missing and mistyped arguments as validation_error", () => {
    let failure: unknown;
    try {
      checkArguments(specs, { by: "x", extra: 1 });
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(Failure);
    const { code, status, details } = failure as Failure;
    expect({ code, status }).toEqual({ code: "validation_error", status: 422 });
    expect(details?.errors).toEqual([
      { loc: ["by"], msg: "Input should be a valid integer", type: "int_type" },
      { loc: ["name"], msg: "Field required", type: "missing" },
      { loc: ["extra"], msg: "Extra inputs are not permitted", type: "extra_forbidden" },
    ]);
  });

  it("ignores names inherited from Object.prototype", () => {
    expect(() => checkArguments(specs, { name: "a", toString: 1 })).toThrow(Failure);
  });

  it("gives each call its own copy of a mutable default", () => {
    const listSpecs = { items: t.list(t.int).default([]) };
    const first = checkArguments(listSpecs, {});
    (first.items as number[]).push(1);
    expect(checkArguments(listSpecs, {})).toEqual({ items: [] });
  });
});

describe("ModelSpec", () => {
  const spec = new ModelSpec("Thing", { count: t.int.default(0), tags: t.list(t.str).default([]) });

  it("knows its defaults", () => {
    expect(spec.defaultsJson).toBe('{"count":0,"tags":[]}');
    expect(new ModelSpec("Needy", { owner: t.str }).defaultsJson).toBeNull();
  });

  it("completes created states and rejects unknown fields", () => {
    expect(spec.createState({ count: 2 })).toEqual({ count: 2, tags: [] });
    expect(() => spec.createState({ nope: 1 })).toThrow(Failure);
    expect(() => new ModelSpec("Needy", { owner: t.str }).createState({})).toThrow(Failure);
  });

  it("checks a whole state, including fields a method removed", () => {
    expect(spec.checkState({ count: 1, tags: [] })).toEqual([]);
    expect(spec.checkState({ count: 1 })).toEqual([{ loc: ["tags"], msg: "Field required", type: "missing" }]);
  });

  it("brings an update into canonical form in place", () => {
    const stamped = new ModelSpec("Stamped", { at: t.nullable(t.datetime).default(null) });
    const fields = { at: "2020-01-01 00:00:00+00:00" };
    stamped.checkUpdate(fields);
    expect(fields).toEqual({ at: "2020-01-01T00:00:00Z" });
  });

  it("brings stored states up to the current fields", () => {
    expect(spec.normalize({ count: 4, old: true })).toEqual({ count: 4, tags: [] });
  });

  it("refuses model names the wire cannot carry", () => {
    expect(() => new ModelSpec("has space", {})).toThrow(TypeError);
  });
});

describe("patterns", () => {
  it("read \\d as any decimal digit, as pydantic's Rust regex does", () => {
    const digits = t.str.with({ pattern: "^\\d+$" });
    expect(validate(digits, "١٢")).toEqual([]);
    expect(validate(digits, "12")).toEqual([]);
    expect(validate(digits, "1a")[0]?.type).toBe("string_pattern_mismatch");
    expect(validate(t.str.with({ pattern: "^\\\\d$" }), "\\d")).toEqual([]);
    expect(validate(t.str.with({ pattern: "^\\D$" }), "٣")[0]?.type).toBe("string_pattern_mismatch");
  });
});
