import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, call, connect, freshId, objectPath, ORIGIN, TOKEN } from "./support/client";
import type { Closed } from "./support/sockets";
import type { FrameQueue } from "./support/sockets";
import { remote, t, type DurableModelObject } from "../lib/src";

/** A model instance that a test extends with methods of its own. */
type Extended = DurableModelObject & Record<string, unknown> & { emit(name: string, data: object): void };

function counterStub(id: string): DurableObjectStub<DurableModelObject> {
  return env.COUNTER.get(env.COUNTER.idFromName(id));
}

/** Adds `burst(n)` to a fresh Counter: emits n events and changes nothing else. */
async function withBurst(id: string): Promise<void> {
  await runInDurableObject(counterStub(id), (instance) => {
    const self = instance as unknown as Extended;
    self.burst = remote({ n: t.int }, ({ n }) => {
      for (let i = 0; i < n; i++) self.emit("Posted", { author: "tick", text: String(i) });
    });
  });
}

// A client socket living in the test's own isolate may deliver frames that are
// sent back to back out of order (over a real connection they arrive in order),
// so these tests wait for each reply before sending the next frame.

/**
 * Subscribes and returns the frames the subscription sent (its snapshot, if
 * any). The subscribe frame goes twice: whichever arrives first subscribes, the
 * other is refused, and that refusal shows both were handled.
 */
async function subscribe(ws: FrameQueue, frame: object = {}): Promise<unknown[]> {
  const text = JSON.stringify({ type: "subscribe", ...frame });
  ws.send(text);
  ws.send(text);
  const frames: unknown[] = [];
  for (;;) {
    const next = (await ws.next()) as { type?: string; id?: unknown };
    if (next.type === "error" && next.id === null) return frames;
    frames.push(next);
  }
}

/** Calls a method over the socket and returns every frame up to its reply. */
async function callOver(ws: FrameQueue, id: number, method: string, args: object): Promise<unknown[]> {
  ws.send(JSON.stringify({ type: "call", id, method, args }));
  const frames: unknown[] = [];
  for (;;) {
    const next = (await ws.next()) as { type?: string; id?: unknown };
    frames.push(next);
    if ((next.type === "result" || next.type === "error") && next.id === id) return frames;
  }
}

/** Sends a ping and reads frames up to its pong: what arrived in between. */
async function drain(ws: FrameQueue): Promise<unknown[]> {
  ws.send('{"type": "ping"}');
  const frames: unknown[] = [];
  for (;;) {
    const frame = await ws.next();
    if ((frame as { type?: string }).type === "pong") return frames;
    frames.push(frame);
  }
}

describe("subscriptions", () => {
  it("send each change's snapshot before its events, and both before the call's result", async () => {
    const id = freshId();
    const ws = await connect("Document", id);
    expect(await subscribe(ws, { since: null })).toEqual([{ type: "snapshot", version: 0, state: null }]);
    const frames = [
      ...(await callOver(ws, 1, "join", { editor_id: "ann", name: "Ann" })),
      ...(await callOver(ws, 2, "edit", { editor_id: "ann", content: "hi", version: 1 })),
    ];
    expect(frames.map((f) => [(f as { type: string }).type, (f as { version: number }).version])).toEqual([
      ["snapshot", 1],
      ["event", 1],
      ["result", 1],
      ["snapshot", 2],
      ["event", 2],
      ["result", 2],
    ]);
    expect(frames[4]).toEqual({ type: "event", version: 2, index: 0, count: 1, name: "Edited", data: { editor_id: "ann", version: 1 } });
    ws.close();
  });

  it("deliver changes made by other clients, filtered by the subscription", async () => {
    const id = freshId();
    const all = await connect("Document", id);
    const eventsOnly = await connect("Document", id);
    const snapshotsOnly = await connect("Document", id);
    const nothing = await connect("Document", id);
    expect(await subscribe(all, { since: 0 })).toEqual([]);
    expect(await subscribe(eventsOnly, { since: null, snapshots: false })).toEqual([]);
    expect(await subscribe(snapshotsOnly, { since: 0, events: false })).toEqual([]);
    await call("Document", id, "join", { editor_id: "bob", name: "Bob" });
    const joined = { type: "event", version: 1, index: 0, count: 1, name: "Joined", data: { editor_id: "bob", name: "Bob" } };
    const snapshot = { type: "snapshot", version: 1, state: { content: "", version: 0, editors: { bob: "Bob" } } };
    expect(await drain(all)).toEqual([snapshot, joined]);
    expect(await drain(eventsOnly)).toEqual([joined]);
    expect(await drain(snapshotsOnly)).toEqual([snapshot]);
    expect(await drain(nothing)).toEqual([]);
    [all, eventsOnly, snapshotsOnly, nothing].forEach((ws) => ws.close());
  });

  it("resume with the current snapshot, skipping versions, then the events logged since", async () => {
    const id = freshId();
    const first = await connect("Document", id);
    expect(await subscribe(first)).toHaveLength(1);
    await call("Document", id, "join", { editor_id: "ann", name: "Ann" });
    expect(await drain(first)).toHaveLength(2);
    first.close();
    await call("Document", id, "join", { editor_id: "bob", name: "Bob" });
    await call("Document", id, "leave", { editor_id: "ann" });
    const second = await connect("Document", id);
    expect(await subscribe(second, { since: 1 })).toEqual([
      { type: "snapshot", version: 3, state: { content: "", version: 0, editors: { bob: "Bob" } } },
      { type: "event", version: 2, index: 0, count: 1, name: "Joined", data: { editor_id: "bob", name: "Bob" } },
      { type: "event", version: 3, index: 0, count: 1, name: "Left", data: { editor_id: "ann" } },
    ]);
    const third = await connect("Document", id);
    expect(await subscribe(third, { since: 3 })).toEqual([]);
    [second, third].forEach((ws) => ws.close());
  });

  it("send the events of a call that left the state equal with a new version and its snapshot", async () => {
    const id = freshId();
    const ws = await connect("Counter", id);
    expect(await subscribe(ws, { since: null })).toEqual([{ type: "snapshot", version: 0, state: null }]);
    const reply = await runInDurableObject(counterStub(id), (instance) => {
      const self = instance as unknown as Extended;
      self.shout = remote({}, () => self.emit("Posted", { author: "a", text: "loud" }));
      return self.dispatch({ op: "call", method: "shout", args: {}, requestId: null });
    });
    expect(JSON.parse(reply.body)).toEqual({ result: null, version: 1, state: null });
    expect(await drain(ws)).toEqual([
      { type: "snapshot", version: 1, state: null },
      { type: "event", version: 1, index: 0, count: 1, name: "Posted", data: { author: "a", text: "loud" } },
    ]);
    ws.close();
  });

  it("send nothing at or below `since` until the object's version passes it", async () => {
    const id = freshId();
    const ws = await connect("Document", id);
    expect(await subscribe(ws, { since: 2 })).toEqual([]);
    const frames = [
      ...(await callOver(ws, 1, "join", { editor_id: "ann", name: "Ann" })),
      ...(await callOver(ws, 2, "join", { editor_id: "bob", name: "Bob" })),
      ...(await callOver(ws, 3, "leave", { editor_id: "ann" })),
    ];
    expect(frames.map((f) => [(f as { type: string }).type, (f as { version: number }).version])).toEqual([
      ["result", 1],
      ["result", 2],
      ["snapshot", 3],
      ["event", 3],
      ["result", 3],
    ]);
    ws.close();
  });

  it("send a null snapshot after a delete", async () => {
    const id = freshId();
    await call("Counter", id, "increment");
    const ws = await connect("Counter", id);
    expect(await subscribe(ws, { since: 1 })).toEqual([]);
    await api("DELETE", objectPath("Counter", id));
    expect(await drain(ws)).toEqual([{ type: "snapshot", version: 2, state: null }]);
    ws.close();
  });

  it("allow one subscribe per connection", async () => {
    const ws = await connect("Counter", freshId());
    ws.send('{"type":"subscribe"}');
    expect(await ws.next()).toMatchObject({ type: "snapshot", version: 0 });
    ws.send('{"type":"subscribe","since":0}');
    expect(await ws.next()).toMatchObject({ type: "error", id: null, error: { code: "bad_request", message: "this connection is already subscribed" } });
    ws.close();
  });
});

describe("frames", () => {
  it("answer pings however they are spelled", async () => {
    const ws = await connect("Counter", freshId());
    ws.send('{"type":"ping"}');
    expect(await ws.next()).toEqual({ type: "pong" });
    ws.send('{ "type" : "ping" }');
    expect(await ws.next()).toEqual({ type: "pong" });
    ws.close();
  });

  it("close the connection with 1003 on a binary frame", async () => {
    const ws = await connect("Counter", freshId());
    ws.send(new TextEncoder().encode('{"type":"ping"}').buffer as ArrayBuffer);
    expect(await ws.next()).toMatchObject({ closed: true, code: 1003 });
  });

  it("close the connection with 1009 on a frame over 1 MiB", async () => {
    const ws = await connect("Counter", freshId());
    ws.send(JSON.stringify({ type: "call", id: 1, method: "increment", args: { by: 1 }, request_id: "x".repeat(1_048_576) }));
    expect(await ws.next()).toMatchObject({ closed: true, code: 1009 });
  });

  it("read a frame of exactly 1 MiB", async () => {
    const ws = await connect("Counter", freshId());
    const head = '{"type":"call","id":3,"method":"increment","pad":"';
    const frame = head + "x".repeat(1_048_576 - head.length - 2) + '"}';
    expect(frame.length).toBe(1_048_576);
    ws.send(frame);
    expect(await ws.next()).toMatchObject({ type: "error", id: 3, error: { code: "bad_request" } });
    ws.close();
  });

  it("carry call errors with their id and keep the connection open", async () => {
    const id = freshId();
    const ws = await connect("Document", id);
    const [refused] = await callOver(ws, 8, "edit", { editor_id: "zed", content: "x", version: 1 });
    expect(refused).toMatchObject({ type: "error", id: 8, error: { code: "remote_error", details: { type: "PermissionError" } } });
    const [joined] = await callOver(ws, 9, "join", { editor_id: "zed", name: "Zed" });
    expect(joined).toMatchObject({ type: "result", id: 9, result: ["zed"], version: 1 });
    ws.close();
  });
});

describe("bounds per connection", () => {
  /** Reads frames until the socket closes; returns how many came first and the close. */
  async function untilClosed(ws: FrameQueue): Promise<[number, Closed]> {
    for (let count = 0; ; count++) {
      const frame = (await ws.next()) as Partial<Closed>;
      if (frame.closed === true) return [count, frame as Closed];
    }
  }

  it("close a socket with 4008 once 1,000 frames were sent since the client's last ping", async () => {
    const id = freshId();
    await withBurst(id);
    const ws = await connect("Counter", id);
    // No ping from here on. Frame 1: the refusal of the second subscribe frame.
    expect(await subscribe(ws, { since: 0, snapshots: false })).toEqual([]);
    // Frames 2 to 999: one event frame per emitted event for a subscriber without snapshots.
    await call("Counter", id, "burst", { n: 998 });
    for (let i = 0; i < 998; i++) expect(await ws.next()).toMatchObject({ type: "event" });
    // Frame 1,000 is sent; frame 1,001 is not: the socket is closed instead.
    await call("Counter", id, "burst", { n: 2 });
    const [read, closed] = await untilClosed(ws);
    expect(read).toBe(1);
    expect(closed.code).toBe(4008);
  });

  it("count from the client's last ping, answered by the runtime or by the object", async () => {
    const id = freshId();
    await withBurst(id);
    const ws = await connect("Counter", id);
    expect(await subscribe(ws, { since: 0, snapshots: false })).toEqual([]);
    for (const ping of ['{"type":"ping"}', '{ "type": "ping" }', '{"type":"ping"}']) {
      await call("Counter", id, "burst", { n: 700 });
      ws.send(ping);
      for (let i = 0; i < 700; i++) expect(await ws.next()).toMatchObject({ type: "event" });
      expect(await ws.next()).toEqual({ type: "pong" });
    }
    expect(await drain(ws)).toEqual([]);
    ws.close();
  });

  it("answer calls beyond 256 waiting on one connection with overloaded, and run none of them", async () => {
    const id = freshId();
    await runInDurableObject(counterStub(id), (instance) => {
      const self = instance as unknown as Extended;
      let open: () => void = () => {};
      const gate = new Promise<void>((resolve) => (open = resolve));
      self.open = open;
      self.wait = remote({}, t.int, async () => {
        await gate;
        return 1;
      });
    });
    const ws = await connect("Counter", id);
    for (let n = 0; n < 257; n++) ws.send(JSON.stringify({ type: "call", id: n, method: "wait" }));
    const refused = (await ws.next()) as { type: string; id: number; error: { code: string; retryable: boolean } };
    expect(refused).toMatchObject({ type: "error", error: { code: "overloaded", retryable: false } });
    await runInDurableObject(counterStub(id), (instance) => (instance as unknown as { open(): void }).open());
    const ids = new Set<number>();
    for (let n = 0; n < 256; n++) {
      const frame = (await ws.next()) as { type: string; id: number };
      expect(frame.type).toBe("result");
      ids.add(frame.id);
    }
    expect(ids.size).toBe(256);
    expect(ids.has(refused.id)).toBe(false);
    ws.close();
  });

  it("close every socket with 1001 when the server goes away", async () => {
    const id = freshId();
    const [a, b] = [await connect("Counter", id), await connect("Counter", id)];
    expect(await runInDurableObject(counterStub(id), (instance) => instance.goAway())).toBe(2);
    for (const ws of [a, b]) expect(await ws.next()).toMatchObject({ closed: true, code: 1001 });
  });
});

describe("handshakes", () => {
  it("are refused before upgrading when the token is wrong", async () => {
    const res = await SELF.fetch(`${ORIGIN}${objectPath("Counter", freshId())}/ws`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${TOKEN}x` },
    });
    expect(res.status).toBe(401);
    expect(res.webSocket).toBeNull();
  });

  it("are refused for bad object ids", async () => {
    const res = await SELF.fetch(`${ORIGIN}/v1/objects/Counter/a%00b/ws`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(400);
    expect(res.webSocket).toBeNull();
  });
});
