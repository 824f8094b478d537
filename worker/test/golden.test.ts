import { describe, it } from "vitest";
import httpCases from "../../docs/golden/http.json";
import websocketCases from "../../docs/golden/websocket.json";
import { runCase, type GoldenCase } from "./support/golden";

const runId = crypto.randomUUID().slice(0, 8);

function runAll(cases: GoldenCase[], prefix: string): void {
  cases.forEach((golden, index) => {
    it(golden.name, async () => {
      await runCase(golden, `${prefix}-${runId}-${index}`);
    });
  });
}

describe("golden HTTP cases", () => runAll(httpCases as GoldenCase[], "h"));
describe("golden WebSocket cases", () => runAll(websocketCases as GoldenCase[], "w"));
