// scripts/serve.mjs over raw sockets: what only a real connection shows (paths as
// sent, handshakes, close frames, bodies cut off, the server's own settings).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { head, open, readReply, request, websocket } from "./support/raw.mjs";
import { serve, stop, stopped } from "./support/server.mjs";

const AUTH = { Authorization: "Bearer t" };
const MiB = 1_048_576;

describe("serve.mjs with a token", () => {
  let server;
  beforeAll(async () => {
    server = await serve(["--token", "t", "--allow-origin", "https://app.example"]);
  });
  afterAll(async () => {
    if (server) await stop(server.child);
  });

  it("routes on the path as sent: %2E%2E segments reach no other object, %G1 is invalid_id", async () => {
    const put = await request(server.url, "PUT", "/v1/objects/Counter/dots", { ...AUTH, "Content-Type": "application/json" }, Buffer.from('{"state":{"value":7}}'));
    expect(put.status).toBe(201);
    for (const path of ["/v1/objects/Counter/decoy/%2E%2E/dots", "/v1/objects/Counter/decoy/.%2e/dots", "/v1/objects/Counter/dots/call/x/%2e%2e/reset"]) {
      const reply = await request(server.url, "DELETE", path, AUTH);
      expect([reply.status, reply.json().error.code], path).toEqual([404, "not_found"]);
    }
    for (const path of ["/v1/objects/Counter/%2E%2E", "/v1/objects/Counter/%G1", "/v1/objects/Counter/%E0%A4"]) {
      const reply = await request(server.url, "GET", path, AUTH);
      expect([reply.status, reply.json().error.code], path).toEqual([400, "invalid_id"]);
    }
    expect((await request(server.url, "GET", "/v1/objects/Counter/dots", AUTH)).json()).toEqual({ version: 1, state: { value: 7 } });
  });

  it("declines permessage-deflate", async () => {
    const ws = await websocket(server.url, "/v1/objects/Counter/deflate/ws", { ...AUTH, "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits" });
    expect(ws.reply.status).toBe(101);
    expect(ws.reply.headers["sec-websocket-extensions"]).toBeUndefined();
    ws.send('{"type":"subscribe"}');
    expect(JSON.parse((await ws.next()).text)).toEqual({ type: "snapshot", version: 0, state: null });
    ws.close();
  });

  it("refuses handshakes from other Origins, and takes its own and allowed ones", async () => {
    const refused = await websocket(server.url, "/v1/objects/Counter/origin/ws", { ...AUTH, Origin: "https://attacker.example" });
    expect([refused.reply.status, refused.reply.json().error.code]).toEqual([403, "forbidden"]);
    refused.socket.destroy();
    for (const origin of ["https://app.example", "http://127.0.0.1"]) {
      const ws = await websocket(server.url, "/v1/objects/Counter/origin/ws", { ...AUTH, Origin: origin });
      expect(ws.reply.status, origin).toBe(101);
      ws.close();
    }
  });

  it("serves objects at once after chunked uploads cut off at the size limit", async () => {
    // Each upload is refused at 1 MiB while the client still sends (and sometimes
    // leaves or resets the connection); the request right after must not wait.
    const chunk = (size) => Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), Buffer.alloc(size, 0x79), Buffer.from("\r\n")]);
    for (let round = 0; round < 100; round++) {
      const size = [65_536, 100_000, 16_384, MiB + 1][round % 4];
      const chunks = Array.from({ length: Math.ceil((MiB + 70_000) / size) }, () => chunk(size));
      const socket = await open(server.url);
      socket.on("error", () => {});
      socket.write(head("POST", `/v1/objects/Counter/upload-${round % 5}/call/increment`, { ...AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked" }));
      socket.write(Buffer.concat(chunks));
      if (round % 3 === 0) socket.write("0\r\n\r\n");
      if (round % 3 === 2) {
        socket.resetAndDestroy();
      } else {
        const reply = await readReply(socket, 10_000);
        if (reply !== null) expect(reply.status).toBe(413);
        socket.destroy();
      }
      const started = performance.now();
      const read = await request(server.url, "GET", `/v1/objects/Counter/upload-${round % 5}`, AUTH, undefined, 5_000);
      const called = await request(server.url, "POST", `/v1/objects/Counter/after-${round}/call/increment`, AUTH, undefined, 5_000);
      expect([read.status, called.status], `round ${round}`).toEqual([200, 200]);
      expect(performance.now() - started).toBeLessThan(5_000);
    }
  }, 120_000);
});

describe("serve.mjs without a token", () => {
  let server;
  beforeAll(async () => {
    server = await serve([]);
  });
  afterAll(async () => {
    if (server) await stop(server.child);
  });

  it("serves loopback Host names only", async () => {
    for (const host of ["127.0.0.1", "localhost:8787", "[::1]"]) {
      const reply = await request(server.url, "GET", "/v1/objects/Counter/anon", { Host: host });
      expect(reply.status, host).toBe(200);
    }
    const rebound = await request(server.url, "GET", "/v1/objects/Counter/anon", { Host: "attacker.example" });
    expect([rebound.status, rebound.json().error.code]).toEqual([403, "forbidden"]);
  });
});

describe("serve.mjs settings and shutdown", () => {
  it("refuses an empty token", async () => {
    await expect(serve(["--token", ""])).rejects.toThrow(/exited with 1/);
  });

  it("closes every WebSocket with 1001 when it stops", async () => {
    const server = await serve(["--token", "t"]);
    const sockets = [await websocket(server.url, "/v1/objects/Counter/bye/ws", AUTH), await websocket(server.url, "/v1/objects/Document/bye/ws", AUTH)];
    for (const ws of sockets) {
      ws.send('{"type":"subscribe"}');
      expect(JSON.parse((await ws.next()).text)).toMatchObject({ type: "snapshot" });
    }
    const exit = stopped(server.child);
    server.child.kill("SIGTERM");
    for (const ws of sockets) expect(await ws.next()).toEqual({ close: 1001 });
    expect(await exit).toEqual({ code: 0, signal: null });
  });
});
