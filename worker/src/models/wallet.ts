import { ValueError } from "cloudflare-durable";
import { WalletBase } from "../generated/wallet";

/** `Wallet` (examples/auction.py) on the Worker: a balance, and money held by auctions where it leads. */
export class Wallet extends WalletBase {
  override deposit(amount: number): number {
    this.state.balance += amount;
    return this.state.balance;
  }

  /** Holds `amount` for `auction` (replacing what it held); refused without funds. */
  override hold(auction: string, amount: number): number {
    const others = Object.entries(this.state.holds).reduce((sum, [key, value]) => sum + (key === auction ? 0 : value), 0);
    if (this.state.balance - others < amount) throw new ValueError(`not enough money to bid ${amount}`);
    this.state.holds = { ...this.state.holds, [auction]: amount };
    return this.state.balance - others - amount;
  }

  override release(auction: string): null {
    const { [auction]: _released, ...rest } = this.state.holds;
    this.state.holds = rest;
    return null;
  }

  /** Pays what `auction` holds; returns the amount paid. */
  override capture(auction: string): number {
    const { [auction]: amount = 0, ...rest } = this.state.holds;
    this.state.holds = rest;
    this.state.balance -= amount;
    return amount;
  }
}
