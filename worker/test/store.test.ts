import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEFAULT_RETENTION, type DurableModelObject } from "../lib/src";
import { ObjectStore } from "../lib/src/store";
import { call, freshId } from "./support/client";

const reply = (n: number) => ({ status: 200, body: `{"n":${n}}` });

function counterStub(id: string) {
  return env.COUNTER.get(env.COUNTER.idFromName(id));
}

describe("ObjectStore", () => {
  it("writes state, version and request id together", async () => {
    await runInDurableObject(counterStub(freshId()), (_instance, state) => {
      const store = new ObjectStore(state.storage);
      expect(store.read()).toEqual({ version: 0, stateJson: null });
      store.commit({ version: 1, stateJson: '{"value":1}' }, { requestId: "r1", reply: reply(1) });
      expect(store.read()).toEqual({ version: 1, stateJson: '{"value":1}' });
      expect(store.recall("r1")).toEqual(reply(1));
      expect(store.recall("r2")).toBeNull();
    });
  });

  it("keeps only the newest entries", async () => {
    await runInDurableObject(counterStub(freshId()), (_instance, state) => {
      const store = new ObjectStore(state.storage, { maxEntries: 5, maxAgeMs: 60_000 });
      for (let n = 1; n <= 8; n++) store.commit({ version: n, stateJson: "{}" }, { requestId: `r${n}`, reply: reply(n) });
      expect(store.rememberedCount()).toBe(5);
      expect(store.recall("r3")).toBeNull();
      expect(store.recall("r4")).toEqual(reply(4));
      expect(store.recall("r8")).toEqual(reply(8));
    });
  });

  it("forgets entries older than the maximum age", async () => {
    await runInDurableObject(counterStub(freshId()), (_instance, state) => {
      let now = 1_000_000;
      const store = new ObjectStore(state.storage, { maxEntries: 100, maxAgeMs: 1_000 }, () => now);
      store.commit({ version: 1, stateJson: "{}" }, { requestId: "old", reply: reply(1) });
      now += 600;
      store.commit({ version: 2, stateJson: "{}" }, { requestId: "young", reply: reply(2) });
      now += 400;
      expect(store.recall("old")).toBeNull();
      expect(store.pruneExpired()).toBe(1_000_600 + 1_000);
      expect(store.rememberedCount()).toBe(1);
      now += 600;
      expect(store.pruneExpired()).toBeNull();
      expect(store.rememberedCount()).toBe(0);
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
