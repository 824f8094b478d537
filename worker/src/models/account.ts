import { ValueError } from "cloudflare-durable";
import { AccountBase } from "../generated/account";

/** How many credited transfers an account remembers (`RECENT` in examples/bank.py). */
export const RECENT = 1000;

const total = (amounts: Record<string, number>) => Object.values(amounts).reduce((sum, amount) => sum + amount, 0);

/** `Account` (examples/bank.py) on the Worker: a balance, amounts held by running transfers, transfers credited. */
export class Account extends AccountBase {
  override deposit(amount: number): number {
    this.state.balance += amount;
    return this.state.balance;
  }

  override available(): number {
    return this.state.balance - total(this.state.held);
  }

  /** Holds `amount` for `transfer`; refused if the funds are not there. */
  override reserve(transfer: string, amount: number): number {
    if (!Object.hasOwn(this.state.held, transfer)) {
      if (this.state.balance - total(this.state.held) < amount) throw new ValueError(`insufficient funds for ${transfer}`);
      this.state.held = { ...this.state.held, [transfer]: amount };
    }
    return this.state.held[transfer]!;
  }

  /** Takes the amount held for `transfer` out of the balance. */
  override confirm(transfer: string): number {
    const { [transfer]: amount = 0, ...rest } = this.state.held;
    this.state.held = rest;
    this.state.balance -= amount;
    return this.state.balance;
  }

  /** Gives back what `transfer` held (the compensation of `reserve`). */
  override release(transfer: string): null {
    const { [transfer]: _released, ...rest } = this.state.held;
    this.state.held = rest;
    return null;
  }

  override credit(transfer: string, amount: number): number {
    if (!this.state.credited.includes(transfer)) {
      this.state.balance += amount;
      this.state.credited = [...this.state.credited, transfer].slice(-RECENT);
    }
    return this.state.balance;
  }
}
