import { RelayBase, RelaySpec } from "../generated/relay";

/** `test.Relay`: calls other objects from its bodies: itself, back and forth, or in a cycle. */
export class Relay extends RelayBase {
  /** Short, so that calls waiting on each other across chains give up within a test. */
  static override callTimeoutMs = 1_000;

  override ping(): number {
    this.state.hops += 1;
    return this.state.hops;
  }

  override call_self(): Promise<number> {
    return this.objects(RelaySpec).get(this.objectId).ping();
  }

  /** Asks `other` to call this object back (a cycle of two). */
  override call_back(other: string): Promise<number> {
    return this.objects(RelaySpec).get(other).forward(this.objectId);
  }

  override async forward(to: string): Promise<number> {
    this.state.hops += 1;
    return this.objects(RelaySpec).get(to).ping();
  }

  override async read_self(): Promise<number> {
    const loaded = await this.objects(RelaySpec).get(this.objectId).load();
    return loaded.state?.hops ?? 0;
  }

  /** Waits, then calls `other`: two of these on each other wait on each other. */
  override async slow_then_call(other: string, delay: number): Promise<number> {
    await new Promise((resolve) => setTimeout(resolve, delay * 1000));
    return this.objects(RelaySpec).get(other).ping();
  }
}
