import { ValueError } from "cloudflare-durable";
import { WalletBase } from "../generated/wallet";

/** `Wallet` (examples/auction.py) on the Worker. */
export class Wallet extends WalletBase {
  override capture(auction: string): number {
    const amount = this.state.holds[auction] ?? 0;
    delete this.state.holds[auction];
    this.state.balance -= amount;
    return amount;
  }

  override deposit(amount: number): number {
    this.state.balance += amount;
    return this.state.balance;
  }

  override hold(auction: string, amount: number): number {
    const others = Object.entries(this.state.holds)
      .filter(([key]) => key !== auction)
      .reduce((sum, [, value]) => sum + value, 0);
    if (this.state.balance - others < amount) throw new ValueError(`not enough money to bid ${amount}`);
    this.state.holds[auction] = amount;
    return this.state.balance - others - amount;
  }

  override release(auction: string): null {
    delete this.state.holds[auction];
    return null;
  }
}
