"""Bid on an auction from another process: ``python bid.py AUCTION BIDDER AMOUNT``.

It talks to whichever host the environment points at (``CLOUDFLARE_WORKER_URL``
and ``CLOUDFLARE_DURABLE_TOKEN``): the app's mounted host at ``.../durable``,
``durable serve``, or the Worker. It tops up the bidder's wallet first if needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/: the auction models
from auction import Auction, Wallet

from cloudflare_durable import blocking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("auction")
    parser.add_argument("bidder")
    parser.add_argument("amount", type=int)
    args = parser.parse_args()
    wallet = blocking.run(Wallet.get(args.bidder).load())
    if wallet.balance - sum(wallet.holds.values()) < args.amount:
        blocking.run(wallet.deposit(args.amount))
    bids = blocking.run(Auction.get(args.auction).bid(args.bidder, args.amount))
    print(f"{args.bidder} bid {args.amount} on {args.auction}: bid number {bids}")


if __name__ == "__main__":
    main()
