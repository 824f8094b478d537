import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { rawPath } from "../lib/src/router";
import { api, call, freshId, objectPath, ORIGIN, TOKEN } from "./support/client";

const MiB = 1_048_576;
const AUTH = { Authorization: `Bearer ${TOKEN}` };

type WorkerRequest = Parameters<NonNullable<typeof worker.fetch>>[0];

/**
 * Calls the Worker's fetch handler directly, with other settings than the
 * test's bindings (no token, anonymous mode, allowed Origins). A string `url`
 * is sent as given: `Request` would remove `%2E%2E` segments, as a client's
 * URL parser does, so the raw path is handed over in a plain object.
 */
async function direct(
  url: string,
  settings: Record<string, string> = {},
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> {
  const headers = new Headers(init.headers);
  const request = { url, method: init.method ?? "GET", headers, body: null } as unknown as WorkerRequest;
  const res = await worker.fetch!(request, { ...env, ...settings }, {} as ExecutionContext);
  return { status: res.status, body: await res.json() };
}

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

  it("checks the token before the path and the protocol version", async () => {
    const answer = await api("GET", "/v1/nothing-here", undefined, { Authorization: "", "Durable-Protocol": "2" });
    expect(answer.status).toBe(401);
    expect(answer.body.error).toEqual({ code: "unauthorized", message: "missing or wrong bearer token", retryable: false, details: {} });
    expect((await api("GET", "/v1/nothing-here", undefined, { "Durable-Protocol": "2" })).body.error.code).toBe("unsupported_protocol");
  });

  it("reads the bearer scheme in any case, after one or more spaces, and trims the token", async () => {
    const path = objectPath("Counter", freshId());
    for (const header of ["bearer golden-token", "BEARER   golden-token", "Bearer golden-token \t"]) {
      expect((await api("GET", path, undefined, { Authorization: header })).status, header).toBe(200);
    }
    for (const header of ["Bearer", "Bearer ", "Bearergolden-token", "Bearer\tgolden-token", "Token golden-token", "golden-token"]) {
      expect((await api("GET", path, undefined, { Authorization: header })).status, header).toBe(401);
    }
  });

  it("answers health on GET only, without a token, but checks its protocol version", async () => {
    expect((await api("GET", "/v1/health", undefined, { Authorization: "" })).body).toEqual({ status: "ok", protocol: 1 });
    expect((await api("POST", "/v1/health", undefined, { Authorization: "" })).status).toBe(405);
    const refused = await api("GET", "/v1/health", undefined, { Authorization: "", "Durable-Protocol": "2" });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe("unsupported_protocol");
    expect((await api("GET", "/v1/health", undefined, { "Durable-Protocol": " 1 " })).status).toBe(200);
  });

  it("checks the HTTP method before the model", async () => {
    expect((await api("DELETE", `/v1/objects/Nope/${freshId()}/call/x`)).body.error.code).toBe("method_not_allowed");
    expect((await api("GET", `/v1/objects/Nope/${freshId()}`)).body.error.code).toBe("unknown_model");
  });

  it("allows only the documented HTTP methods", async () => {
    const id = freshId();
    expect((await api("GET", `${objectPath("Counter", id)}/call/increment`)).status).toBe(405);
    expect((await api("POST", `${objectPath("Counter", id)}/ws`)).status).toBe(405);
    expect((await api("GET", `${objectPath("Counter", id)}/other`)).status).toBe(404);
    expect((await api("GET", `${objectPath("Counter", id)}/`)).status).toBe(404);
  });

  it("refuses malformed model names, method names, ids and percent-encodings with invalid_id", async () => {
    for (const path of [
      "/v1/objects/Bad%20Model/x",
      "/v1/objects/Counter/%E0%A4%A",
      "/v1/objects/Counter/%G1",
      "/v1/objects/Counter/%",
      "/v1/objects/Counter/a%2",
      "/v1/objects/Counter/%E0%A4",
      "/v1/objects/Counter/%ED%A0%80",
      "/v1/objects/Counter/%C0%AF",
      "/v1/objects/Counter/",
      "/v1/objects/Counter/%2E",
      "/v1/objects/Counter/%2e%2E",
      "/v1/objects/%G1/x/anything/else",
    ]) {
      const answer = await direct(`http://worker.test${path}`, {}, { headers: AUTH });
      expect([answer.status, answer.body.error.code], path).toEqual([400, "invalid_id"]);
    }
    expect((await call("Counter", freshId(), "bad-name")).body.error.code).toBe("invalid_id");
    expect((await api("POST", `${objectPath("Counter", freshId())}/call/%G1`, "{}")).body.error.code).toBe("invalid_id");
    expect((await api("GET", "/v1/nothing/%G1")).body.error.code).toBe("not_found");
  });

  it("decodes each path segment once", async () => {
    const id = freshId("pct%41");
    await call("Counter", id, "increment");
    // The id contains a literal "%41": sent as %2541, it must not be decoded twice.
    expect((await api("GET", `/v1/objects/Counter/${id.replace("%", "%25")}`)).body.version).toBe(1);
    expect((await api("GET", `/v1/objects/Counter/${id.replace("%41", "A")}`)).body.version).toBe(0);
  });

  it("routes on the path as sent: percent-encoded dot segments are not removed", async () => {
    expect(rawPath("http://h:1/v1/objects/Counter/decoy/%2E%2E/x?since=1#top")).toBe("/v1/objects/Counter/decoy/%2E%2E/x");
    expect(rawPath("http://h/v1/a/.%2e/b")).toBe("/v1/a/.%2e/b");
    expect(rawPath("http://h")).toBe("/");
    expect(rawPath("http://h?x=/y")).toBe("/");
    const id = freshId();
    await call("Counter", id, "increment");
    for (const path of [`/v1/objects/Counter/decoy/%2E%2E/${id}`, `/v1/objects/Counter/${id}/call/x/%2e%2e/reset`]) {
      const answer = await direct(`http://worker.test${path}`, {}, { method: "DELETE", headers: AUTH });
      expect([answer.status, answer.body.error.code], path).toEqual([404, "not_found"]);
    }
    expect((await api("GET", objectPath("Counter", id))).body).toEqual({ version: 1, state: { value: 1 } });
  });

  it("needs an upgrade on the WebSocket endpoint and refuses one anywhere else with 404", async () => {
    expect((await api("GET", `${objectPath("Counter", freshId())}/ws`)).body.error.code).toBe("bad_request");
    const upgrade = { Upgrade: "websocket", Connection: "Upgrade" };
    // (A client sends every upgrade request as GET.)
    for (const path of [objectPath("Counter", freshId()), `${objectPath("Counter", freshId())}/call/increment`, "/v1/health"]) {
      const answer = await direct(`http://worker.test${path}`, {}, { method: path.includes("/call/") ? "POST" : "GET", headers: { ...AUTH, ...upgrade } });
      expect([answer.status, answer.body.error.code], path).toEqual([404, "not_found"]);
    }
    expect((await api("GET", "/v1/health", undefined, { ...upgrade, Authorization: "" })).status).toBe(404);
  });

  it("answers every error with details, {} when there are none", async () => {
    expect((await api("GET", "/v1/nothing-here")).body.error.details).toEqual({});
    expect((await call("Counter", freshId(), "nope")).body.error.details).toEqual({});
  });
});

describe("safe defaults", () => {
  const path = () => objectPath("Counter", freshId());

  it("refuses every request but health when no token is configured", async () => {
    for (const token of [{ API_TOKEN: "" }, { API_TOKEN: undefined as unknown as string }]) {
      const answer = await direct(`http://127.0.0.1:8787${path()}`, token);
      expect(answer.status).toBe(401);
      expect((await direct(`http://worker.example${path()}`, token)).status).toBe(401);
      expect(answer.body.error.message).toContain("no token configured");
      expect((await direct("http://127.0.0.1:8787/v1/health", token)).status).toBe(200);
    }
  });

  it("serves without a token only with ALLOW_ANONYMOUS=true, and only to loopback Host names", async () => {
    const anonymous = { API_TOKEN: "", ALLOW_ANONYMOUS: "true" };
    for (const host of ["localhost", "localhost:8787", "127.0.0.1", "127.0.0.1:1", "[::1]", "[::1]:8787", "LOCALHOST"]) {
      expect((await direct(`http://worker.test${path()}`, anonymous, { headers: { Host: host } })).status, host).toBe(200);
    }
    for (const host of ["worker.test", "attacker.example", "127.0.0.2", "localhost.attacker.example", "[::2]:8787"]) {
      const answer = await direct(`http://worker.test${path()}`, anonymous, { headers: { Host: host } });
      expect([answer.status, answer.body.error.code], host).toEqual([403, "forbidden"]);
    }
    // The URL's host counts when no Host header was given.
    expect((await direct(`http://localhost:8787${path()}`, anonymous)).status).toBe(200);
    // A token wins over ALLOW_ANONYMOUS.
    expect((await direct(`http://localhost${path()}`, { ALLOW_ANONYMOUS: "true" })).status).toBe(401);
  });

  it("refuses an Origin other than the request's own or an allowed one", async () => {
    const url = `http://worker.test${path()}`;
    const asked = (origin: string, settings: Record<string, string> = {}) =>
      direct(url, settings, { headers: { ...AUTH, Host: "worker.test", Origin: origin } });
    // host[:port] as written: a server behind a proxy cannot tell which scheme the client used.
    for (const origin of ["http://worker.test", "https://WORKER.test"]) {
      expect((await asked(origin)).status, origin).toBe(200);
    }
    for (const origin of ["http://attacker.example", "http://worker.test:80", "http://worker.test:8080", "null", "not a url"]) {
      const answer = await asked(origin);
      expect([answer.status, answer.body.error?.code], origin).toEqual([403, "forbidden"]);
    }
    const allowed = { ALLOWED_ORIGINS: " https://app.example , http://localhost:3000" };
    expect((await asked("https://app.example", allowed)).status).toBe(200);
    expect((await asked("http://localhost:3000", allowed)).status).toBe(200);
    expect((await asked("https://app.example:8443", allowed)).status).toBe(403);
    // Without an Origin header (clients that are not browsers) nothing changes.
    expect((await direct(url, {}, { headers: AUTH })).status).toBe(200);
  });

  it("checks the Origin before the token", async () => {
    const answer = await direct(`http://worker.test${path()}`, {}, { headers: { Host: "worker.test", Origin: "http://attacker.example" } });
    expect(answer.body.error.code).toBe("forbidden");
  });
});

describe("bodies", () => {
  const path = () => `${objectPath("Counter", freshId())}/call/increment`;

  it("accepts application/json with parameters", async () => {
    const answer = await api("POST", path(), '{"args":{"by":2}}', { "Content-Type": "application/json; charset=utf-8" });
    expect(answer.body.result).toBe(2);
  });

  it("needs no body on POST, PUT and DELETE, and no Content-Type for an empty one; PATCH needs fields", async () => {
    const call = await SELF.fetch(ORIGIN + path(), { method: "POST", headers: AUTH });
    expect(await call.json()).toEqual({ result: 1, version: 1, state: { value: 1 } });
    const id = freshId();
    const created = await SELF.fetch(ORIGIN + objectPath("Counter", id), { method: "PUT", headers: AUTH });
    expect([created.status, await created.json()]).toEqual([201, { version: 1, state: { value: 0 } }]);
    const patched = await SELF.fetch(ORIGIN + objectPath("Counter", id), { method: "PATCH", headers: AUTH });
    expect([patched.status, ((await patched.json()) as any).error.code]).toEqual([400, "bad_request"]);
    const deleted = await SELF.fetch(ORIGIN + objectPath("Counter", id), { method: "DELETE", headers: AUTH });
    expect(await deleted.json()).toEqual({ deleted: true, version: 2, state: null });
    const typed = await api("POST", path(), "{}", { "Content-Type": "text/plain" });
    expect(typed.body.error.code).toBe("unsupported_media_type");
  });

  it("ignores one leading byte order mark", async () => {
    expect((await api("POST", path(), '\ufeff{"args":{"by":2}}')).body.result).toBe(2);
    expect((await api("POST", path(), '\ufeff\ufeff{"args":{"by":2}}')).body.error.code).toBe("bad_request");
  });

  it("refuses hostile values in arguments and state before validation", async () => {
    const deep = (levels: number) => `{"args":{"by":${"[".repeat(levels - 2)}${"]".repeat(levels - 2)}}}`;
    expect((await api("POST", path(), deep(64))).body.error.code).toBe("validation_error");
    expect((await api("POST", path(), deep(65))).body.error.code).toBe("bad_request");
    expect((await api("POST", path(), deep(5000))).body.error.code).toBe("bad_request");
    expect((await api("POST", path(), '{"args":{"by":1e400}}')).body.error.code).toBe("bad_request");
    expect((await api("POST", path(), '{"args":{"by":"\\ud800"}}')).body.error.code).toBe("bad_request");
    const big = await api("POST", path(), '{"args":{"by":9007199254740992}}');
    expect([big.status, big.body.error.details.errors]).toEqual([
      422,
      [{ loc: ["args", "by"], msg: expect.any(String), type: "int_out_of_range" }],
    ]);
    const id = freshId();
    const state = await api("PUT", objectPath("ChatRoom", id), '{"state":{"messages":[{"author":"a","text":"\\udc00"}]}}');
    expect(state.body.error.code).toBe("bad_request");
    const nested = await api("PUT", objectPath("Document", id), '{"state":{"editors":{"a":-9007199254740992}}}');
    expect(nested.body.error.details.errors[0].loc).toEqual(["state", "editors", "a"]);
    expect((await api("GET", objectPath("Document", id))).body).toEqual({ version: 0, state: null });
    expect((await api("POST", path(), '{"args":{"by":9007199254740991}}')).body.result).toBe(9007199254740991);
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
      headers: { ...AUTH, "Content-Type": "application/json" },
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
      headers: { ...AUTH, "Content-Type": "application/json" },
    });
    expect(res.status).toBe(400);
  });
});
