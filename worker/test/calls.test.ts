/** Calls between objects: typed handles, derived request ids, reentrancy refused at once, errors mapped, timeouts. */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { remote, t, type ModelSpec, type Objects, type Reply } from "../lib/src";
import { describeLink, pythonRepr } from "../lib/src/calls";
import { CounterSpec } from "../src/generated/counter";
import { WalletSpec, type WalletMethods, type WalletState } from "../src/generated/wallet";
import { api, call, freshId, objectPath } from "./support/client";

/** A model object with methods added by a test, and its protected API opened up. */
type Open = Record<string, unknown> & {
  objects<S extends object, M extends object>(spec: ModelSpec<S, M>): Objects<S, M>;
  readonly objectId: string;
};

async function sha40(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("").slice(0, 40);
}

const counter = (id: string) => env.COUNTER.get(env.COUNTER.idFromName(id));

/** Adds `methods` (built from the instance) to Counter `id`'s instance, before its first call. */
async function withMethods(id: string, methods: (self: Open) => Record<string, unknown>): Promise<void> {
  await runInDurableObject(counter(id), (instance) => {
    const self = instance as unknown as Open;
    Object.assign(self, methods(self));
  });
}

/** Calls `method` on Counter `id` as the router would (the object learns its id). */
async function dispatch(id: string, method: string, args: object = {}, requestId: string | null = null): Promise<{ status: number; body: any }> {
  const reply: Reply = await counter(id).dispatch({ op: "call", method, args: args as never, requestId }, { objectId: id, chain: [] });
  return { status: reply.status, body: JSON.parse(reply.body) };
}

describe("the bank (examples/bank.py): a transfer is a saga of calls to accounts", () => {
  it("moves money once, refuses what is not there, and a second run moves nothing", async () => {
    const [ann, bob, t1, t2] = [freshId("ann"), freshId("bob"), freshId("t1"), freshId("t2")];
    await call("Account", ann, "deposit", { amount: 100 });
    expect((await call("Transfer", t1, "run", { source: ann, target: bob, amount: 30 })).body.result).toBe("done");
    expect((await call("Transfer", t1, "run", { source: ann, target: bob, amount: 30 })).body.result).toBe("done");
    expect((await api("GET", objectPath("Account", ann))).body.state).toEqual({ balance: 70, held: {}, credited: [] });
    expect((await api("GET", objectPath("Account", bob))).body.state).toEqual({ balance: 30, held: {}, credited: [t1] });
    const failed = await call("Transfer", t2, "run", { source: ann, target: bob, amount: 500 });
    expect(failed.body).toMatchObject({ result: "failed", state: { status: "failed", amount: 500 } });
    expect((await api("GET", objectPath("Account", ann))).body.state.balance).toBe(70);
  });

  it("gives each nested change a request id derived from the outer one and its position", async () => {
    const [ann, bob, t] = [freshId("ann"), freshId("bob"), freshId("t")];
    await call("Account", ann, "deposit", { amount: 50 });
    await call("Transfer", t, "run", { source: ann, target: bob, amount: 5 }, "outer-1");
    const records = await runInDurableObject(env.ACCOUNT.get(env.ACCOUNT.idFromName(ann)), (_instance, state) =>
      state.storage.sql.exec<{ request_id: string }>("SELECT request_id FROM durable_requests ORDER BY seq").toArray().map((row) => row.request_id),
    );
    // reserve (0) then confirm (1) on the source account.
    expect(records).toEqual([`n:${await sha40(`outer-1\0Account\0${ann}\x000`)}`, `n:${await sha40(`outer-1\0Account\0${ann}\x001`)}`]);
  });
});

describe("the auction (examples/auction.py): bids held in wallets", () => {
  it("holds, releases the outbid, refuses what a wallet cannot pay, and captures the winner's hold", async () => {
    const [auction, ann, bob] = [freshId("auction"), freshId("ann"), freshId("bob")];
    await api("PATCH", objectPath("Auction", auction), { fields: { item: "a teapot", reserve_price: 10 } });
    await call("Wallet", ann, "deposit", { amount: 50 });
    await call("Wallet", bob, "deposit", { amount: 30 });
    expect((await call("Auction", auction, "bid", { bidder: ann, amount: 12 })).body.result).toBe(1);
    expect((await call("Auction", auction, "bid", { bidder: bob, amount: 20 })).body.result).toBe(2);
    const refused = await call("Auction", auction, "bid", { bidder: bob, amount: 40 });
    expect(refused.body.error).toEqual({
      code: "remote_error",
      message: "Auction.bid failed: Wallet.hold raised ValueError: not enough money to bid 40",
      retryable: false,
      details: { type: "ValueError", message: "not enough money to bid 40" },
    });
    expect((await call("Auction", auction, "bid", { bidder: ann, amount: 25 })).body.result).toBe(3);
    expect((await call("Auction", auction, "close")).body.result).toBe(ann);
    expect((await api("GET", objectPath("Wallet", ann))).body.state).toEqual({ balance: 25, holds: {} });
    expect((await api("GET", objectPath("Wallet", bob))).body.state).toEqual({ balance: 30, holds: {} });
  });
});

describe("exactly once across calls", () => {
  it("a retried call does not repeat the nested calls its earlier runs made", async () => {
    const [flaky, target] = [freshId("flaky"), freshId("target")];
    let failures = 2;
    await withMethods(flaky, (self) => ({
      bump_then_fail: remote({}, async () => {
        const value = await self.objects(CounterSpec).get(target).increment(1);
        if (failures > 0) {
          failures -= 1;
          throw new Error("failing after the nested call");
        }
        return value;
      }),
    }));
    for (let run = 0; run < 2; run++) {
      expect((await dispatch(flaky, "bump_then_fail", {}, "outer-1")).body.error.message).toContain("failing after the nested call");
    }
    expect((await dispatch(flaky, "bump_then_fail", {}, "outer-1")).body.result).toBe(1);
    expect((await api("GET", objectPath("Counter", target))).body.state).toEqual({ value: 1 });
    expect((await dispatch(flaky, "bump_then_fail", {}, "outer-2")).body.result).toBe(2);
  });

  it("calls without a request id get one made up per run, so each run applies its nested calls", async () => {
    const [caller, target] = [freshId("caller"), freshId("target")];
    await withMethods(caller, (self) => ({
      twice: remote({}, async () => {
        const counters = self.objects(CounterSpec);
        await Promise.all([counters.get(target).increment(1), counters.get(target).increment(2)]);
        return null;
      }),
    }));
    await dispatch(caller, "twice");
    await dispatch(caller, "twice");
    expect((await api("GET", objectPath("Counter", target))).body.state).toEqual({ value: 6 });
  });
});

describe("reentrancy", () => {
  it("refuses at once a call, or a read, that re-enters the chain, naming the chain", async () => {
    const [a, b] = [freshId("a"), freshId("b")];
    await withMethods(a, (self) => ({
      call_self: remote({}, () => self.objects(CounterSpec).get(self.objectId).increment(1)),
      read_self: remote({}, async () => (await self.objects(CounterSpec).get(self.objectId).load()).version),
      call_back: remote({}, () => self.objects(CounterSpec).call(b, "forward", { to: self.objectId })),
    }));
    await withMethods(b, (self) => ({
      forward: remote({ to: t.str }, ({ to }) => self.objects(CounterSpec).get(to).increment(1)),
    }));
    const started = Date.now();
    const self = await dispatch(a, "call_self");
    expect(self.body.error).toMatchObject({ code: "remote_error", details: { type: "ReentrancyError" } });
    expect(self.body.error.message).toContain(`Counter.call_self raised ReentrancyError: Counter('${a}') -> Counter('${a}'): `);
    expect((await dispatch(a, "read_self")).body.error.details.type).toBe("ReentrancyError");
    const back = await dispatch(a, "call_back");
    expect(back.body.error.details.type).toBe("ReentrancyError");
    expect(back.body.error.message).toContain(`Counter.call_back failed: Counter.forward raised ReentrancyError: Counter('${a}') -> Counter('${b}') -> Counter('${a}')`);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect((await api("GET", objectPath("Counter", a))).body.version).toBe(0);
  });

  it("writes object ids in chains as Python's repr does", () => {
    expect(describeLink(["test.Relay", "a"])).toBe("test.Relay('a')");
    expect(pythonRepr("it's")).toBe(`"it's"`);
    expect(pythonRepr(`a'b"c`)).toBe(`'a\\'b"c'`);
    expect(pythonRepr("tab\there\u0001")).toBe("'tab\\there\\x01'");
    expect(pythonRepr("é")).toBe("'é'");
  });
});

describe("errors of nested calls", () => {
  it("keeps a remote error's type and message; other failures reach the body by their Python class name", async () => {
    const [caller, room] = [freshId("caller"), freshId("room")];
    await withMethods(caller, (self) => ({
      bad_post: remote({}, () => self.objects(CounterSpec).call(room, "nope", {})),
      bad_args: remote({}, () => self.objects(CounterSpec).call(room, "increment", { by: "two" })),
      caught: remote({}, async () => {
        try {
          await self.objects(CounterSpec).get(room).update({ value: 1 }, { ifVersion: 7 });
        } catch (error) {
          return `${(error as Error).name}: ${(error as Error).message}`;
        }
        return "no error";
      }),
    }));
    expect((await dispatch(caller, "bad_post")).body.error).toMatchObject({
      code: "remote_error",
      message: `Counter.bad_post raised UnknownMethodError: Counter has no remote method "nope"`,
      details: { type: "UnknownMethodError" },
    });
    expect((await dispatch(caller, "bad_args")).body.error.details.type).toBe("ValidationError");
    expect((await dispatch(caller, "caught")).body.result).toBe("ConflictError: version is 0, not 7; nothing was changed");
  });

  it("bounds each nested call by the call timeout: calls waiting on each other across chains give up", async () => {
    const [a, b] = [freshId("a"), freshId("b")];
    const slowThenCall = (self: Open, other: string) =>
      remote({}, async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return self.objects(CounterSpec).get(other).increment(1);
      });
    await withMethods(a, (self) => ({ slow_then_call: slowThenCall(self, b) }));
    await withMethods(b, (self) => ({ slow_then_call: slowThenCall(self, a) }));
    const model = (await runInDurableObject(counter(a), (instance) => instance.constructor)) as unknown as { callTimeoutMs: number };
    const before = model.callTimeoutMs;
    model.callTimeoutMs = 300;
    try {
      const outcomes = await Promise.all([dispatch(a, "slow_then_call"), dispatch(b, "slow_then_call")]);
      const timedOut = outcomes.filter((outcome) => outcome.status !== 200);
      expect(timedOut.length).toBeGreaterThan(0);
      for (const outcome of timedOut) {
        expect(outcome.body.error.details.type).toBe("TimeoutError");
      }
    } finally {
      model.callTimeoutMs = before;
    }
  });
});

/** Types only: tsc checks calls to other objects against the generated methods. */
export function typedCalls(wallets: Objects<WalletState, WalletMethods>): void {
  const wallet = wallets.get("ann");
  const left: Promise<number> = wallet.hold("auction", 5);
  const released: Promise<null> = wallet.release("auction");
  // @ts-expect-error the amount is a number
  void wallet.hold("auction", "5");
  // @ts-expect-error hold takes two arguments
  void wallet.hold("auction");
  // @ts-expect-error no such method
  void wallet.withdraw(5);
  // @ts-expect-error balance is a number
  void wallet.update({ balance: "many" });
  void [left, released, WalletSpec];
}
