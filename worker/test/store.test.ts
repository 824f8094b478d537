import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEFAULT_RETENTION, type DurableModelObject } from "../lib/src";
import { ObjectStore, type Commit, type Remembered } from "../lib/src/store";
import { call, freshId } from "./support/client";

/** The record of call `n`, which made version `n` and returned `n`. */
const record = (n: number, requestId = `r${n}`): Remembered => ({
  requestId,
  digest: `d${n}`,
  kind: "call",
  status: 200,
  version: n,
  result: String(n),
});

/** Version `version`, replacing the state with `fields` (texts by name). */
const write = (version: number, fields: Record<string, string> = {}): Commit => ({ version, fields: new Map(Object.entries(fields)), replace: true });

function counterStub(id: string) {
  return env.COUNTER.get(env.COUNTER.idFromName(id));
}

describe("ObjectStore", () => {
  it("writes state, version and request id together", async () => {
    await runInDurableObject(counterStub(freshId()), (_instance, state) => {
      const store = new ObjectStore(state.storage);
      expect(store.read()).toEqual({ version: 0, fields: null, schemaVersion: 1 });
      store.commit(write(1, { value: "1" }), record(1));
      expect(store.read()).toEqual({ version: 1, fields: new Map([["value", "1"]]), schemaVersion: 1 });
      expect(store.recall("r1")).toEqual(record(1));
      expect(store.recall("r2")).toBeNull();
    });
  });

  it("keeps only the newest entries", async () => {
    await runInDurableObject(counterStub(freshId()), (_instance, state) => {
      const store = new ObjectStore(state.storage, { maxEntries: 5, maxAgeMs: 60_000, maxResultBytes: 1_000 });
      for (let n = 1; n <= 8; n++) store.commit(write(n), record(n));
      expect(store.rememberedCount()).toBe(5);
      expect(store.recall("r3")).toBeNull();
      expect(store.recall("r4")).toEqual(record(4));
      expect(store.recall("r8")).toEqual(record(8));
    });
  });

  it("forgets entries older than the maximum age", async () => {
    await runInDurableObject(counterStub(freshId()), (_instance, state) => {
      let now = 1_000_000;
      const store = new ObjectStore(state.storage, { ...DEFAULT_RETENTION, maxEntries: 100, maxAgeMs: 1_000 }, () => now);
      store.commit(write(1), record(1, "old"));
      now += 600;
      store.commit(write(2), record(2, "young"));
      now += 400;
      expect(store.recall("old")).toBeNull();
      expect(store.pruneExpired()).toBe(1_000_600 + 1_000);
      expect(store.rememberedCount()).toBe(1);
      now += 600;
      expect(store.pruneExpired()).toBeNull();
      expect(store.rememberedCount()).toBe(0);
    });
  });

  it("keeps results within their byte budget, oldest forgotten first", async () => {
    await runInDurableObject(counterStub(freshId()), (_instance, state) => {
      const store = new ObjectStore(state.storage, { ...DEFAULT_RETENTION, maxResultBytes: 100 });
      const sized = (n: number, bytes: number): Remembered => ({ ...record(n), result: JSON.stringify("é".repeat((bytes - 2) / 2)) });
      store.commit(write(1), sized(1, 40));
      store.commit(write(2), sized(2, 40));
      store.commit(write(3), { ...record(3), kind: "delete", result: null });
      expect(store.rememberedResultBytes()).toBe(80);
      store.commit(write(4), sized(4, 40));
      // 120 bytes is over the budget: the oldest record goes, the record without a result stays.
      expect(store.recall("r1")).toBeNull();
      expect(store.recall("r2")?.version).toBe(2);
      expect(store.recall("r3")?.kind).toBe("delete");
      expect(store.rememberedResultBytes()).toBe(80);
      expect(new ObjectStore(state.storage).rememberedResultBytes()).toBe(80);
    });
  });

  it("keeps the records of reply bodies written before digests, matching any operation", async () => {
    await runInDurableObject(counterStub(freshId()), (_instance, state) => {
      state.storage.sql.exec("DROP TABLE durable_requests");
      state.storage.sql.exec(
        "CREATE TABLE durable_requests (seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, status INTEGER NOT NULL, body TEXT NOT NULL, stored_at INTEGER NOT NULL)",
      );
      const now = Date.now();
      const rows: [string, number, string][] = [
        ["c", 200, '{"result":[1,"x"],"version":3,"state":{"value":3}}'],
        ["p", 201, '{"version":1,"state":{"value":1}}'],
        ["u", 200, '{"version":2,"state":{"value":2}}'],
        ["d", 200, '{"deleted":true,"version":4,"state":null}'],
      ];
      for (const [id, status, body] of rows) {
        state.storage.sql.exec("INSERT INTO durable_requests (request_id, status, body, stored_at) VALUES (?, ?, ?, ?)", id, status, body, now);
      }
      const store = new ObjectStore(state.storage);
      expect(store.recall("c")).toEqual({ requestId: "c", digest: null, kind: "call", status: 200, version: 3, result: '[1,"x"]' });
      expect(store.recall("p")).toMatchObject({ kind: "create", status: 201, version: 1, result: null });
      expect(store.recall("u")).toMatchObject({ kind: "update", version: 2 });
      expect(store.recall("d")).toMatchObject({ kind: "delete", version: 4 });
      expect(store.rememberedResultBytes()).toBe(7);
    });
  });
});

describe("request id retention in objects", () => {
  it("bounds the table at 10,000 entries", async () => {
    const stub = counterStub(freshId());
    const count = await runInDurableObject(stub, async (instance: DurableModelObject, state) => {
      for (let n = 0; n < DEFAULT_RETENTION.maxEntries + 50; n++) {
        await instance.dispatch({ op: "call", method: "increment", args: {}, requestId: `r-${n}` });
      }
      return new ObjectStore(state.storage).rememberedCount();
    });
    expect(count).toBe(10_000);
    expect((await call("Counter", "unused-" + freshId(), "increment")).status).toBe(200);
  }, 60_000);

  it("prunes expired entries with an alarm, after which the request id runs again", async () => {
    const id = freshId();
    const stub = counterStub(id);
    expect((await call("Counter", id, "increment", {}, "once")).body.version).toBe(1);
    expect((await call("Counter", id, "increment", {}, "once")).body.version).toBe(1);
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("UPDATE durable_requests SET stored_at = stored_at - ?", DEFAULT_RETENTION.maxAgeMs + 1);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const remaining = await runInDurableObject(stub, (_instance, state) => new ObjectStore(state.storage).rememberedCount());
    expect(remaining).toBe(0);
    expect((await call("Counter", id, "increment", {}, "once")).body.version).toBe(2);
  });

  it("schedules the next pruning while entries remain", async () => {
    const id = freshId();
    const stub = counterStub(id);
    await call("Counter", id, "increment", {}, "kept");
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const alarm = await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
    expect(alarm).toBeGreaterThan(Date.now() + DEFAULT_RETENTION.maxAgeMs - 60_000);
    expect((await call("Counter", id, "increment", {}, "kept")).body.version).toBe(1);
  });
});
