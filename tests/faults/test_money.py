"""Calls between objects, exactly once: money is conserved through crashes and drops.

500 transfers between 10 purses, each run by a teller object written naively: its
``transfer`` method takes the amount from one purse, then gives it to the other,
two calls made from inside the teller's body, with no bookkeeping of their own
(``tests/models.py``): a call applied twice moves money twice. Clients run the
transfers ten at a time and retry each one with its request id while

- the network host is killed with SIGKILL five times and restarted on the same
  store, or
- the fault proxy breaks about one exchange in five.

A retried transfer runs its body again; the calls it already made are answered
from the records their derived request ids left. At the end the total is exactly
the money given at the start, and every balance is exactly what the acknowledged
transfers imply. On the network host and on the Worker (the test Worker of
``worker/test/app``, whose Teller and Purse are written as naively, in TypeScript).
(``examples/bank.py`` shows the saga a real application writes;
``tests/test_many_objects.py`` runs it.)
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from cloudflare_durable import DurableClient
from cloudflare_durable.testing import ServerProcess

from ..conftest import TEST_WORKER, TOKEN
from ..models import Purse, Teller
from .conftest import Kind, start_server
from .proxy import FaultProxy, Schedule, replay_note
from .test_durability import kill_and_restart

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ACCOUNTS = 10
OPENING = 1_000
TRANSFERS = 500
RUNNERS = 10
KILLS = 5


@dataclass(frozen=True)
class Order:
    transfer: str
    source: str
    target: str
    amount: int


def orders(seed: int) -> list[Order]:
    draw = random.Random(seed)
    made = []
    for number in range(TRANSFERS):
        source, target = draw.sample(range(ACCOUNTS), 2)
        made.append(Order(f"t{number}", f"a{source}", f"a{target}", draw.randint(1, 400)))
    return made


async def run_all(
    client: DurableClient, plan: list[Order], during: Callable[[], Awaitable[None]]
) -> dict[str, bool]:
    """Run every transfer (``RUNNERS`` at a time) while ``during`` breaks things."""
    outcomes: dict[str, bool] = {}
    pending = list(plan)

    async def runner() -> None:
        while pending:
            order = pending.pop()
            teller = client.get(Teller, order.transfer)
            outcomes[order.transfer] = await teller.transfer(
                order.source, order.target, order.amount
            )

    with anyio.fail_after(600):
        async with anyio.create_task_group() as group:
            for _ in range(RUNNERS):
                group.start_soon(runner)
            await during()
    return outcomes


async def check_the_books(
    client: DurableClient, plan: list[Order], outcomes: dict[str, bool]
) -> None:
    expected = {f"a{n}": OPENING for n in range(ACCOUNTS)}
    for order in plan:
        teller = await client.get(Teller, order.transfer).load()
        assert teller.moved == (order.amount if outcomes[order.transfer] else 0), order
        if outcomes[order.transfer]:
            expected[order.source] -= order.amount
            expected[order.target] += order.amount
    purses = {name: (await client.get(Purse, name).load()).balance for name in expected}
    assert sum(purses.values()) == ACCOUNTS * OPENING
    assert purses == expected
    moved = sum(outcomes.values())
    assert 0 < moved < TRANSFERS  # some moved money, some were refused for want of it


async def open_accounts(client: DurableClient) -> None:
    for number in range(ACCOUNTS):
        await client.get(Purse, f"a{number}").give(OPENING)


def retrying_client(url: str) -> DurableClient:
    return DurableClient(
        url, token=TOKEN, retries=60, retry_delay=0.01, reconnect_delay=0.01, timeout=10
    )


async def test_money_is_conserved_when_the_server_is_killed(
    kind: Kind, tmp_path: Path, seed: int
) -> None:
    server = start_server(kind, tmp_path, worker_dir=TEST_WORKER)
    try:
        plan = orders(seed)
        async with retrying_client(server.url) as client:
            await open_accounts(client)

            async def kill_five_times() -> None:
                for _ in range(KILLS):
                    await anyio.sleep(random.Random(seed).uniform(0.3, 0.8))
                    await kill_and_restart(server)

            outcomes = await run_all(client, plan, kill_five_times)
            await check_the_books(client, plan, outcomes)
    finally:
        server.close()


async def test_money_is_conserved_when_one_exchange_in_five_breaks(
    kind: Kind, tmp_path: Path, seed: int
) -> None:
    server: ServerProcess = start_server(kind, tmp_path, worker_dir=TEST_WORKER)
    schedule = Schedule(seed, drop_before=0.06, drop_after_request=0.07, reset_mid_reply=0.07)
    try:
        plan = orders(seed)
        async with FaultProxy(server.url, schedule) as proxy, retrying_client(proxy.url) as client:
            with replay_note(proxy):
                await open_accounts(client)

                async def nothing() -> None:
                    pass

                outcomes = await run_all(client, plan, nothing)
                counters = proxy.counters
                assert counters.drop_after_request > 0
                assert counters.reset_mid_reply > 0
            async with retrying_client(server.url) as direct:
                await check_the_books(direct, plan, outcomes)
    finally:
        server.close()
