import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { api, call, freshId, objectPath, ORIGIN } from "./support/client";

const MiB = 1_048_576;

describe("router", () => {
  it("sends Durable-Protocol: 1 and JSON on every reply, errors included", async () => {
    for (const answer of [
      await api("GET", "/v1/health"),
      await api("GET", "/nowhere"),
      await api("GET", objectPath("Counter", freshId())),
      await api("GET", objectPath("Counter", freshId()), undefined, { Authorization: "Bearer nope" }),
    ]) {
      expect(answer.headers.get("Durable-Protocol")).toBe("1");
      expect(answer.headers.get("Content-Type")).toBe("application/json");
    }
  });

  it("checks the token before the path", async () => {
    const answer = await api("GET", "/v1/nothing-here", undefined, { Authorization: "" });
    expect(answer.status).toBe(401);
    expect(answer.body.error).toEqual({ code: "unauthorized", message: "missing or wrong bearer token", retryable: false });
  });

  it("accepts the bearer scheme in any case", async () => {
    const answer = await api("GET", objectPath("Counter", freshId()), undefined, { Authorization: "bearer golden-token" });
    expect(answer.status).toBe(200);
  });

  it("serves without authentication when the token is unset or empty", async () => {
    const request = new Request(`${ORIGIN}${objectPath("Counter", freshId())}`);
    const res = await worker.fetch!(request as Parameters<NonNullable<typeof worker.fetch>>[0], { ...env, API_TOKEN: "" }, {} as ExecutionContext);
    expect(res.status).toBe(200);
  });

  it("answers health on GET only, without a token", async () => {
    expect((await api("POST", "/v1/health", undefined, { Authorization: "" })).status).toBe(405);
  });

  it("refuses other protocol versions, but treats a missing header as version 1", async () => {
    const path = objectPath("Counter", freshId());
    expect((await api("GET", path, undefined, { "Durable-Protocol": "2" })).body.error.code).toBe("unsupported_protocol");
    expect((await api("GET", path)).status).toBe(200);
    // Health answers whatever the version, so any client can read the server's.
    expect((await api("GET", "/v1/health", undefined, { "Durable-Protocol": "2" })).body).toEqual({ status: "ok", protocol: 1 });
  });

  it("checks the model before the HTTP method", async () => {
    expect((await api("DELETE", `/v1/objects/Nope/${freshId()}/call/x`)).body.error.code).toBe("unknown_model");
  });

  it("allows only the documented HTTP methods", async () => {
    const id = freshId();
    expect((await api("GET", `${objectPath("Counter", id)}/call/increment`)).status).toBe(405);
    expect((await api("POST", `${objectPath("Counter", id)}/ws`)).status).toBe(405);
    expect((await api("GET", `${objectPath("Counter", id)}/other`)).status).toBe(404);
    expect((await api("GET", `${objectPath("Counter", id)}/`)).status).toBe(404);
  });

  it("refuses malformed model names, method names and percent-encodings", async () => {
    expect((await api("GET", "/v1/objects/Bad%20Model/x")).body.error.code).toBe("bad_request");
    expect((await api("GET", "/v1/objects/Counter/%E0%A4%A")).body.error.code).toBe("bad_request");
    expect((await call("Counter", freshId(), "bad-name")).body.error.code).toBe("bad_request");
    expect((await api("GET", "/v1/objects/Counter/")).body.error.code).toBe("bad_request");
  });

  it("decodes each path segment once", async () => {
    const id = freshId("pct%41");
    await call("Counter", id, "increment");
    // The id contains a literal "%41": sent as %2541, it must not be decoded twice.
    expect((await api("GET", `/v1/objects/Counter/${id.replace("%", "%25")}`)).body.version).toBe(1);
    expect((await api("GET", `/v1/objects/Counter/${id.replace("%41", "A")}`)).body.version).toBe(0);
  });

  it("needs an upgrade on the WebSocket endpoint", async () => {
    expect((await api("GET", `${objectPath("Counter", freshId())}/ws`)).body.error.code).toBe("bad_request");
  });
});

describe("bodies", () => {
  const path = () => `${objectPath("Counter", freshId())}/call/increment`;

  it("accepts application/json with parameters", async () => {
    const answer = await api("POST", path(), '{"args":{"by":2}}', { "Content-Type": "application/json; charset=utf-8" });
    expect(answer.body.result).toBe(2);
  });

  it("needs a body on POST, PUT and PATCH, but not on DELETE", async () => {
    const auth = { Authorization: "Bearer golden-token" };
    const res = await SELF.fetch(ORIGIN + path(), { method: "POST", headers: auth });
    expect(res.status).toBe(415);
    await res.body?.cancel();
    const json = await SELF.fetch(ORIGIN + path(), { method: "POST", headers: { ...auth, "Content-Type": "application/json" } });
    expect(json.status).toBe(400);
    await json.body?.cancel();
    const id = freshId();
    await api("PUT", objectPath("Counter", id), {});
    const deleted = await SELF.fetch(ORIGIN + objectPath("Counter", id), { method: "DELETE", headers: auth });
    expect(await deleted.json()).toEqual({ deleted: true, version: 2, state: null });
  });

  it("refuses bodies over 1 MiB, whatever Content-Length says", async () => {
    const big = JSON.stringify({ args: { by: 1 }, request_id: "r" }).replace('"r"', `"${"r".repeat(MiB)}"`);
    expect((await api("POST", path(), big)).status).toBe(413);
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const res = await SELF.fetch(ORIGIN + path(), {
      method: "POST",
      body: stream,
      headers: { Authorization: "Bearer golden-token", "Content-Type": "application/json" },
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
  });

  it("accepts a body of exactly 1 MiB", async () => {
    const prefix = '{"args":{"by":1},"pad":"';
    const body = prefix + "x".repeat(MiB - prefix.length - 2) + '"}';
    expect(body.length).toBe(MiB);
    // Within the limit, so the body is read and refused for its unknown member, not its size.
    expect((await api("POST", path(), body)).body.error.code).toBe("bad_request");
  });

  it("refuses invalid UTF-8", async () => {
    const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]);
    const res = await SELF.fetch(ORIGIN + path(), {
      method: "POST",
      body: bytes,
      headers: { Authorization: "Bearer golden-token", "Content-Type": "application/json" },
    });
    expect(res.status).toBe(400);
  });
});
