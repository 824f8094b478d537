import { describe, expect, it } from "vitest";
import { Failure } from "../lib/src";
import { callReplyFrame, errorFrame, subscriptionFrom } from "../lib/src/frames";
import {
  checkObjectId,
  exceedsBytes,
  FrameError,
  MAX_ID_BYTES,
  parseCallBody,
  parseCreateBody,
  parseFrame,
  parseUpdateBody,
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
    expect(parseFrame('{"type":"subscribe"}')).toEqual({ type: "subscribe", since: null, snapshots: true, events: true });
    expect(parseFrame('{"type":"subscribe","since":3,"snapshots":false,"events":true}')).toEqual({
      type: "subscribe",
      since: 3,
      snapshots: false,
      events: true,
    });
  });

  it("parses calls into operations", () => {
    expect(parseFrame('{"type": "call", "id": 7, "method": "increment", "args": {"by": 1}, "request_id": "r7"}')).toEqual({
      type: "call",
      id: 7,
      operation: { op: "call", method: "increment", args: { by: 1 }, requestId: "r7" },
    });
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
      error: { code: "bad_request", message: "no", retryable: false },
    });
  });

  it("reads subscriptions back from attachments defensively", () => {
    expect(subscriptionFrom({ subscribed: true, snapshots: true, events: false })).toEqual({
      subscribed: true,
      snapshots: true,
      events: false,
    });
    expect(subscriptionFrom(null).subscribed).toBe(false);
    expect(subscriptionFrom("junk").subscribed).toBe(false);
  });
});

describe("bodies", () => {
  it("accepts optional members and null request ids", () => {
    expect(parseCallBody("m", {})).toEqual({ op: "call", method: "m", args: {}, requestId: null });
    expect(parseCallBody("m", { request_id: null })).toMatchObject({ requestId: null });
    expect(parseCreateBody({})).toEqual({ op: "create", state: {}, requestId: null });
    expect(parseUpdateBody({ fields: {}, if_version: null })).toMatchObject({ ifVersion: null });
  });

  it("rejects unknown members, wrong shapes and bad request ids", () => {
    expect(() => parseCallBody("m", { argz: {} })).toThrow(Failure);
    expect(() => parseCallBody("m", { args: [1] })).toThrow(Failure);
    expect(() => parseCallBody("m", { request_id: "has spaces" })).toThrow(Failure);
    expect(() => parseCallBody("m", { request_id: "x".repeat(129) })).toThrow(Failure);
    expect(() => parseUpdateBody({})).toThrow(Failure);
    expect(() => parseUpdateBody({ fields: {}, if_version: 1.5 })).toThrow(Failure);
    expect(() => parseUpdateBody({ fields: {}, if_version: "1" })).toThrow(Failure);
    expect(() => parseUpdateBody({ fields: {}, if_version: -1 })).toThrow(Failure);
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
