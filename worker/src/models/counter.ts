import { DurableModel, remote, t } from "cloudflare-durable";

/** `Counter`: `value: int = 0`. */
export class Counter extends DurableModel("Counter", { value: t.int.default(0) }) {
  /** Adds `by` and returns the new value. */
  increment = remote({ by: t.int.default(1) }, t.int, ({ by }) => {
    this.state.value += by;
    return this.state.value;
  });

  /** Sets the value back to 0. */
  reset = remote({}, t.nullable(t.int), () => {
    this.state.value = 0;
    return null;
  });
}
