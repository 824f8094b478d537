import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { remote, t, ValueError, type DurableModelObject, type Operation, type Reply } from "../lib/src";
import { api, call, freshId, objectPath } from "./support/client";

type Instance = DurableModelObject & Record<string, unknown>;

/** Runs `method`, added to a fresh Counter instance, through the object's dispatch. */
async function runExtraMethod(
  id: string,
  method: (self: { state: { value: number } }) => unknown,
  returns = t.json,
  before: Operation[] = [],
): Promise<Reply> {
  const stub = env.COUNTER.get(env.COUNTER.idFromName(id));
  return runInDurableObject(stub, async (instance) => {
    const self = instance as unknown as Instance & { state: { value: number } };
    self.extra = remote({}, returns, () => method(self) as never);
    for (const operation of before) await self.dispatch(operation);
    return self.dispatch({ op: "call", method: "extra", args: {}, requestId: null });
  });
}

describe("Counter", () => {
  it("increments and resets", async () => {
    const id = freshId();
    expect((await call("Counter", id, "increment", { by: 5 })).body).toEqual({ result: 5, version: 1, state: { value: 5 } });
    expect((await call("Counter", id, "reset")).body).toEqual({ result: null, version: 2, state: { value: 0 } });
  });

  it("keeps a virtual object virtual when a call changes nothing", async () => {
    const id = freshId();
    expect((await call("Counter", id, "reset")).body).toEqual({ result: null, version: 0, state: null });
    expect((await call("Counter", id, "increment", { by: 0 })).body).toEqual({ result: 0, version: 0, state: null });
  });
});

describe("a method that throws", () => {
  it("changes nothing, even after it changed the state", async () => {
    const id = freshId();
    const increment: Operation = { op: "call", method: "increment", args: { by: 1 }, requestId: null };
    const reply = await runExtraMethod(
      id,
      (self) => {
        self.state.value = 99;
        throw new ValueError("boom");
      },
      t.json,
      [increment],
    );
    expect(reply.status).toBe(422);
    expect(JSON.parse(reply.body)).toEqual({
      error: {
        code: "remote_error",
        message: "Counter.extra raised ValueError: boom",
        retryable: false,
        details: { type: "ValueError", message: "boom" },
      },
    });
    expect((await api("GET", objectPath("Counter", id))).body).toEqual({ version: 1, state: { value: 1 } });
  });

  it("reports built-in errors by their name", async () => {
    const reply = await runExtraMethod(freshId(), () => {
      throw new TypeError("wrong");
    });
    expect(JSON.parse(reply.body).error.details).toEqual({ type: "TypeError", message: "wrong" });
  });

  it("that leaves a state its fields reject is invalid_result and changes nothing", async () => {
    const id = freshId();
    const reply = await runExtraMethod(id, (self) => {
      (self.state as unknown as { value: string }).value = "many";
    });
    expect(reply.status).toBe(500);
    const { error } = JSON.parse(reply.body);
    expect(error).toEqual({
      code: "invalid_result",
      message: "Counter.extra left a state its fields reject; nothing was changed",
      retryable: false,
      details: { errors: [{ loc: ["value"], msg: expect.any(String), type: "int_type" }] },
    });
    expect(JSON.stringify(error)).not.toContain("many");
    expect((await api("GET", objectPath("Counter", id))).body).toEqual({ version: 0, state: null });
  });

  it("that returns the wrong type is invalid_result and changes nothing", async () => {
    const id = freshId();
    const reply = await runExtraMethod(
      id,
      (self) => {
        self.state.value = 5;
        return "five";
      },
      t.int as never,
    );
    expect(reply.status).toBe(500);
    expect(JSON.parse(reply.body).error).toMatchObject({ code: "invalid_result", retryable: false });
    expect(reply.body).not.toContain("five");
    expect((await api("GET", objectPath("Counter", id))).body.version).toBe(0);
  });

  it("that returns or keeps a value no client could send back is invalid_result", async () => {
    const cases: ((self: { state: Record<string, unknown> }) => unknown)[] = [
      () => 2 ** 60,
      () => ({ deep: JSON.parse("[".repeat(70) + "]".repeat(70)) }),
      () => "\ud800",
    ];
    for (const method of cases) {
      const reply = await runExtraMethod(freshId(), method as never);
      expect(JSON.parse(reply.body).error.code).toBe("invalid_result");
    }
  });
});

describe("byte budgets", () => {
  it("refuses a change that would make the state larger than 1 MiB with 413 state_too_large", async () => {
    const id = freshId();
    const path = objectPath("Document", id);
    expect((await api("PATCH", path, { fields: { content: "x".repeat(600_000) } })).body.version).toBe(1);
    const refused = await api("PATCH", path, { fields: { editors: { a: "y".repeat(500_000) } } });
    expect([refused.status, refused.body.error.code, refused.body.error.retryable]).toEqual([413, "state_too_large", false]);
    expect((await api("GET", path)).body.version).toBe(1);
    const grown = await runInDurableObject(env.DOCUMENT.get(env.DOCUMENT.idFromName(id)), async (instance) => {
      const self = instance as unknown as Instance & { state: { content: string } };
      self.grow = remote({}, () => {
        self.state.content += "z".repeat(500_000);
      });
      return self.dispatch({ op: "call", method: "grow", args: {}, requestId: "g" });
    });
    expect([grown.status, JSON.parse(grown.body).error.code]).toEqual([413, "state_too_large"]);
    expect((await api("GET", path)).body.version).toBe(1);
  });

  it("refuses a change whose events exceed 256 KiB together", async () => {
    const id = freshId();
    const refused = await call("ChatRoom", id, "post", { author: "ann", text: "x".repeat(262_144) });
    expect([refused.status, refused.body.error.code]).toEqual([413, "state_too_large"]);
    expect((await call("ChatRoom", id, "post", { author: "ann", text: "x".repeat(200_000) })).body.version).toBe(1);
    expect((await api("GET", objectPath("ChatRoom", id))).body.version).toBe(1);
  });

  it("refuses a result over 1 MiB with invalid_result", async () => {
    const id = freshId();
    const reply = await runExtraMethod(id, (self) => {
      self.state.value = 3;
      return "r".repeat(1_048_577);
    });
    expect([reply.status, JSON.parse(reply.body).error.code]).toEqual([500, "invalid_result"]);
    expect((await api("GET", objectPath("Counter", id))).body.version).toBe(0);
  });
});

describe("idempotency", () => {
  it("replays a remembered reply for every kind of change, with the state only while the version is current", async () => {
    const id = freshId();
    const path = objectPath("Counter", id);
    const created = await api("PUT", path, { state: { value: 1 }, request_id: "c" });
    expect((await api("PUT", path, { state: { value: 1 }, request_id: "c" })).body).toEqual(created.body);
    const updated = await api("PATCH", path, { fields: { value: 2 }, request_id: "u" });
    expect(updated.body).toEqual({ version: 2, state: { value: 2 } });
    const called = await call("Counter", id, "increment", {}, "i");
    expect((await call("Counter", id, "increment", {}, "i")).body).toEqual(called.body);
    expect((await api("PUT", path, { state: { value: 1 }, request_id: "c" })).body).toEqual({ version: 1 });
    expect((await api("PATCH", path, { fields: { value: 2 }, request_id: "u" })).body).toEqual({ version: 2 });
    expect((await api("DELETE", path, { request_id: "d" })).body).toEqual({ deleted: true, version: 4, state: null });
    expect((await api("DELETE", path, { request_id: "d" })).body).toEqual({ deleted: true, version: 4, state: null });
    expect((await call("Counter", id, "increment", {}, "i")).body).toEqual({ result: 3, version: 3 });
    expect((await api("GET", path)).body).toEqual({ version: 4, state: null });
  });

  it("binds a request id to its operation: another operation with it is 409 request_id_reused", async () => {
    const id = freshId();
    const path = objectPath("Counter", id);
    await call("Counter", id, "increment", { by: 2 }, "bound");
    for (const [method, target, body] of [
      ["POST", `${path}/call/increment`, { args: { by: 3 }, request_id: "bound" }],
      ["POST", `${path}/call/increment`, { request_id: "bound" }],
      ["POST", `${path}/call/reset`, { request_id: "bound" }],
      ["PATCH", path, { fields: { value: 2 }, request_id: "bound" }],
      ["PUT", path, { state: { value: 2 }, request_id: "bound" }],
      ["DELETE", path, { request_id: "bound" }],
    ] as const) {
      const refused = await api(method, target, body);
      expect([refused.status, refused.body.error.code], `${method} ${JSON.stringify(body)}`).toEqual([409, "request_id_reused"]);
    }
    // Member order does not make another operation.
    const same = await api("POST", `${path}/call/increment`, '{"request_id":"bound","args":{"by":2}}');
    expect(same.body).toEqual({ result: 2, version: 1, state: { value: 2 } });
    expect((await api("GET", path)).body).toEqual({ version: 1, state: { value: 2 } });
  });

  it("keeps request ids across a delete", async () => {
    const id = freshId();
    await call("Counter", id, "increment", {}, "before");
    await api("DELETE", objectPath("Counter", id));
    expect((await call("Counter", id, "increment", {}, "before")).body).toEqual({ result: 1, version: 1 });
    expect((await api("GET", objectPath("Counter", id))).body).toEqual({ version: 2, state: null });
  });

  it("remembers only changes: a call that changes nothing runs again, and its id stays free", async () => {
    const id = freshId();
    expect((await call("Counter", id, "increment", { by: 0 }, "quiet")).body).toEqual({ result: 0, version: 0, state: null });
    expect((await call("Counter", id, "increment", { by: 5 }, "quiet")).body).toEqual({ result: 5, version: 1, state: { value: 5 } });
  });

  it("does not remember failures: a failed request id may run again", async () => {
    const id = freshId();
    await call("Document", id, "join", { editor_id: "ann", name: "Ann" });
    const failed = await call("Document", id, "edit", { editor_id: "ann", content: "x", version: 7 }, "e1");
    expect(failed.status).toBe(422);
    const retried = await call("Document", id, "edit", { editor_id: "ann", content: "x", version: 1 }, "e1");
    expect(retried.body).toMatchObject({ result: 1, version: 2 });
  });

  it("keeps request ids per object", async () => {
    const [a, b] = [freshId(), freshId()];
    await call("Counter", a, "increment", { by: 3 }, "same");
    expect((await call("Counter", b, "increment", { by: 4 }, "same")).body.result).toBe(4);
  });

  it("stores what a repeat needs, never the state", async () => {
    const id = freshId();
    await call("Document", id, "join", { editor_id: "ann", name: "A".repeat(10_000) }, "j");
    const rows = await runInDurableObject(env.DOCUMENT.get(env.DOCUMENT.idFromName(id)), (_instance, state) =>
      state.storage.sql.exec("SELECT * FROM durable_requests").toArray(),
    );
    expect(rows).toEqual([
      expect.objectContaining({ request_id: "j", kind: "call", status: 200, version: 1, result: '["ann"]', size: 7 }),
    ]);
    expect(JSON.stringify(rows)).not.toContain("AAAA");
  });
});

describe("changes and versions", () => {
  it("a call that emits events but leaves the state equal is a change: a new version", async () => {
    const id = freshId();
    await call("Document", id, "join", { editor_id: "ann", name: "Ann" });
    const again = await call("Document", id, "join", { editor_id: "ann", name: "Ann" }, "again");
    expect(again.body).toEqual({ result: ["ann"], version: 2, state: { content: "", version: 0, editors: { ann: "Ann" } } });
    expect((await call("Document", id, "join", { editor_id: "ann", name: "Ann" }, "again")).body.version).toBe(2);
  });

  it("an event on a virtual object makes a version and keeps it without stored state", async () => {
    const id = freshId();
    const stub = env.COUNTER.get(env.COUNTER.idFromName(id));
    const reply = await runInDurableObject(stub, (instance) => {
      const self = instance as unknown as Instance & { emit(name: string, data: object): void };
      self.shout = remote({}, () => self.emit("Posted", { author: "a", text: "b" }));
      return self.dispatch({ op: "call", method: "shout", args: {}, requestId: null });
    });
    expect(JSON.parse(reply.body)).toEqual({ result: null, version: 1, state: null });
    expect((await api("PUT", objectPath("Counter", id), { state: { value: 2 } })).body).toEqual({ version: 2, state: { value: 2 } });
  });

  it("an update to equal values, and PATCH with no fields, are not changes", async () => {
    const id = freshId();
    const path = objectPath("Counter", id);
    await api("PUT", path, { state: { value: 3 } });
    expect((await api("PATCH", path, { fields: { value: 3 }, request_id: "eq" })).body).toEqual({ version: 1, state: { value: 3 } });
    expect((await api("PATCH", path, { fields: {}, request_id: "eq" })).body).toEqual({ version: 1, state: { value: 3 } });
    expect((await api("PATCH", path, { fields: { value: 4 }, request_id: "eq" })).body).toEqual({ version: 2, state: { value: 4 } });
  });
});

describe("create, update and delete", () => {
  it("conditional updates apply only at the expected version", async () => {
    const id = freshId();
    const path = objectPath("Counter", id);
    const conflict = await api("PATCH", path, { fields: { value: 1 }, if_version: 3 });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toEqual({
      code: "conflict",
      message: "version is 0, not 3; nothing was changed",
      retryable: false,
      details: { expected: 3, actual: 0 },
    });
    expect((await api("PATCH", path, { fields: { value: 1 }, if_version: 0 })).body).toEqual({ version: 1, state: { value: 1 } });
    expect((await api("PATCH", path, { fields: { value: 2 }, if_version: null })).body.version).toBe(2);
  });

  it("checks the version before the fields", async () => {
    const answer = await api("PATCH", objectPath("Counter", freshId()), { fields: { nope: 1 }, if_version: 9 });
    expect(answer.body.error.code).toBe("conflict");
  });

  it("creates with defaults for missing fields", async () => {
    const id = freshId();
    const created = await api("PUT", objectPath("Document", id), { state: { content: "hi" } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ version: 1, state: { content: "hi", version: 0, editors: {} } });
  });

  it("updates only the named fields", async () => {
    const id = freshId();
    await call("Document", id, "join", { editor_id: "ann", name: "Ann" });
    const updated = await api("PATCH", objectPath("Document", id), { fields: { content: "new" } });
    expect(updated.body).toEqual({ version: 2, state: { content: "new", version: 0, editors: { ann: "Ann" } } });
  });

  it("delete keeps counting versions", async () => {
    const id = freshId();
    const path = objectPath("Counter", id);
    await call("Counter", id, "increment");
    expect((await api("DELETE", path)).body).toEqual({ deleted: true, version: 2, state: null });
    expect((await call("Counter", id, "increment")).body).toEqual({ result: 1, version: 3, state: { value: 1 } });
    expect((await api("PUT", path, { state: { value: 5 } })).status).toBe(409);
  });
});

describe("Document", () => {
  it("joins, edits in order and leaves", async () => {
    const id = freshId();
    await call("Document", id, "join", { editor_id: "ann", name: "Ann" });
    expect((await call("Document", id, "join", { editor_id: "bob", name: "Bob" })).body.result).toEqual(["ann", "bob"]);
    expect((await call("Document", id, "edit", { editor_id: "bob", content: "v1", version: 1 })).body.result).toBe(1);
    expect((await call("Document", id, "edit", { editor_id: "ann", content: "v1b", version: 1 })).body.error.details).toMatchObject({
      type: "ValueError",
    });
    expect((await call("Document", id, "leave", { editor_id: "ann" })).body.result).toBe(true);
    const again = await call("Document", id, "leave", { editor_id: "ann" });
    expect(again.body.result).toBe(false);
    expect(again.body.state).toEqual({ content: "v1", version: 1, editors: { bob: "Bob" } });
  });
});

describe("ChatRoom", () => {
  it("keeps the last 100 messages and reads them without changing anything", async () => {
    const id = freshId();
    let last;
    for (let n = 1; n <= 103; n++) last = await call("ChatRoom", id, "post", { author: "ann", text: `m${n}` });
    expect(last?.body.result).toBe(100);
    expect(last?.body.version).toBe(103);
    const recent = await call("ChatRoom", id, "recent", { limit: 2 });
    expect(recent.body.result).toEqual([
      { author: "ann", text: "m102" },
      { author: "ann", text: "m103" },
    ]);
    expect(recent.body.version).toBe(103);
    expect((await call("ChatRoom", id, "recent")).body.result).toHaveLength(20);
    expect(last?.body.state.messages[0]).toEqual({ author: "ann", text: "m4" });
  });

  it("refuses empty text", async () => {
    const answer = await call("ChatRoom", freshId(), "post", { author: "ann", text: "" });
    expect(answer.body.error).toMatchObject({ code: "remote_error", details: { type: "ValueError" } });
  });
});
