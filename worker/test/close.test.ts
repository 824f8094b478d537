import { describe, expect, it } from "vitest";
import { replyCloseCode } from "../lib/src/object";

describe("answering a peer's close frame", () => {
  it("echoes codes an endpoint may send", () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4008, 4999]) {
      expect(replyCloseCode(code)).toBe(code);
    }
  });

  it("answers 1000 when the peer sent no code", () => {
    expect(replyCloseCode(1005)).toBe(1000);
    expect(replyCloseCode(1006)).toBe(1000);
  });

  it("answers 1002 for codes no endpoint may send", () => {
    for (const code of [0, 999, 1004, 1012, 1015, 2999, 5000, 65535]) {
      expect(replyCloseCode(code)).toBe(1002);
    }
  });
});
