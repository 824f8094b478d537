"""A bank: accounts, and transfers between them that one object runs as a saga.

Run it with ``python examples/bank.py``. A transfer is an object of its own: its
``run`` method reserves the amount on the source account, credits the target,
then confirms the reservation (or, if the reservation is refused, records the
failure). Each step is the other object's own call, committed on its own; the
transfer's state says how far it got, and every step is idempotent by the
transfer's id, so running a transfer again, after a crash or a retry, never
moves money twice.
"""

from __future__ import annotations

from typing import Literal

import anyio
from pydantic import Field, PositiveInt

from cloudflare_durable import DurableModel, RemoteError, remote

RECENT = 1000


class Account(DurableModel):
    balance: int = Field(default=0, ge=0)
    held: dict[str, int] = {}
    """Amounts reserved by transfers still running, by transfer id."""
    credited: list[str] = []
    """The latest transfers credited here, so that crediting one again changes nothing."""

    @remote
    async def deposit(self, amount: PositiveInt) -> int:
        self.balance += amount
        return self.balance

    @remote
    async def available(self) -> int:
        return self.balance - sum(self.held.values())

    @remote
    async def reserve(self, transfer: str, amount: PositiveInt) -> int:
        """Hold ``amount`` for ``transfer``; refused if the funds are not there."""
        if transfer not in self.held:
            if self.balance - sum(self.held.values()) < amount:
                raise ValueError(f"insufficient funds for {transfer}")
            self.held = {**self.held, transfer: amount}
        return self.held[transfer]

    @remote
    async def confirm(self, transfer: str) -> int:
        """Take the amount held for ``transfer`` out of the balance."""
        held = dict(self.held)
        amount = held.pop(transfer, 0)
        self.held, self.balance = held, self.balance - amount
        return self.balance

    @remote
    async def release(self, transfer: str) -> None:
        """Give back what ``transfer`` held (the compensation of ``reserve``)."""
        self.held = {key: value for key, value in self.held.items() if key != transfer}

    @remote
    async def credit(self, transfer: str, amount: PositiveInt) -> int:
        if transfer not in self.credited:
            self.balance += amount
            self.credited = [*self.credited, transfer][-RECENT:]
        return self.balance


class Transfer(DurableModel):
    source: str = ""
    target: str = ""
    amount: int = 0
    status: Literal["new", "reserved", "done", "failed"] = "new"

    @remote
    async def run(self, source: str, target: str, amount: PositiveInt) -> str:
        """Move ``amount`` from ``source`` to ``target``, once, whatever happens."""
        if self.status in ("done", "failed"):
            return self.status
        self.source, self.target, self.amount = source, target, amount
        try:
            await Account.get(source).reserve(self.durable_id, amount)
        except RemoteError as refused:
            if refused.type_name != "ValueError":
                raise
            self.status = "failed"
            return self.status
        self.status = "reserved"
        await Account.get(target).credit(self.durable_id, amount)
        await Account.get(source).confirm(self.durable_id)
        self.status = "done"
        return self.status


async def main() -> None:
    ann, bob = Account.get("bank-ann"), Account.get("bank-bob")
    for account in (ann, bob):
        await account.delete()
    await ann.deposit(100)
    await Transfer.get("bank-t1").delete()
    await Transfer.get("bank-t2").delete()
    print("t1:", await Transfer.get("bank-t1").run("bank-ann", "bank-bob", 30))
    print("t1 again:", await Transfer.get("bank-t1").run("bank-ann", "bank-bob", 30))
    print("t2:", await Transfer.get("bank-t2").run("bank-ann", "bank-bob", 500))
    balances = [(await account.load()).balance for account in (ann, bob)]
    print(f"balances: ann {balances[0]}, bob {balances[1]}, total {sum(balances)}")


if __name__ == "__main__":
    anyio.run(main)
