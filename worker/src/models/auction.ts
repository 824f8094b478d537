import { PermissionError, ValueError } from "cloudflare-durable";
import { AuctionBase } from "../generated/auction";
import { WalletSpec } from "../generated/wallet";

/**
 * `Auction` (examples/auction.py) on the Worker: opening schedules its own
 * close; a bid holds the amount in the bidder's wallet and releases the hold of
 * the bidder it outbids; closing captures the winner's hold. Each step is the
 * wallet's own call.
 */
export class Auction extends AuctionBase {
  /** Opens the auction until `closes_at`, when it closes itself; returns the id of the schedule that closes it. */
  override open(item: string, reserve_price: number, closes_at: string): string {
    const state = this.state;
    if (state.item !== "") throw new PermissionError("the auction is already open");
    state.item = item;
    state.reserve_price = reserve_price;
    state.closes_at = closes_at;
    return this.schedule(closes_at, "close");
  }

  /** Bids `amount` from `bidder`'s wallet; returns the bid count. */
  override async bid(bidder: string, amount: number): Promise<number> {
    const state = this.state;
    if (state.closed) throw new PermissionError("the auction is closed");
    if (amount < state.reserve_price || amount <= state.highest_bid) {
      throw new ValueError(`a bid must beat ${Math.max(state.highest_bid, state.reserve_price - 1)}`);
    }
    const wallets = this.objects(WalletSpec);
    await wallets.get(bidder).hold(this.objectId, amount);
    const outbid = state.highest_bidder;
    if (outbid !== null && outbid !== bidder) await wallets.get(outbid).release(this.objectId);
    state.highest_bid = amount;
    state.highest_bidder = bidder;
    state.bid_count += 1;
    this.emit("BidPlaced", { bidder, amount });
    return state.bid_count;
  }

  /** Closes the auction and takes the winner's money; returns the winner. */
  override async close(): Promise<string | null> {
    const state = this.state;
    if (!state.closed) {
      state.closed = true;
      if (state.highest_bidder !== null) await this.objects(WalletSpec).get(state.highest_bidder).capture(this.objectId);
      this.emit("AuctionClosed", { winner: state.highest_bidder, amount: state.highest_bid });
    }
    return state.highest_bidder;
  }
}
