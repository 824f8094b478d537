/** Schedules on the Worker: stored with the change that made them, run once from the alarm, retried, listed. */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, call, freshId, objectPath } from "../../support/client";
import { TimerBase } from "../src/generated/timer";

const timers = (env as unknown as { TIMER: DurableObjectNamespace }).TIMER;
const timer = (id: string) => timers.get(timers.idFromName(id));

/** Runs the object's alarm (its due schedules) until it has nothing due, at most `rounds` times. */
async function runDue(id: string, rounds = 1): Promise<void> {
  for (let round = 0; round < rounds; round++) await runDurableObjectAlarm(timer(id));
}

async function schedules(id: string): Promise<any[]> {
  const reply = await api("GET", `${objectPath("app.Timer", id)}/schedules`);
  expect(reply.status).toBe(200);
  return reply.body.schedules;
}

describe("schedules", () => {
  it("are stored with the call that made them (a change), listed, and run once as a call", async () => {
    const id = freshId("timer");
    const made = await call("app.Timer", id, "later", { note: "a", seconds: 0.3 });
    // A new version; a schedule belongs to a state, so the object stores its defaults.
    expect(made.body).toMatchObject({ version: 1, state: { fired: [], blocked: false } });
    const scheduleId: string = made.body.result;
    expect(scheduleId).toMatch(/^[0-9a-f]{32}$/);
    const [listed] = await schedules(id);
    expect(listed).toEqual({ id: scheduleId, when: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), method: "fire", args: { note: "a" }, attempts: 0, status: "pending", error: null });
    // The object's alarm runs it when it is due.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await api("GET", objectPath("app.Timer", id))).body).toEqual({ version: 2, state: { fired: ["a"], blocked: false } });
    expect(await schedules(id)).toEqual([]);
    // Its call left a record under schedule:<id>, and nothing runs it again.
    const records = await runInDurableObject(timer(id), (_instance, state) =>
      state.storage.sql.exec<{ request_id: string }>("SELECT request_id FROM durable_requests").toArray().map((row) => row.request_id),
    );
    expect(records).toEqual([`schedule:${scheduleId}`]);
    await runDue(id);
    expect((await api("GET", objectPath("app.Timer", id))).body.state.fired).toEqual(["a"]);
  });

  it("made on an object without state, are cancelled when that state is deleted", async () => {
    const id = freshId("timer");
    await call("app.Timer", id, "later", { note: "a", seconds: 60 });
    const deleted = await api("DELETE", objectPath("app.Timer", id));
    expect(deleted.body).toMatchObject({ deleted: true, version: 2 });
    expect(await schedules(id)).toEqual([]);
  });

  it("run at or after their time, in order of time", async () => {
    const id = freshId("timer");
    await api("PUT", objectPath("app.Timer", id), { state: {} });
    const soon = new Date(Date.now() + 300).toISOString();
    await call("app.Timer", id, "later", { note: "later", seconds: 0.6 });
    await call("app.Timer", id, "at", { note: "first", when: soon });
    expect((await schedules(id)).map((s) => s.args.note)).toEqual(["first", "later"]);
    await runDue(id);
    expect((await api("GET", objectPath("app.Timer", id))).body.state.fired).toEqual([]); // not due yet
    await new Promise((resolve) => setTimeout(resolve, 700));
    await runDue(id);
    expect((await api("GET", objectPath("app.Timer", id))).body.state.fired).toEqual(["first", "later"]);
  });

  it("schedule nothing when the call fails, and refuse arguments a call would refuse", async () => {
    const id = freshId("timer");
    const stub = timer(id);
    const errors = await runInDurableObject(stub, async (instance) => {
      const self = instance as unknown as Record<string, any>;
      const { remote } = await import("../../../lib/src");
      self.bad_args = remote({}, () => self.schedule(1, "fire", 5));
      self.no_method = remote({}, () => self.schedule(1, "nope"));
      self.naive = remote({}, () => self.schedule("2030-01-01T00:00:00", "fire", "x"));
      const replies = [];
      for (const method of ["bad_args", "no_method", "naive"]) {
        replies.push(JSON.parse((await self.dispatch({ op: "call", method, args: {}, requestId: null })).body).error);
      }
      return replies;
    });
    expect(errors[0]).toMatchObject({ code: "remote_error", details: { type: "ValidationError" } });
    expect(errors[1]).toMatchObject({ code: "remote_error", details: { type: "UnknownMethodError" } });
    expect(errors[2]).toMatchObject({ code: "remote_error", details: { type: "TypeError" } });
    expect((await call("app.Timer", id, "later", { note: "a", seconds: "soon" })).status).toBe(422);
    expect(await schedules(id)).toEqual([]);
    expect((await api("GET", objectPath("app.Timer", id))).body.version).toBe(0);
  });

  it("are cancelled by a call (a change), and all go when the state is deleted", async () => {
    const id = freshId("timer");
    await api("PUT", objectPath("app.Timer", id), { state: {} });
    const first = (await call("app.Timer", id, "later", { note: "a", seconds: 60 })).body.result;
    await call("app.Timer", id, "later", { note: "b", seconds: 60 });
    const cancelled = await call("app.Timer", id, "cancel", { schedule_id: first });
    expect(cancelled.body).toMatchObject({ result: true, version: 4 });
    expect((await call("app.Timer", id, "cancel", { schedule_id: first })).body).toMatchObject({ result: false, version: 4 });
    expect((await schedules(id)).map((s) => s.args.note)).toEqual(["b"]);
    await api("DELETE", objectPath("app.Timer", id));
    expect(await schedules(id)).toEqual([]);
  });

  it("are tried again with backoff when their call fails, then kept as failed with the last error", async () => {
    const id = freshId("timer");
    await call("app.Timer", id, "block", { blocked: true });
    const scheduleId = (await call("app.Timer", id, "later", { note: "x", seconds: 0 })).body.result;
    await runDue(id);
    const [once] = await schedules(id);
    expect(once).toMatchObject({ id: scheduleId, attempts: 1, status: "pending" });
    expect(once.error).toMatchObject({ code: "remote_error", message: "app.Timer.fire raised Error: blocked: x not fired", details: { type: "Error" } });
    for (let round = 0; round < 6; round++) {
      await new Promise((resolve) => setTimeout(resolve, 220));
      await runDue(id);
    }
    const [failed] = await schedules(id);
    expect(failed).toMatchObject({ attempts: 4, status: "failed" });
    expect((await api("GET", objectPath("app.Timer", id))).body.state.fired).toEqual([]);
  });

  it("succeed on a later attempt once the call can run, and run once", async () => {
    const id = freshId("timer");
    await call("app.Timer", id, "block", { blocked: true });
    await call("app.Timer", id, "later", { note: "y", seconds: 0 });
    await runDue(id);
    await call("app.Timer", id, "block", { blocked: false });
    await new Promise((resolve) => setTimeout(resolve, 120));
    await runDue(id, 3);
    expect((await api("GET", objectPath("app.Timer", id))).body.state.fired).toEqual(["y"]);
    expect(await schedules(id)).toEqual([]);
  });
});

/** Types only: schedule() takes the method's own parameters. */
export abstract class TypedSchedules extends TimerBase {
  check(): void {
    this.schedule(1, "fire", "note");
    this.schedule(new Date(), "block", true);
    // @ts-expect-error fire takes a string
    this.schedule(1, "fire", 5);
    // @ts-expect-error no such method
    this.schedule(1, "nope");
    // @ts-expect-error later takes two arguments
    this.schedule(1, "later", "note");
  }
}

describe("when a schedule is due", () => {
  it("reads Dates, times with an offset (rounded up to the millisecond) and seconds from now", async () => {
    const { dueOf } = await import("../../../lib/src/schedules");
    expect(dueOf(new Date(1_000))).toBe(1_000);
    expect(dueOf("1970-01-01T00:00:01Z")).toBe(1_000);
    expect(dueOf("1970-01-01T01:00:01+01:00")).toBe(1_000);
    expect(dueOf("1970-01-01T00:00:01.0001Z")).toBe(1_001);
    expect(dueOf("1970-01-01T00:00:01.123000Z")).toBe(1_123);
    expect(dueOf(1.5, 10_000)).toBe(11_500);
    expect(dueOf(0.0001, 10_000)).toBe(10_001);
    expect(() => dueOf("1970-01-01T00:00:01")).toThrow(TypeError);
    expect(() => dueOf(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});
