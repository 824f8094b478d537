"""An auction whose bids are backed by wallets, and that closes itself on time.

Run it with ``python examples/auction.py``. A bid first holds the amount in the
bidder's wallet (refused if the money is not there), then releases the hold of
the bidder it outbids; closing the auction captures the winner's hold. Every
step is the wallet's own call, committed on its own and idempotent by the
auction's id, so a bid retried after a crash never holds money twice.

Opening the auction schedules its own ``close`` at ``closes_at``: the host runs
it then (``durable serve``, or a client entered with ``async with``), or, with
the default client, before the next operation after that time.
"""

from __future__ import annotations

import datetime

import anyio
from pydantic import AwareDatetime, Field, NonNegativeInt, PositiveInt

from cloudflare_durable import DurableModel, Event, remote


class Wallet(DurableModel):
    balance: int = Field(default=0, ge=0)
    holds: dict[str, int] = {}
    """Money held by auctions where this wallet's bid leads, by auction id."""

    @remote
    async def deposit(self, amount: PositiveInt) -> int:
        self.balance += amount
        return self.balance

    @remote
    async def hold(self, auction: str, amount: PositiveInt) -> int:
        """Hold ``amount`` for ``auction`` (replacing what it held); refused without funds."""
        others = sum(value for key, value in self.holds.items() if key != auction)
        if self.balance - others < amount:
            raise ValueError(f"not enough money to bid {amount}")
        self.holds = {**self.holds, auction: amount}
        return self.balance - others - amount

    @remote
    async def release(self, auction: str) -> None:
        self.holds = {key: value for key, value in self.holds.items() if key != auction}

    @remote
    async def capture(self, auction: str) -> int:
        """Pay what ``auction`` holds; returns the amount paid."""
        holds = dict(self.holds)
        amount = holds.pop(auction, 0)
        self.holds, self.balance = holds, self.balance - amount
        return amount


class BidPlaced(Event):
    bidder: str
    amount: int


class AuctionClosed(Event):
    winner: str | None
    amount: int


class Auction(DurableModel):
    item: str = ""
    reserve_price: NonNegativeInt = 0
    closes_at: AwareDatetime | None = None
    highest_bid: int = 0
    highest_bidder: str | None = None
    bid_count: int = 0
    closed: bool = False

    @remote
    async def open(self, item: str, reserve_price: NonNegativeInt, closes_at: AwareDatetime) -> str:
        """Open the auction until ``closes_at``, when it closes itself; returns the id of
        the schedule that closes it."""
        if self.item:
            raise PermissionError("the auction is already open")
        self.item, self.reserve_price, self.closes_at = item, reserve_price, closes_at
        return self.schedule(closes_at, self.close)

    @remote
    async def bid(self, bidder: str, amount: PositiveInt) -> int:
        """Bid ``amount`` from ``bidder``'s wallet; returns the bid count."""
        if self.closed:
            raise PermissionError("the auction is closed")
        if amount < self.reserve_price or amount <= self.highest_bid:
            raise ValueError(f"a bid must beat {max(self.highest_bid, self.reserve_price - 1)}")
        await Wallet.get(bidder).hold(self.durable_id, amount)
        outbid = self.highest_bidder
        if outbid is not None and outbid != bidder:
            await Wallet.get(outbid).release(self.durable_id)
        self.highest_bid, self.highest_bidder = amount, bidder
        self.bid_count += 1
        self.emit(BidPlaced(bidder=bidder, amount=amount))
        return self.bid_count

    @remote
    async def close(self) -> str | None:
        """Close the auction and take the winner's money; returns the winner."""
        if not self.closed:
            self.closed = True
            if self.highest_bidder is not None:
                await Wallet.get(self.highest_bidder).capture(self.durable_id)
            self.emit(AuctionClosed(winner=self.highest_bidder, amount=self.highest_bid))
        return self.highest_bidder


async def main() -> None:
    auction = Auction.get("example-auction")
    ann, bob = Wallet.get("example-ann"), Wallet.get("example-bob")
    for handle in (auction, ann, bob):
        await handle.delete()  # deleting the auction also cancels its schedules
    closes_at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1.5)
    await auction.open("a teapot", 10, closes_at)
    await ann.deposit(50)
    await bob.deposit(30)
    print("bids:", await auction.bid("example-ann", 12))
    print("bids:", await auction.bid("example-bob", 20))
    try:
        await auction.bid("example-bob", 40)
    except Exception as refused:  # bob has only 30
        print("refused:", type(refused).__name__, refused)
    print("bids:", await auction.bid("example-ann", 25))
    print("closes in", len(await auction.schedules()), "schedule")
    await anyio.sleep((closes_at - datetime.datetime.now(datetime.UTC)).total_seconds() + 0.2)
    closed = await auction.load()
    print("closed:", closed.closed, "winner:", closed.highest_bidder)
    wallets = [await wallet.load() for wallet in (ann, bob)]
    print(f"ann pays {50 - wallets[0].balance}, bob holds {wallets[1].holds}")


if __name__ == "__main__":
    anyio.run(main)
