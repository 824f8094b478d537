"""Exactly once under retries: connections dropped at random never double a call.

Twenty tasks make 2,000 increments of one counter through the fault proxy,
which breaks about one exchange in five: before the request reaches the
server, after the server ran it but before the reply came back, or in the
middle of the reply. The client retries each call with the same request id,
so every call returns once and the counter ends at exactly 2,000.
"""

from __future__ import annotations

import anyio
import pytest

from cloudflare_durable import DurableClient
from cloudflare_durable.testing import ServerProcess

from ..conftest import TOKEN
from ..models import Counter
from .proxy import FaultProxy, Schedule, replay_note

pytestmark = pytest.mark.anyio

TASKS = 20
CALLS_PER_TASK = 100


# On trio, httpx leaves the async generator of a request body unfinished when the
# connection breaks while it writes the request; trio warns when it collects it.
HTTPX_ON_TRIO = pytest.mark.filterwarnings(
    "ignore:Async generator 'httpx._content.ByteStream.__aiter__':ResourceWarning"
)


@pytest.mark.parametrize("anyio_backend", ["asyncio", pytest.param("trio", marks=HTTPX_ON_TRIO)])
async def test_every_call_applies_once_when_one_exchange_in_five_breaks(
    server: ServerProcess, seed: int, oid: str
) -> None:
    schedule = Schedule(
        seed,
        drop_before=0.06,
        drop_after_request=0.07,
        reset_mid_reply=0.07,
        delay=0.05,
        max_delay=0.01,
    )
    returned: list[int] = []
    async with (
        FaultProxy(server.url, schedule) as proxy,
        DurableClient(
            proxy.url, token=TOKEN, retries=20, retry_delay=0.005, pool_size=4, timeout=15
        ) as client,
        DurableClient(server.url, token=TOKEN) as direct,
    ):
        with replay_note(proxy):
            counter = client.get(Counter, oid)

            async def increments() -> None:
                for _ in range(CALLS_PER_TASK):
                    returned.append(await counter.increment(1))

            with anyio.fail_after(240):
                async with anyio.create_task_group() as tg:
                    for _ in range(TASKS):
                        tg.start_soon(increments)

            final = await direct.get(Counter, oid).load()
            total = TASKS * CALLS_PER_TASK
            assert final.value == total
            assert final.durable_version == total
            # Each call returned the value its own increment produced: all distinct.
            assert sorted(returned) == list(range(1, total + 1))
            counters = proxy.counters
            assert counters.drop_before > 0
            assert counters.drop_after_request > 0
            assert counters.reset_mid_reply > 0
            broken = counters.drop_before + counters.drop_after_request + counters.reset_mid_reply
            assert 0.1 < broken / counters.exchanges < 0.3
