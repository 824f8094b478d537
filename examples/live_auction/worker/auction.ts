import { PermissionError, ValueError } from "cloudflare-durable";
import { AuctionBase } from "../generated/auction";

/**
 * `Auction` (examples/auction.py) on the Worker. The TypeScript library has no calls
 * between objects yet, so here a bid does not hold money in the bidder's wallet:
 * the auction's own rules and events are the same as in Python.
 */
export class Auction extends AuctionBase {
  override bid(bidder: string, amount: number): number {
    if (this.state.closed) throw new PermissionError("the auction is closed");
    if (amount < this.state.reserve_price || amount <= this.state.highest_bid) {
      throw new ValueError(`a bid must beat ${Math.max(this.state.highest_bid, this.state.reserve_price - 1)}`);
    }
    this.state.highest_bid = amount;
    this.state.highest_bidder = bidder;
    this.state.bid_count += 1;
    this.emit("BidPlaced", { bidder, amount });
    return this.state.bid_count;
  }

  override close(): string | null {
    if (!this.state.closed) {
      this.state.closed = true;
      this.emit("AuctionClosed", { winner: this.state.highest_bidder, amount: this.state.highest_bid });
    }
    return this.state.highest_bidder;
  }
}
