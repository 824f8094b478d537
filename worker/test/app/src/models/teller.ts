import { CallError } from "cloudflare-durable";
import { PurseSpec } from "../generated/purse";
import { TellerBase } from "../generated/teller";

/**
 * `test.Teller`: a transfer written naively, one call after the other; only the
 * request ids derived from the teller's own keep a re-run from moving money twice.
 */
export class Teller extends TellerBase {
  override async transfer(source: string, target: string, amount: number): Promise<boolean> {
    const purses = this.objects(PurseSpec);
    try {
      await purses.get(source).take(amount);
    } catch (error) {
      if (error instanceof CallError && error.code === "remote_error") return false;
      throw error;
    }
    await purses.get(target).give(amount);
    this.state.moved += amount;
    return true;
  }
}
