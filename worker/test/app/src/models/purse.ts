import { ValueError } from "cloudflare-durable";
import { PurseBase } from "../generated/purse";

/** `test.Purse`: money taken and given with no bookkeeping of its own (a call applied twice moves money twice). */
export class Purse extends PurseBase {
  override give(amount: number): number {
    this.state.balance += amount;
    return this.state.balance;
  }

  override take(amount: number): number {
    if (amount > this.state.balance) throw new ValueError("not enough money");
    this.state.balance -= amount;
    return this.state.balance;
  }
}
