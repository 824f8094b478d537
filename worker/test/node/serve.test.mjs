// Starts lib/scripts/serve.mjs as a real process, as the Python tests do.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { serve, stopped } from "./support/server.mjs";

const persist = mkdtempSync(join(tmpdir(), "durable-serve-"));

afterAll(() => rmSync(persist, { recursive: true, force: true }));

async function call(url, token, path, init = {}) {
  const res = await fetch(url + path, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...init.headers },
  });
  return { status: res.status, protocol: res.headers.get("Durable-Protocol"), body: await res.json() };
}

describe("lib/scripts/serve.mjs", () => {
  it("prints one JSON line with its URL, serves the Worker, and stops on SIGTERM", async () => {
    const { child, url, line, ms } = await serve(["--port", "0", "--persist", persist, "--token", "t"]);
    try {
      expect(line).toMatch(/^\{"url": "http:\/\/127\.0\.0\.1:\d+"\}$/);
      expect(ms).toBeLessThan(5_000);
      const read = await call(url, "t", "/v1/objects/Counter/kept");
      expect(read).toEqual({ status: 200, protocol: "1", body: { version: 0, state: null } });
      const unauthorized = await call(url, "wrong", "/v1/objects/Counter/kept");
      expect(unauthorized.status).toBe(401);
      const inc = await call(url, "t", "/v1/objects/Counter/kept/call/increment", { method: "POST", body: '{"args": {"by": 7}}' });
      expect(inc.body).toEqual({ result: 7, version: 1, state: { value: 7 } });
    } finally {
      const exit = stopped(child);
      child.kill("SIGTERM");
      expect(await exit).toEqual({ code: 0, signal: null });
    }
  });

  it("keeps state across a restart on the same --persist folder, and stops when stdin closes", async () => {
    const { child, url } = await serve(["--persist", persist, "--token", "t"]);
    const read = await call(url, "t", "/v1/objects/Counter/kept");
    expect(read.body).toEqual({ version: 1, state: { value: 7 } });
    const exit = stopped(child);
    child.stdin.end();
    expect(await exit).toEqual({ code: 0, signal: null });
  });

  it("takes its runtime down when it is killed, so the port and storage can be reused", async () => {
    const first = await serve(["--persist", persist, "--token", "t"]);
    const port = new URL(first.url).port;
    await call(first.url, "t", "/v1/objects/Counter/kept/call/increment", { method: "POST", body: "{}" });
    const exit = stopped(first.child);
    first.child.kill("SIGKILL");
    await exit;
    const second = await serve(["--port", port, "--persist", persist, "--token", "t"]);
    try {
      expect(second.url).toBe(first.url);
      expect((await call(second.url, "t", "/v1/objects/Counter/kept")).body).toEqual({ version: 2, state: { value: 8 } });
    } finally {
      const done = stopped(second.child);
      second.child.kill("SIGTERM");
      await done;
    }
  });
});
