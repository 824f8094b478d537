/** Cost that follows the change: bodies tracked field by field, one row per field, patches in replies and to subscribers. */
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { remote, type DurableModelObject } from "../lib/src";
import { Draft, ObjectState } from "../lib/src/state";
import { ObjectStore } from "../lib/src/store";
import { api, call, connect, freshId, objectPath, ORIGIN, TOKEN } from "./support/client";

type Instance = DurableModelObject & Record<string, unknown>;

const texts = (fields: Record<string, unknown>) => new Map(Object.entries(fields).map(([name, value]) => [name, JSON.stringify(value)]));

describe("Draft: the state a body works on", () => {
  it("decodes and records only the fields a body reads, assigns or deletes", () => {
    const draft = new Draft(texts({ count: 1, items: ["a", "b"], label: "x" }));
    const state = draft.proxy as { count: number; items: string[]; label?: string; extra?: number };
    state.count += 1;
    expect(draft.outcomes()).toEqual([{ name: "count", deleted: false, value: 2 }]);
    state.items.push("c");
    delete state.label;
    expect(draft.outcomes()).toEqual([
      { name: "count", deleted: false, value: 2 },
      { name: "items", deleted: false, value: ["a", "b", "c"] },
      { name: "label", deleted: true },
    ]);
  });

  it("behaves as a plain object: keys, spread, JSON, in, hasOwnProperty", () => {
    const draft = new Draft(texts({ count: 1, tags: { a: [1] } }));
    const state = draft.proxy as Record<string, unknown>;
    expect(Object.keys(state)).toEqual(["count", "tags"]);
    expect("count" in state && !("nope" in state)).toBe(true);
    expect(Object.prototype.hasOwnProperty.call(state, "tags")).toBe(true);
    expect(state.hasOwnProperty("count")).toBe(true);
    expect({ ...state }).toEqual({ count: 1, tags: { a: [1] } });
    state.added = 5;
    expect(JSON.stringify(state)).toBe('{"count":1,"tags":{"a":[1]},"added":5}');
    expect(Object.getPrototypeOf(state)).toBe(Object.prototype);
  });

  it("hands out copies: the committed texts never change", () => {
    const base = texts({ items: [1] });
    const draft = new Draft(base);
    (draft.proxy as { items: number[] }).items.push(2);
    expect(base.get("items")).toBe("[1]");
    expect(((new Draft(base).proxy as { items: number[] }).items)).toEqual([1]);
  });
});

describe("ObjectState: which fields each version changed", () => {
  it("answers the fields changed since a version its history reaches, else null", () => {
    const state = new ObjectState(3, texts({ a: 1, b: 2, c: 3 }));
    expect(state.changedSince(3)).toEqual(new Set());
    expect(state.changedSince(2)).toBeNull(); // nothing known before this instance's first version
    expect(state.changedSince(4)).toBeNull();
    state.advance(4, texts({ a: 10 }), new Set(["a"]));
    state.advance(5, new Map(), new Set());
    state.advance(6, texts({ c: 30 }), new Set(["c"]));
    expect(state.changedSince(3)).toEqual(new Set(["a", "c"]));
    expect(state.changedSince(4)).toEqual(new Set(["c"]));
    expect(state.changedSince(5)).toEqual(new Set(["c"]));
    expect(state.text()).toBe('{"a":10,"b":2,"c":30}');
    expect(state.fieldsText(new Set(["c", "a"]))).toBe('{"a":10,"c":30}');
    expect(state.bytes).toBe(new TextEncoder().encode(state.text()!).byteLength);
    state.advance(7, texts({ a: 1 }), null);
    expect(state.changedSince(6)).toBeNull();
    expect(state.changedSince(7)).toEqual(new Set());
    state.advance(8, null, null);
    expect([state.present, state.text(), state.bytes]).toEqual([false, null, 0]);
  });

  it("remembers the last 64 versions", () => {
    const state = new ObjectState(0, texts({ a: 0 }));
    for (let n = 1; n <= 70; n++) state.advance(n, texts({ a: n }), new Set(["a"]));
    expect(state.changedSince(6)).toEqual(new Set(["a"]));
    expect(state.changedSince(5)).toBeNull();
  });
});

describe("storage, one row per field", () => {
  it("writes only the fields a change set", async () => {
    const id = freshId();
    const path = objectPath("Document", id);
    await api("PUT", path, { state: { content: "x".repeat(100_000) } });
    const stub = env.DOCUMENT.get(env.DOCUMENT.idFromName(id));
    const before = await runInDurableObject(stub, (_instance, state) => state.storage.sql.exec("SELECT name, value FROM durable_fields").toArray());
    expect(before.map((row) => row.name)).toEqual(["content", "version", "editors"]);
    const written = await runInDurableObject(stub, async (instance: DurableModelObject, state) => {
      const changes = () => state.storage.sql.exec<{ n: number }>("SELECT total_changes() AS n").one().n;
      const start = changes();
      await instance.dispatch({ op: "call", method: "join", args: { editor_id: "ann", name: "Ann" }, requestId: null });
      return changes() - start;
    });
    expect(written).toBe(3); // the object's version, the editors field, and the Joined event in the log
    const rows = await runInDurableObject(stub, (_instance, state) => state.storage.sql.exec("SELECT name, value FROM durable_fields WHERE name = 'editors'").one());
    expect(rows.value).toBe('{"ann":"Ann"}');
  });

  it("splits a state stored whole by an earlier version into rows, once", async () => {
    const stub = env.COUNTER.get(env.COUNTER.idFromName(freshId()));
    await runInDurableObject(stub, (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE durable_object");
      sql.exec("DROP TABLE durable_fields");
      sql.exec("CREATE TABLE durable_state (singleton INTEGER PRIMARY KEY CHECK (singleton = 0), version INTEGER NOT NULL, state TEXT)");
      sql.exec("INSERT INTO durable_state VALUES (0, 4, ?)", '{"value":7,"gone":[1]}');
      const store = new ObjectStore(state.storage);
      expect(store.read()).toEqual({ version: 4, fields: new Map([["value", "7"], ["gone", "[1]"]]), schemaVersion: 1 });
      expect(sql.exec("SELECT count(*) AS n FROM sqlite_master WHERE name = 'durable_state'").one().n).toBe(0);
      expect(new ObjectStore(state.storage).read().version).toBe(4);
      sql.exec("DROP TABLE durable_object");
      sql.exec("DROP TABLE durable_fields");
      sql.exec("CREATE TABLE durable_state (singleton INTEGER PRIMARY KEY CHECK (singleton = 0), version INTEGER NOT NULL, state TEXT)");
      sql.exec("INSERT INTO durable_state VALUES (0, 9, NULL)");
      expect(new ObjectStore(state.storage).read()).toEqual({ version: 9, fields: null, schemaVersion: 1 });
    });
  });
});

describe("replies with patches", () => {
  it("a small change to a big state answers, and stores, only what changed", async () => {
    const id = freshId();
    const path = objectPath("Document", id);
    const created = await api("PUT", path, { state: { content: "x".repeat(600_000) } });
    expect(created.body.version).toBe(1);
    const reply = await SELF.fetch(`${ORIGIN}${path}/call/join`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ args: { editor_id: "ann", name: "Ann" }, have: 1 }),
    });
    expect(reply.headers.get("Durable-Features")).toBe("patch");
    const text = await reply.text();
    expect(text).toBe('{"result":["ann"],"version":2,"patch":{"since":1,"set":{"editors":{"ann":"Ann"}}}}');
  });

  it("a body that only reads a field changes nothing, and a mutation in place is seen", async () => {
    const id = freshId();
    const stub = env.DOCUMENT.get(env.DOCUMENT.idFromName(id));
    const replies = await runInDurableObject(stub, async (instance) => {
      const self = instance as unknown as Instance & { state: { content: string; editors: Record<string, string> } };
      self.peek = remote({}, () => self.state.content.length);
      self.poke = remote({}, () => {
        self.state.editors.zed = "Zed";
      });
      self.reorder = remote({}, () => {
        const { a, b } = self.state.editors;
        self.state.editors = { b: b!, a: a! };
      });
      const first = await self.dispatch({ op: "call", method: "peek", args: {}, requestId: null, have: 0 });
      const poked = await self.dispatch({ op: "call", method: "poke", args: {}, requestId: null });
      await self.dispatch({ op: "update", fields: { editors: { a: "A", b: "B" } }, ifVersion: null, requestId: null });
      const reordered = await self.dispatch({ op: "call", method: "reorder", args: {}, requestId: null, have: 2 });
      return [first, poked, reordered].map((reply) => JSON.parse(reply.body));
    });
    expect(replies[0]).toEqual({ result: 0, version: 0, state: null });
    expect(replies[1]).toMatchObject({ version: 1, state: { editors: { zed: "Zed" } } });
    // Members in another order are the same value: no change.
    expect(replies[2]).toEqual({ result: null, version: 2, patch: { since: 2, set: {} } });
  });

  it("refuses a body that deletes a field or adds an unknown one, changing nothing", async () => {
    const id = freshId();
    const stub = env.COUNTER.get(env.COUNTER.idFromName(id));
    const errors = await runInDurableObject(stub, async (instance) => {
      const self = instance as unknown as Instance & { state: Record<string, unknown> };
      self.drop = remote({}, () => {
        delete self.state.value;
      });
      self.grow = remote({}, () => {
        self.state.extra = 1;
      });
      await self.dispatch({ op: "call", method: "increment", args: {}, requestId: null });
      const replies = [
        await self.dispatch({ op: "call", method: "drop", args: {}, requestId: null }),
        await self.dispatch({ op: "call", method: "grow", args: {}, requestId: null }),
      ];
      return replies.map((reply) => JSON.parse(reply.body).error);
    });
    expect(errors[0]).toMatchObject({ code: "invalid_result", details: { errors: [{ loc: ["value"], type: "missing" }] } });
    expect(errors[1]).toMatchObject({ code: "invalid_result", details: { errors: [{ loc: ["extra"], type: "extra_forbidden" }] } });
    expect((await api("GET", objectPath("Counter", id))).body).toEqual({ version: 1, state: { value: 1 } });
  });

  it("keeps the history across calls on one instance: a client far behind gets every field changed since", async () => {
    const id = freshId();
    await api("PUT", objectPath("Document", id), { state: {} });
    await call("Document", id, "join", { editor_id: "ann", name: "Ann" });
    await api("PATCH", objectPath("Document", id), { fields: { content: "c" } });
    expect((await api("GET", `${objectPath("Document", id)}?have=1`)).body).toEqual({
      version: 3,
      patch: { since: 1, set: { content: "c", editors: { ann: "Ann" } } },
    });
  });
});

describe("subscribers with patches", () => {
  it("get a patch when they hold the version before, a snapshot otherwise", async () => {
    const id = freshId();
    await api("PUT", objectPath("Counter", id), { state: { value: 1 } });
    const patched = await connect("Counter", id);
    patched.send(JSON.stringify({ type: "subscribe", since: 1, patches: true }));
    const whole = await connect("Counter", id);
    whole.send(JSON.stringify({ type: "subscribe", since: 1 }));
    const ahead = await connect("Counter", id);
    ahead.send(JSON.stringify({ type: "subscribe", since: 2, patches: true }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await call("Counter", id, "increment");
    await call("Counter", id, "increment");
    expect(await patched.next()).toEqual({ type: "patch", version: 2, since: 1, set: { value: 2 } });
    expect(await patched.next()).toEqual({ type: "patch", version: 3, since: 2, set: { value: 3 } });
    expect(await whole.next()).toEqual({ type: "snapshot", version: 2, state: { value: 2 } });
    expect(await ahead.next()).toEqual({ type: "patch", version: 3, since: 2, set: { value: 3 } });
    for (const socket of [patched, whole, ahead]) socket.close();
  });
});
