/** Listing the objects of a model: the index in Durable Objects, its query, and that it converges. */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { byCodePoint, parseListQuery, prefixEnd, shardOf } from "../lib/src/listing";
import { api, call, freshId, objectPath } from "./support/client";

/** Every id of `model` with `prefix`, page by page. */
async function listAll(model: string, prefix: string, limit = 7): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const query = `prefix=${encodeURIComponent(prefix)}&limit=${limit}${after === null ? "" : `&after=${encodeURIComponent(after)}`}`;
    const page = await api("GET", `/v1/objects/${model}?${query}`);
    expect(page.status).toBe(200);
    ids.push(...page.body.ids);
    if (page.body.next === null) return ids;
    after = page.body.next;
  }
}

describe("the listing query", () => {
  it("reads prefix, after and limit once decoded, the first of each, others ignored", () => {
    expect(parseListQuery("")).toEqual({ prefix: "", after: null, limit: 100 });
    expect(parseListQuery("prefix=a%2Fb+c&after=&limit=1000&x=y&limit=5")).toEqual({ prefix: "a/b+c", after: null, limit: 1000 });
    expect(parseListQuery("after=%C3%A9&limit=0001")).toEqual({ prefix: "", after: "é", limit: 1 });
    for (const bad of ["limit=0", "limit=1001", "limit=", "limit=1e2", "limit=-1", "limit= 5"]) {
      expect(() => parseListQuery(bad), bad).toThrowError(expect.objectContaining({ code: "bad_request" }));
    }
    for (const bad of ["prefix=%G1", "after=%E0%A4", "prefix=%ED%A0%80"]) {
      expect(() => parseListQuery(bad), bad).toThrowError(expect.objectContaining({ code: "invalid_id" }));
    }
  });

  it("orders ids by their UTF-8 bytes and bounds prefixes", () => {
    expect(["\u{10000}", "\uffff", "é", "b", "a"].sort(byCodePoint)).toEqual(["a", "b", "é", "\uffff", "\u{10000}"]);
    expect(prefixEnd("ab")).toBe("ac");
    expect(prefixEnd("a\u{10ffff}")).toBe("b");
    expect(prefixEnd("\u{10ffff}")).toBeNull();
    expect(prefixEnd("a\ud7ff")).toBe("a\ue000");
    expect(shardOf("x", 4)).toBe(shardOf("x", 4));
  });
});

describe("the index", () => {
  it("lists what exists after concurrent creates, deletes and calls", async () => {
    const prefix = `${freshId("many")}-`;
    const ids = Array.from({ length: 40 }, (_, n) => `${prefix}${String(n).padStart(2, "0")}`);
    await Promise.all(ids.map((id, n) => (n % 3 === 0 ? call("Counter", id, "increment") : api("PUT", objectPath("Counter", id), { state: {} }))));
    await Promise.all(ids.filter((_, n) => n % 4 === 1).map((id) => api("DELETE", objectPath("Counter", id))));
    await Promise.all(ids.filter((_, n) => n % 8 === 1).map((id) => call("Counter", id, "increment")));
    // A read, or a call that changes nothing, makes no state.
    await Promise.all([call("Counter", `${prefix}reset`, "reset"), api("GET", objectPath("Counter", `${prefix}read`))]);
    const truth = ids.filter((_, n) => n % 4 !== 1 || n % 8 === 1);
    expect(await listAll("Counter", prefix)).toEqual(truth);
    expect(await listAll("Counter", prefix, 1000)).toEqual(truth);
  });

  it("converges when a shard was unreachable: the object tells it again from its alarm", async () => {
    const id = freshId("late");
    const shard = env.DURABLE_INDEX.get(env.DURABLE_INDEX.idFromName(`Counter\u0000${shardOf(id)}`));
    // Every shard refuses updates for a while.
    const prototype = await runInDurableObject(shard, (instance) => Object.getPrototypeOf(instance) as Record<string, unknown>);
    const put = prototype.put;
    prototype.put = async () => {
      throw new Error("the shard is down");
    };
    expect((await call("Counter", id, "increment")).body.version).toBe(1);
    expect(await listAll("Counter", id)).toEqual([]);
    const object = env.COUNTER.get(env.COUNTER.idFromName(id));
    const alarm = await runInDurableObject(object, (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    prototype.put = put;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, alarm! - Date.now())));
    await runDurableObjectAlarm(object);
    expect(await listAll("Counter", id)).toEqual([id]);
    await api("DELETE", objectPath("Counter", id));
    expect(await listAll("Counter", id)).toEqual([]);
  });
});
