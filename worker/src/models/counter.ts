import { CounterBase } from "../generated/counter";

/** `Counter` (examples/counter.py) on the Worker: the bodies of its remote methods. */
export class Counter extends CounterBase {
  override increment(by: number): number {
    this.state.value += by;
    return this.state.value;
  }

  override reset(): null {
    this.state.value = 0;
    return null;
  }
}
