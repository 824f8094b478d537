import { describe, expect, it } from "vitest";
import { issueTicket, readTicket } from "../lib/src/ticket";

// The known-answer ticket of docs/protocol.md ("Tickets"): both implementations make these bytes.
const TOKEN = "golden-token";
const NOW = 4102444740;
const KNOWN =
  "t1.eyJtb2RlbCI6IkNvdW50ZXIiLCJpZCI6ImMxIiwiYWxsb3ciOlsiaW5jcmVtZW50IiwibG9hZCJdLCJleHAiOjQxMDI0NDQ4MDB9.x2Q5Y0U7yRr5raWpSXOBwYfq00zU0PToWmxh8OLFwZA";

describe("tickets", () => {
  it("are signed like the Python package signs them", async () => {
    expect(await issueTicket(TOKEN, "Counter", "c1", ["load", "increment"], 60, NOW)).toBe(KNOWN);
  });

  it("are read back while current", async () => {
    const ticket = await readTicket(KNOWN, TOKEN, NOW);
    expect(ticket).toEqual({ model: "Counter", id: "c1", allow: ["increment", "load"], exp: NOW + 60 });
  });

  it("are refused when expired, too long-lived, forged or signed with another token", async () => {
    await expect(readTicket(KNOWN, TOKEN, NOW + 60)).rejects.toMatchObject({ code: "unauthorized" });
    await expect(readTicket(KNOWN, TOKEN, NOW - 3700)).rejects.toMatchObject({ code: "unauthorized" });
    await expect(readTicket(KNOWN, "another-token", NOW)).rejects.toMatchObject({ code: "unauthorized" });
    const [prefix, payload, signature] = KNOWN.split(".");
    const forged = `${prefix}.${payload!.slice(0, -2)}fQ.${signature}`;
    await expect(readTicket(forged, TOKEN, NOW)).rejects.toMatchObject({ code: "unauthorized" });
    await expect(readTicket("t1.x", TOKEN, NOW)).rejects.toMatchObject({ code: "unauthorized" });
  });
});
