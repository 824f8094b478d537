import { SELF } from "cloudflare:test";
import { describe, it } from "vitest";
import httpCases from "../../docs/golden/http.json";
import websocketCases from "../../docs/golden/websocket.json";
import { needsRaw, runCase, type GoldenCase, type Target } from "./support/golden";

// Inside workerd, through the Worker's own fetch handler. The pinned
// @cloudflare/vitest-pool-workers may hand a Durable Object's WebSocket messages
// to it out of order when they are sent back to back (cloudflare/workers-sdk
// issue 13433; fixed in later releases), so frames are spaced a little here.
// test/node/golden.test.mjs runs the same cases over real sockets, unspaced.
// Cases whose paths only a plain socket carries as written (dot segments, bad
// escapes: `Request` would normalise them) run there only.
const target: Target = {
  origin: "http://golden.test",
  fetch: (url, init) => SELF.fetch(url, init),
  sendDelayMs: 25,
};

const runId = crypto.randomUUID().slice(0, 8);

function runAll(cases: GoldenCase[], prefix: string): void {
  cases.forEach((golden, index) => {
    it.skipIf(needsRaw(golden))(golden.name, async () => {
      await runCase(target, golden, `${prefix}-${runId}-${index}`);
    });
  });
}

describe("golden HTTP cases", () => runAll(httpCases as GoldenCase[], "h"));
describe("golden WebSocket cases", () => runAll(websocketCases as GoldenCase[], "w"));
