// The golden cases over real sockets, against lib/scripts/serve.mjs.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { fetch } from "miniflare";
import { afterAll, beforeAll, describe, it } from "vitest";
import { runCase } from "../support/golden.ts";
import { request } from "./support/raw.mjs";
import { serve, stop } from "./support/server.mjs";

const golden = (name) => JSON.parse(readFileSync(new URL(`../../../docs/golden/${name}.json`, import.meta.url), "utf8"));
const runId = randomUUID().slice(0, 8);
let server;
const target = {
  origin: "",
  fetch: (url, init) => fetch(url, init),
  async raw(method, path, headers, body) {
    const reply = await request(target.origin, method, path, headers, body === undefined ? undefined : Buffer.from(body));
    return { status: reply.status, headers: reply.headers, body: reply.body };
  },
};

beforeAll(async () => {
  server = await serve(["--token", "golden-token"]);
  target.origin = server.url;
});

afterAll(async () => {
  if (server) await stop(server.child);
});

for (const [file, prefix] of [["http", "h"], ["websocket", "w"]]) {
  describe(`golden ${file} cases over the network`, () => {
    golden(file).forEach((goldenCase, index) => {
      it(goldenCase.name, { timeout: 180_000 }, () => runCase(target, goldenCase, `${prefix}-${runId}-${index}`));
    });
  });
}
