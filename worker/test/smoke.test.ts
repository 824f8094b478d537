import { SELF } from "cloudflare:test";
import { expect, it } from "vitest";

it("answers health", async () => {
  const res = await SELF.fetch("http://x/v1/health");
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: "ok", protocol: 1 });
});

it("calls increment", async () => {
  const res = await SELF.fetch("http://x/v1/objects/Counter/a/call/increment", {
    method: "POST",
    headers: { Authorization: "Bearer golden-token", "Content-Type": "application/json" },
    body: JSON.stringify({ args: { by: 2 } }),
  });
  expect(await res.json()).toEqual({ result: 2, version: 1, state: { value: 2 } });
});
