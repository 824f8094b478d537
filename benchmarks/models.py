"""Models of the benchmarks (served by ``durable serve benchmarks/models.py``).

- ``Blob``: a large field no call touches and a small counter every call changes,
  to see what a tiny change to a large object costs.
- ``Account``: ``transfer`` makes one call to another account from inside its body,
  to compare a nested call with two calls made one after the other from outside.

``WORKER_BODIES`` are the same bodies in TypeScript, for a Worker project made from
this module with ``durable init worker``.
"""

from __future__ import annotations

from cloudflare_durable import DurableModel, remote


class Blob(DurableModel, name="bench.Blob"):
    blob: str = ""
    count: int = 0

    @remote
    async def bump(self) -> int:
        self.count += 1
        return self.count


class Account(DurableModel, name="bench.Account"):
    balance: int = 0

    @remote
    async def deposit(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    @remote
    async def transfer(self, to: str, amount: int) -> int:
        """Take ``amount`` from this account and deposit it on account ``to``."""
        self.balance -= amount
        await Account.get(to).deposit(amount)
        return self.balance


WORKER_BODIES = {
    "blob.ts": """import { BlobBase } from "../generated/blob";

export class Blob extends BlobBase {
  override bump(): number {
    this.state.count += 1;
    return this.state.count;
  }
}
""",
    "account.ts": """import { AccountBase, AccountSpec } from "../generated/account";

export class Account extends AccountBase {
  override deposit(amount: number): number {
    this.state.balance += amount;
    return this.state.balance;
  }

  override async transfer(to: string, amount: number): Promise<number> {
    this.state.balance -= amount;
    await this.objects(AccountSpec).get(to).deposit(amount);
    return this.state.balance;
  }
}
""",
}
