import { describe, expect, it } from "vitest";
import { Failure, t } from "../lib/src";
import { checkArguments, ModelSpec } from "../lib/src/schema";
import { validate } from "../lib/src/types";

describe("t: runtime types", () => {
  it("checks scalars strictly", () => {
    expect(validate(t.int, 3)).toEqual([]);
    expect(validate(t.int, 3.5)[0]?.msg).toBe("expected int, got float");
    expect(validate(t.int, true)[0]?.msg).toBe("expected int, got bool");
    expect(validate(t.int, "3")[0]?.type).toBe("int_type");
    expect(validate(t.float, 3)).toEqual([]);
    expect(validate(t.str, null)[0]?.msg).toBe("expected str, got null");
    expect(validate(t.bool, 0)).toHaveLength(1);
  });

  it("checks containers with locations", () => {
    const issues = validate(t.list(t.dict(t.int)), [{ a: 1 }, { b: "x" }]);
    expect(issues).toEqual([{ loc: [1, "b"], msg: "expected int, got str", type: "int_type" }]);
    expect(validate(t.dict(t.str), [])[0]?.msg).toBe("expected dict, got list");
  });

  it("checks objects exactly: every member required, no extras", () => {
    const Message = t.object({ author: t.str, text: t.str }, "Message");
    expect(validate(Message, { author: "a", text: "b" })).toEqual([]);
    expect(validate(Message, { author: "a" })).toEqual([{ loc: ["text"], msg: "field required", type: "missing" }]);
    expect(validate(Message, { author: "a", text: "b", at: 1 })[0]?.type).toBe("extra_forbidden");
    expect(validate(Message, "hi")[0]?.msg).toBe("expected Message, got str");
  });

  it("supports nullable, literal and any JSON", () => {
    expect(validate(t.nullable(t.int), null)).toEqual([]);
    expect(validate(t.nullable(t.int), "x")).toHaveLength(1);
    expect(validate(t.literal("a", "b"), "b")).toEqual([]);
    expect(validate(t.literal("a", "b"), "c")[0]?.type).toBe("literal_error");
    expect(validate(t.json, { a: [1, null, "x"] })).toEqual([]);
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
      { loc: ["by"], msg: "expected int, got str", type: "int_type" },
      { loc: ["extra"], msg: "unexpected name", type: "extra_forbidden" },
      { loc: ["name"], msg: "missing", type: "missing" },
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
    expect(spec.checkState({ count: 1 })).toEqual([{ loc: ["tags"], msg: "missing", type: "missing" }]);
  });

  it("brings stored states up to the current fields", () => {
    expect(spec.normalize({ count: 4, old: true })).toEqual({ count: 4, tags: [] });
  });

  it("refuses model names the wire cannot carry", () => {
    expect(() => new ModelSpec("has space", {})).toThrow(TypeError);
  });
});
