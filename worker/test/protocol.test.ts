import { describe, expect, it } from "vitest";
import { Failure } from "../lib/src";
import { callReplyFrame, errorFrame, recordFrom, subscriptionFrom } from "../lib/src/frames";
import {
  canonicalJson,
  checkObjectId,
  exceedsBytes,
  FrameError,
  MAX_ID_BYTES,
  parseBody,
  parseCallBody,
  parseCreateBody,
  parseDeleteBody,
  parseFrame,
  haveOfQuery,
  parseUpdateBody,
  operationText,
} from "../lib/src/protocol";
import { mismatch } from "./support/match";

function frameError(text: string): FrameError {
  try {
    parseFrame(text);
  } catch (error) {
    if (error instanceof FrameError) return error;
    throw error;
  }
  throw new Error(`${text} parsed`);
}

describe("frames", () => {
  it("parses subscribe with defaults", () => {
    expect(parseFrame('{"type":"subscribe"}')).toEqual({ type: "subscribe", since: null, snapshots: true, events: true, patches: false });
    expect(parseFrame('{"type":"subscribe","since":3,"snapshots":false,"events":true,"patches":true}')).toEqual({
      type: "subscribe",
      since: 3,
      snapshots: false,
      events: true,
      patches: true,
    });
    expect(frameError('{"type":"subscribe","patches":1}').code).toBe("bad_request");
  });

  it("parses calls into operations", () => {
    expect(parseFrame('{"type": "call", "id": 7, "method": "increment", "args": {"by": 1}, "request_id": "r7"}')).toEqual({
      type: "call",
      id: 7,
      operation: { op: "call", method: "increment", args: { by: 1 }, requestId: "r7", have: null },
    });
    expect(parseFrame('{"type": "call", "id": 8, "method": "increment", "have": 3}')).toMatchObject({ operation: { have: 3 } });
    expect(frameError('{"type": "call", "id": 9, "method": "increment", "have": 3.0}')).toMatchObject({ id: 9, code: "bad_request" });
  });

  it("reports malformed frames with the call id when it is readable", () => {
    expect(frameError("{nope").id).toBeNull();
    expect(frameError("[]").id).toBeNull();
    expect(frameError('{"type":"launch"}').id).toBeNull();
    expect(frameError('{"type":"call","id":"one","method":"x"}').id).toBeNull();
    expect(frameError('{"type":"call","id":4,"method":"bad name"}').id).toBe(4);
    expect(frameError('{"type":"call","id":5,"method":"x","args":[]}').id).toBe(5);
    expect(frameError('{"type":"call","id":6,"method":"x","extra":1}').id).toBe(6);
    expect(frameError('{"type":"subscribe","since":"x"}').code).toBe("bad_request");
    expect(frameError('{"type":"subscribe","since":-1}').code).toBe("bad_request");
  });

  it("builds result and error frames from replies", () => {
    expect(callReplyFrame(3, { status: 200, body: '{"result":1,"version":1,"state":null}' })).toBe(
      '{"type":"result","id":3,"result":1,"version":1,"state":null}',
    );
    expect(JSON.parse(callReplyFrame(4, { status: 404, body: '{"error":{"code":"unknown_method"}}' }))).toEqual({
      type: "error",
      id: 4,
      error: { code: "unknown_method" },
    });
    expect(JSON.parse(errorFrame(null, new Failure("bad_request", "no")))).toEqual({
      type: "error",
      id: null,
      error: { code: "bad_request", message: "no", retryable: false, details: {} },
    });
  });

  it("reads subscriptions back from attachments defensively", () => {
    expect(subscriptionFrom({ subscribed: true, snapshots: true, events: false, patches: true, since: 4 })).toEqual({
      subscribed: true,
      snapshots: true,
      events: false,
      patches: true,
      since: 4,
    });
    expect(subscriptionFrom({ subscribed: true, since: "4" }).since).toBeNull();
    expect(recordFrom({ subscription: { subscribed: true }, frames: 3, bytes: -1, pingAt: 7 })).toMatchObject({ frames: 3, bytes: 0, pingAt: 7 });
    expect(recordFrom(undefined)).toEqual({
      subscription: { subscribed: false, snapshots: false, events: false, patches: false, since: null },
      frames: 0,
      bytes: 0,
      pingAt: null,
    });
    expect(subscriptionFrom(null).subscribed).toBe(false);
    expect(subscriptionFrom("junk").subscribed).toBe(false);
  });
});

/** A body as the router reads it. */
const body = (value: object | string) => parseBody(typeof value === "string" ? value : JSON.stringify(value));

function failure(run: () => unknown): Failure {
  try {
    run();
  } catch (error) {
    if (error instanceof Failure) return error;
    throw error;
  }
  throw new Error("no failure");
}

describe("bodies", () => {
  it("accepts optional members and null request ids", () => {
    expect(parseCallBody("m", body({}))).toEqual({ op: "call", method: "m", args: {}, requestId: null, have: null });
    expect(parseCallBody("m", body({ request_id: null }))).toMatchObject({ requestId: null });
    expect(parseCreateBody(body({}))).toEqual({ op: "create", state: {}, requestId: null, have: null });
    expect(parseUpdateBody(body({ fields: {}, if_version: null }))).toMatchObject({ ifVersion: null, have: null });
    expect(parseUpdateBody(body({ fields: {}, have: 4 }))).toMatchObject({ have: 4 });
    expect(parseCreateBody(body({ have: null }))).toMatchObject({ have: null });
  });

  it("rejects unknown members, wrong shapes and bad request ids", () => {
    expect(failure(() => parseCallBody("m", body({ argz: {} }))).code).toBe("bad_request");
    expect(failure(() => parseCallBody("m", body({ args: [1] }))).code).toBe("bad_request");
    expect(failure(() => parseCallBody("m", body({ request_id: "has spaces" }))).code).toBe("invalid_id");
    expect(failure(() => parseCallBody("m", body({ request_id: "x".repeat(129) }))).code).toBe("invalid_id");
    expect(failure(() => parseUpdateBody(body({}))).code).toBe("bad_request");
    for (const ifVersion of ["1.5", '"1"', "-1", "1.0", "1e0", "9007199254740992"]) {
      expect(failure(() => parseUpdateBody(body(`{"fields":{},"if_version":${ifVersion}}`))).code).toBe("bad_request");
    }
    expect(parseUpdateBody(body('{"fields":{},"if_version":9007199254740991}'))).toMatchObject({ ifVersion: 9007199254740991 });
    for (const have of ["1.5", '"1"', "-1", "2.0"]) {
      expect(failure(() => parseCallBody("m", body(`{"have":${have}}`))).code).toBe("bad_request");
    }
    expect(failure(() => parseDeleteBody(body({ have: 1 }))).code).toBe("bad_request");
  });

  it("reads have from a query as written: digits only, the first one, other parameters ignored", () => {
    expect(haveOfQuery("")).toBeNull();
    expect(haveOfQuery("x=1&y")).toBeNull();
    expect(haveOfQuery("have=12")).toBe(12);
    expect(haveOfQuery("a=b&have=3&have=x")).toBe(3);
    expect(haveOfQuery("have=0000000000000007")).toBe(7);
    for (const bad of ["have", "have=", "have=-1", "have=1.0", "have=%31", "have=12345678901234567", "have= 1"]) {
      expect(failure(() => haveOfQuery(bad)).code, bad).toBe("bad_request");
    }
  });

  it("refuses nesting over 64 levels, non-finite numbers and unpaired surrogates with 400", () => {
    const nested = (levels: number) => `{"args":{"by":${"[".repeat(levels - 2)}${"]".repeat(levels - 2)}}}`;
    expect(Array.isArray((parseCallBody("m", body(nested(64))) as unknown as { args: { by: unknown } }).args.by)).toBe(true);
    expect(failure(() => body(nested(65))).code).toBe("bad_request");
    expect(failure(() => body("[".repeat(100_000))).code).toBe("bad_request");
    for (const text of ['{"args":{"by":1e400}}', '{"args":{"by":-1E+999}}', '{"args":{"s":"\\ud800"}}', '{"a\\udfff":1}']) {
      expect(failure(() => body(text)).code, text).toBe("bad_request");
    }
    expect(body('{"args":{"s":"\\ud83d\\ude00 \u{1F600}"}}').value).toEqual({ args: { s: "\u{1F600} \u{1F600}" } });
    expect(failure(() => body('{"args":{"s":"\ud800"}}')).code).toBe("bad_request");
    // 1e-400 rounds to zero (finite): a float literal, boxed so that an int refuses it.
    expect(JSON.stringify(body('{"args":{"by":1e-400}}').value)).toBe('{"args":{"by":0}}');
  });

  it("answers integers beyond 2**53 - 1 with 422 int_out_of_range, located from the body's root", () => {
    const refused = failure(() => parseCreateBody(body('{"state":{"a":[1,{"b":9007199254740992}],"c":-9007199254740993}}')));
    expect(refused.code).toBe("validation_error");
    expect(refused.details).toEqual({
      errors: [
        { loc: ["state", "a", 1, "b"], msg: expect.any(String), type: "int_out_of_range" },
        { loc: ["state", "c"], msg: expect.any(String), type: "int_out_of_range" },
      ],
    });
    expect(parseCallBody("m", body('{"args":{"a":9007199254740991,"b":-9007199254740991,"c":1e300,"d":12345678901234567.5}}'))).toMatchObject({
      args: { a: 9007199254740991 },
    });
    // A malformed body is 400 before any range check.
    expect(failure(() => body('{"args":{"by":9007199254740993}')).code).toBe("bad_request");
  });
});

describe("operations bound to request ids", () => {
  it("are compared as JSON with sorted keys, after the envelope's defaults", () => {
    expect(canonicalJson({ b: [1, { d: 1, c: null }], a: "x" })).toBe('{"a":"x","b":[1,{"c":null,"d":1}]}');
    const call = (text: string) => operationText(parseCallBody("increment", body(text)));
    expect(call('{"args":{"a":1,"b":2},"request_id":"r"}')).toBe(call('{"request_id":"r","args":{"b":2,"a":1.0}}'));
    expect(call("{}")).toBe(call('{"args":{}}'));
    expect(call('{"args":{"by":1}}')).not.toBe(call("{}"));
    expect(operationText(parseUpdateBody(body({ fields: {}, if_version: 3 })))).toBe('{"fields":{},"if_version":3,"kind":"update"}');
    expect(operationText(parseUpdateBody(body({ fields: {} })))).toBe('{"fields":{},"if_version":null,"kind":"update"}');
  });
});

describe("object ids", () => {
  it("accepts any non-control character up to the byte limit", () => {
    expect(() => checkObjectId("with/slash é 日本")).not.toThrow();
    expect(() => checkObjectId("x".repeat(MAX_ID_BYTES))).not.toThrow();
    expect(() => checkObjectId("é".repeat(MAX_ID_BYTES / 2))).not.toThrow();
  });

  it("refuses empty, overlong and control-character ids", () => {
    expect(() => checkObjectId("")).toThrow(Failure);
    expect(() => checkObjectId("x".repeat(MAX_ID_BYTES + 1))).toThrow(Failure);
    expect(() => checkObjectId("é".repeat(MAX_ID_BYTES / 2 + 1))).toThrow(Failure);
    for (const c of ["\u0000", "\n", "\u001f", "\u007f", "\u0085", "\u009f"]) {
      expect(() => checkObjectId(`a${c}b`)).toThrow(Failure);
    }
  });

  it("counts UTF-8 bytes", () => {
    expect(exceedsBytes("日本", 5)).toBe(true);
    expect(exceedsBytes("日本", 6)).toBe(false);
  });
});

describe("golden matching rules", () => {
  it("matches objects as subsets, recursively", () => {
    expect(mismatch({ a: 1 }, { a: 1, b: 2 })).toBeNull();
    expect(mismatch({ a: { b: 1 } }, { a: { b: 1, c: 2 } })).toBeNull();
    expect(mismatch({ a: 1 }, { b: 1 })).toContain("missing");
    expect(mismatch({ a: 1 }, { a: 2 })).not.toBeNull();
  });

  it("matches arrays and scalars exactly", () => {
    expect(mismatch([1, 2], [1, 2])).toBeNull();
    expect(mismatch([1, 2], [1, 2, 3])).not.toBeNull();
    expect(mismatch([{ a: 1 }], [{ a: 1, b: 2 }])).not.toBeNull();
    expect(mismatch(1, "1")).not.toBeNull();
    expect(mismatch(null, null)).toBeNull();
  });

  it("lets <any> match anything", () => {
    expect(mismatch({ message: "<any>" }, { message: "whatever" })).toBeNull();
    expect(mismatch({ message: "<any>" }, { message: { nested: true } })).toBeNull();
    expect(mismatch({ message: "<any>" }, {})).not.toBeNull();
  });
});
