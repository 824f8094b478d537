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

/**
 * Cases that make a thousand requests (the event log's bound) run over real
 * sockets only (test/node/golden.test.mjs): in this pool each write of a test
 * gets slower as its writes accumulate (a post that takes 6 ms on workerd
 * behind serve.mjs takes 300 ms after a thousand here).
 */
function isLong(golden: GoldenCase): boolean {
  return golden.steps.some((step) => "repeat" in step && step.repeat > 100);
}

/** The cases that run here; the others run in test/node/golden.test.mjs only. */
function runAll(cases: GoldenCase[], prefix: string): void {
  cases.forEach((golden, index) => {
    if (needsRaw(golden) || isLong(golden)) return;
    it(golden.name, async () => {
      await runCase(target, golden, `${prefix}-${runId}-${index}`);
    });
  });
}

describe("golden HTTP cases", () => runAll(httpCases as GoldenCase[], "h"));
describe("golden WebSocket cases", () => runAll(websocketCases as GoldenCase[], "w"));
