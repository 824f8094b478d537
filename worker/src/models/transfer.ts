import { CallError } from "cloudflare-durable";
import { AccountSpec } from "../generated/account";
import { TransferBase } from "../generated/transfer";

/**
 * `Transfer` (examples/bank.py) on the Worker: a saga that reserves the amount
 * on the source account, credits the target, then confirms the reservation;
 * each step is the account's own call, idempotent by the transfer's id.
 */
export class Transfer extends TransferBase {
  override async run(source: string, target: string, amount: number): Promise<string> {
    if (this.state.status === "done" || this.state.status === "failed") return this.state.status;
    Object.assign(this.state, { source, target, amount });
    const accounts = this.objects(AccountSpec);
    try {
      await accounts.get(source).reserve(this.objectId, amount);
    } catch (refused) {
      if (!(refused instanceof CallError && refused.code === "remote_error" && refused.type === "ValueError")) throw refused;
      this.state.status = "failed";
      return this.state.status;
    }
    this.state.status = "reserved";
    await accounts.get(target).credit(this.objectId, amount);
    await accounts.get(source).confirm(this.objectId);
    this.state.status = "done";
    return this.state.status;
  }
}
