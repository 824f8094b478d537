import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, call, connect, freshId, objectPath, ORIGIN, TOKEN } from "./support/client";
import type { FrameQueue } from "./support/sockets";

const subscribe = (ws: FrameQueue, frame: object = {}) => ws.send(JSON.stringify({ type: "subscribe", ...frame }));

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
    subscribe(ws, { since: null });
    expect(await ws.next()).toEqual({ type: "snapshot", version: 0, state: null });
    ws.send(JSON.stringify({ type: "call", id: 1, method: "join", args: { editor_id: "ann", name: "Ann" } }));
    ws.send(JSON.stringify({ type: "call", id: 2, method: "edit", args: { editor_id: "ann", content: "hi", version: 1 } }));
    const frames = [];
    for (let n = 0; n < 6; n++) frames.push(await ws.next());
    expect(frames.map((f) => [(f as { type: string }).type, (f as { version: number }).version])).toEqual([
      ["snapshot", 1],
      ["event", 1],
      ["result", 1],
      ["snapshot", 2],
      ["event", 2],
      ["result", 2],
    ]);
    expect(frames[4]).toEqual({ type: "event", version: 2, name: "Edited", data: { editor_id: "ann", version: 1 } });
    ws.close();
  });

  it("deliver changes made by other clients, filtered by the subscription", async () => {
    const id = freshId();
    const all = await connect("Document", id);
    const eventsOnly = await connect("Document", id);
    const snapshotsOnly = await connect("Document", id);
    const nothing = await connect("Document", id);
    subscribe(all, { since: 0 });
    subscribe(eventsOnly, { since: null, snapshots: false });
    subscribe(snapshotsOnly, { since: 0, events: false });
    await Promise.all([all, eventsOnly, snapshotsOnly, nothing].map(drain));
    await call("Document", id, "join", { editor_id: "bob", name: "Bob" });
    const joined = { type: "event", version: 1, name: "Joined", data: { editor_id: "bob", name: "Bob" } };
    const snapshot = { type: "snapshot", version: 1, state: { content: "", version: 0, editors: { bob: "Bob" } } };
    expect(await drain(all)).toEqual([snapshot, joined]);
    expect(await drain(eventsOnly)).toEqual([joined]);
    expect(await drain(snapshotsOnly)).toEqual([snapshot]);
    expect(await drain(nothing)).toEqual([]);
    [all, eventsOnly, snapshotsOnly, nothing].forEach((ws) => ws.close());
  });

  it("resume with the current snapshot only, skipping versions and never replaying events", async () => {
    const id = freshId();
    const first = await connect("Document", id);
    subscribe(first);
    await first.next();
    await call("Document", id, "join", { editor_id: "ann", name: "Ann" });
    expect(await drain(first)).toHaveLength(2);
    first.close();
    await call("Document", id, "join", { editor_id: "bob", name: "Bob" });
    await call("Document", id, "leave", { editor_id: "ann" });
    const second = await connect("Document", id);
    subscribe(second, { since: 1 });
    expect(await drain(second)).toEqual([{ type: "snapshot", version: 3, state: { content: "", version: 0, editors: { bob: "Bob" } } }]);
    const third = await connect("Document", id);
    subscribe(third, { since: 3 });
    expect(await drain(third)).toEqual([]);
    [second, third].forEach((ws) => ws.close());
  });

  it("send a null snapshot after a delete", async () => {
    const id = freshId();
    await call("Counter", id, "increment");
    const ws = await connect("Counter", id);
    subscribe(ws, { since: 1 });
    await api("DELETE", objectPath("Counter", id));
    expect(await drain(ws)).toEqual([{ type: "snapshot", version: 2, state: null }]);
    ws.close();
  });

  it("allow one subscribe per connection", async () => {
    const ws = await connect("Counter", freshId());
    subscribe(ws);
    await ws.next();
    subscribe(ws);
    expect(await ws.next()).toMatchObject({ type: "error", id: null, error: { code: "bad_request" } });
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
    ws.send(JSON.stringify({ type: "call", id: 8, method: "edit", args: { editor_id: "zed", content: "x", version: 1 } }));
    expect(await ws.next()).toMatchObject({ type: "error", id: 8, error: { code: "remote_error", details: { type: "PermissionError" } } });
    ws.send(JSON.stringify({ type: "call", id: 9, method: "join", args: { editor_id: "zed", name: "Zed" } }));
    expect(await ws.next()).toMatchObject({ type: "result", id: 9, result: ["zed"], version: 1 });
    ws.close();
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
