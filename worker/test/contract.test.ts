/** The contract generated from the Python models: /v1/models, and validation across the RPC boundary. */
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { remote, type DurableModelObject } from "../lib/src";
import { SCHEMA_DOCUMENT } from "../src/generated/schema";
import { api, call, connect, freshId, objectPath, ORIGIN } from "./support/client";

describe("GET /v1/models", () => {
  it("answers the schema document the models were generated from, byte for byte", async () => {
    const res = await SELF.fetch(`${ORIGIN}/v1/models`, { headers: { Authorization: "Bearer golden-token" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("application/json");
    expect(res.headers.get("Durable-Protocol")).toBe("1");
    expect(await res.text()).toBe(SCHEMA_DOCUMENT);
    expect(Object.keys(JSON.parse(SCHEMA_DOCUMENT).models)).toEqual(["Account", "Auction", "ChatRoom", "Counter", "Document", "Transfer", "Wallet"]);
  });

  it("needs the token, and only GET", async () => {
    expect((await api("GET", "/v1/models", undefined, { Authorization: "Bearer wrong" })).status).toBe(401);
    const post = await api("POST", "/v1/models", {});
    expect(post.status).toBe(405);
    expect(post.body.error.code).toBe("method_not_allowed");
  });
});

describe("validation as pydantic's strict mode on JSON", () => {
  it("refuses 2.0 for an integer argument over HTTP and over a WebSocket", async () => {
    const id = freshId();
    const reply = await api("POST", `${objectPath("Counter", id)}/call/increment`, '{"args": {"by": 2.0}}');
    expect(reply.status).toBe(422);
    expect(reply.body.error.details.errors).toEqual([{ loc: ["by"], msg: "Input should be a valid integer", type: "int_type" }]);
    const ws = await connect("Counter", id);
    ws.send('{"type": "call", "id": 1, "method": "increment", "args": {"by": 1e0}}');
    const frame = (await ws.next()) as { type: string; error: { code: string } };
    expect(frame.type).toBe("error");
    expect(frame.error.code).toBe("validation_error");
    ws.close();
    expect((await call("Counter", id, "increment", { by: 2 })).body.result).toBe(2);
  });

  it("refuses unknown members inside nested models, in state and in updates", async () => {
    const id = freshId();
    const created = await api("PUT", objectPath("ChatRoom", id), { state: { messages: [{ author: "a", text: "b", at: 1 }] } });
    expect(created.status).toBe(422);
    expect(created.body.error.details.errors).toEqual([
      { loc: ["messages", 0, "at"], msg: "Extra inputs are not permitted", type: "extra_forbidden" },
    ]);
    const updated = await api("PATCH", objectPath("Document", id), { fields: { editors: { ann: 1 } } });
    expect(updated.body.error.details.errors[0]).toMatchObject({ loc: ["editors", "ann"], type: "string_type" });
  });

  it("refuses an event whose data does not match its Python class, as a ValidationError the method raised", async () => {
    const stub = env.DOCUMENT.get(env.DOCUMENT.idFromName(freshId()));
    const reply = await runInDurableObject(stub, (instance) => {
      const self = instance as unknown as DurableModelObject & Record<string, unknown> & { emit(name: string, data: object): void };
      self.shout = remote({}, () => self.emit("Joined", { editor_id: 7 }));
      return self.dispatch({ op: "call", method: "shout", args: {}, requestId: null });
    });
    const body = JSON.parse(reply.body);
    expect(reply.status).toBe(422);
    expect(body.error.code).toBe("remote_error");
    expect(body.error.details.type).toBe("ValidationError");
  });
});
