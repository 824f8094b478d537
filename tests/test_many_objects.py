"""Applications of many objects: a method body that calls other objects.

Inside a body, handles, the default client and nested calls resolve to the host
running the body, whatever the environment says; a call chain that re-enters an
object already in it is refused at once; bodies are ordinary anyio code; nested
calls carry request ids derived from the outer call's, so a retried outer call
does not apply them twice. The same on the Worker, whose objects call each other
through ``this.objects(...)`` (the bank on ``worker/``, the test models on the
test Worker of ``worker/test/app``).
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudflare_durable import DurableClient, RemoteError, attach
from cloudflare_durable import _protocol as proto
from cloudflare_durable.host import Host
from cloudflare_durable.testing import NetworkHost, WorkerHost

from .conftest import CLIENT_OPTIONS, MODELS, TOKEN
from .models import FAILURES, Account, Counter, Flaky, Purse, Relay, Shapes, Transfer

pytestmark = pytest.mark.anyio

LOST: dict[str, str] = {
    "CLOUDFLARE_WORKER_URL": "http://127.0.0.1:9",  # nothing listens there
    "CLOUDFLARE_DURABLE_STORE": "elsewhere.sqlite3",
}


@pytest.fixture(params=["embedded", "network"])
async def isolated(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[DurableClient]:
    """A client of a host with a store of its own, in a folder and an environment that
    point anywhere but there: nested calls must not follow them."""
    monkeypatch.chdir(tmp_path)
    for name, value in LOST.items():
        monkeypatch.setenv(name, value)
    store = tmp_path / "own.sqlite3"
    if request.param == "embedded":
        async with DurableClient(store=str(store), **CLIENT_OPTIONS) as client:
            yield client
    else:
        env = {**LOST, "CLOUDFLARE_DURABLE_STORE": str(tmp_path / "elsewhere.sqlite3")}
        with NetworkHost(MODELS, store=store, token=TOKEN, env=env) as server:
            async with DurableClient(server.url, token=TOKEN, **CLIENT_OPTIONS) as client:
                yield client
    assert not (tmp_path / "elsewhere.sqlite3").exists()
    assert not (tmp_path / "durable.sqlite3").exists()


async def test_nested_calls_land_in_the_running_host(isolated: DurableClient) -> None:
    ann, bob = isolated.get(Account, "ann"), isolated.get(Account, "bob")
    await ann.deposit(100)
    transfer = isolated.get(Transfer, "t1")
    assert await transfer.run("ann", "bob", 30) == "done"
    assert await transfer.run("ann", "bob", 30) == "done"  # already done: nothing moves
    assert (await ann.load()).balance == 70
    assert (await bob.load()).balance == 30
    assert await isolated.get(Transfer, "t2").run("ann", "bob", 500) == "failed"
    assert (await ann.load()).held == {}
    reader = isolated.get(Relay, "r")
    await reader.ping()
    assert await isolated.get(Relay, "other").forward("r") == 2


async def test_explicit_clients_stay_isolated(tmp_path: Path) -> None:
    first, second = str(tmp_path / "first.sqlite3"), str(tmp_path / "second.sqlite3")
    async with DurableClient(store=first) as one, DurableClient(store=second) as two:
        await one.get(Account, "a").deposit(10)
        await two.get(Account, "a").deposit(99)
        assert await one.get(Transfer, "t").run("a", "b", 10) == "done"
        assert [(await one.get(Account, x).load()).balance for x in "ab"] == [0, 10]
        assert [(await two.get(Account, x).load()).balance for x in "ab"] == [99, 0]


@pytest.mark.parametrize(
    ("method", "args", "chain"),
    [
        ("call_self", {}, "test.Relay('a') -> test.Relay('a')"),
        ("call_back", {"other": "b"}, "test.Relay('a') -> test.Relay('b') -> test.Relay('a')"),
        ("read_self", {}, "test.Relay('a') -> test.Relay('a')"),
    ],
)
async def test_reentering_the_chain_is_refused_at_once(
    isolated: DurableClient, method: str, args: dict[str, Any], chain: str
) -> None:
    with anyio.fail_after(1):
        with pytest.raises(RemoteError) as refused:
            await isolated._perform(proto.Call("test.Relay", "a", method, args))
    assert refused.value.type_name == "ReentrancyError"
    assert chain in refused.value.message
    assert (await isolated.get(Relay, "a").load()).durable_version == 0  # nothing changed


@pytest.mark.parametrize("observed", [False, True], ids=["quiet", "observed"])
async def test_calls_waiting_on_each_other_across_chains_give_up(
    tmp_path: Path, observed: bool
) -> None:
    """A calls B while B calls A, in two chains: neither can finish, and each nested call
    gives up after the client's timeout instead of waiting forever (also when telemetry
    watches the calls)."""
    detach = attach("request.stop", lambda *_: None) if observed else (lambda: None)
    async with DurableClient(store=str(tmp_path / "s.sqlite3"), timeout=0.5) as client:
        outcomes: list[BaseException | int] = []

        async def call(source: str, target: str) -> None:
            try:
                outcomes.append(await client.get(Relay, source).slow_then_call(target, 0.1))
            except RemoteError as error:
                outcomes.append(error)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(call, "a", "b")
                group.start_soon(call, "b", "a")
        detach()
        timed_out = [o for o in outcomes if isinstance(o, RemoteError)]
        assert timed_out, outcomes
        assert all(error.type_name == "TimeoutError" for error in timed_out)


async def test_a_retried_call_does_not_repeat_its_nested_calls(tmp_path: Path) -> None:
    async with Host(str(tmp_path / "s.sqlite3")) as host:
        FAILURES["f"] = 2
        call = proto.Call("test.Flaky", "f", "bump_then_fail", {"counter": "c"}, "outer-1")
        for _ in range(2):
            with pytest.raises(RemoteError, match="failing after"):
                await host.perform(call)
        reply = await host.perform(call)
        assert reply.result == 1  # the counter's increment ran once, for all three runs
        assert (await host.perform(proto.Read("Counter", "c"))).state == {"value": 1}
        again = await host.perform(call)  # a repeat of the whole call: its stored reply
        assert (again.result, again.version) == (1, reply.version)
        other = proto.Call("test.Flaky", "f", "bump_then_fail", {"counter": "c"}, "outer-2")
        assert (await host.perform(other)).result == 2  # another call, another increment
    async with Host(str(tmp_path / "s.sqlite3")) as host:  # the records outlive the process
        FAILURES["f"] = 0
        assert (await host.perform(call)).result == 1
        assert (await host.perform(proto.Read("Counter", "c"))).state == {"value": 2}
    async with DurableClient(store=str(tmp_path / "s.sqlite3")) as client:
        assert (await client.get(Flaky, "f").load()).runs == 2


# -- bodies are ordinary anyio code --------------------------------------------------

TARGETS = ["p", "q", "r"]
leaf = st.sampled_from(["sleep0", "checkpoint"]).map(lambda kind: {"do": kind}) | st.sampled_from(
    TARGETS
).map(lambda target: {"do": "call", "target": target})


def _block(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(
        lambda kind, steps: {"do": kind, "steps": steps},
        st.sampled_from(["fail_after", "move_on_after", "group"]),
        st.lists(children, min_size=1, max_size=3),
    )


steps = st.recursive(leaf, _block, max_leaves=8)
programs = st.lists(steps, min_size=1, max_size=4)


def calls_in(program: list[dict[str, Any]]) -> Tally[str]:
    tally: Tally[str] = Tally()
    for step in program:
        if step["do"] == "call":
            tally[step["target"]] += 1
        tally.update(calls_in(step.get("steps", [])))
    return tally


@given(program=programs)
@settings(
    max_examples=int(os.environ.get("DURABLE_BODY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
async def test_bodies_of_any_shape(anyio_backend: str, program: list[dict[str, Any]]) -> None:
    """Timeouts, cancel scopes, checkpoints and task groups making nested calls at once,
    first or not: the body runs as it would anywhere, and each nested call applies once."""
    async with DurableClient(store=":memory:") as client:
        with anyio.fail_after(10):
            assert await client.get(Shapes, "s").run(program) == 1
        expected = calls_in(program)
        for target in TARGETS:
            assert (await client.get(Counter, target).load()).value == expected[target]


# -- on the Worker ---------------------------------------------------------------------


@pytest.mark.worker
async def test_nested_calls_land_on_the_worker(worker_host: WorkerHost, oid: str) -> None:
    """The bank's saga on the Worker: each step is the account's own call, applied once."""
    async with DurableClient(worker_host.url, token=TOKEN, **CLIENT_OPTIONS) as client:
        ann, bob = client.get(Account, f"{oid}-ann"), client.get(Account, f"{oid}-bob")
        await ann.deposit(100)
        transfer = client.get(Transfer, f"{oid}-t1")
        assert await transfer.run(ann.durable_id, bob.durable_id, 30) == "done"
        assert await transfer.run(ann.durable_id, bob.durable_id, 30) == "done"
        assert (await ann.load()).balance == 70
        assert (await bob.load()).balance == 30
        failed = client.get(Transfer, f"{oid}-t2")
        assert await failed.run(ann.durable_id, bob.durable_id, 500) == "failed"
        assert (await ann.load()).held == {}


@pytest.mark.worker
@pytest.mark.parametrize(
    ("method", "args", "chain"),
    [
        ("call_self", {}, "test.Relay('{a}') -> test.Relay('{a}')"),
        (
            "call_back",
            {"other": "{b}"},
            "test.Relay('{a}') -> test.Relay('{b}') -> test.Relay('{a}')",
        ),
        ("read_self", {}, "test.Relay('{a}') -> test.Relay('{a}')"),
    ],
)
async def test_reentering_the_chain_is_refused_at_once_on_the_worker(
    test_worker_host: WorkerHost, oid: str, method: str, args: dict[str, Any], chain: str
) -> None:
    ids = {"a": f"{oid}-a", "b": f"{oid}-b"}
    args = {name: value.format(**ids) for name, value in args.items()}
    async with DurableClient(test_worker_host.url, token=TOKEN, **CLIENT_OPTIONS) as client:
        with anyio.fail_after(1):
            with pytest.raises(RemoteError) as refused:
                await client._perform(proto.Call("test.Relay", ids["a"], method, args))
        assert refused.value.type_name == "ReentrancyError"
        assert chain.format(**ids) in refused.value.message
        assert (await client.get(Relay, ids["a"]).load()).durable_version == 0


@pytest.mark.worker
async def test_calls_waiting_on_each_other_across_chains_give_up_on_the_worker(
    test_worker_host: WorkerHost, oid: str
) -> None:
    """A calls B while B calls A: each nested call gives up after Relay's call timeout
    on the Worker (1 s), instead of waiting forever."""
    a, b = f"{oid}-a", f"{oid}-b"
    async with DurableClient(test_worker_host.url, token=TOKEN, **CLIENT_OPTIONS) as client:
        outcomes: list[BaseException | int] = []

        async def call(source: str, target: str) -> None:
            try:
                outcomes.append(await client.get(Relay, source).slow_then_call(target, 0.1))
            except RemoteError as error:
                outcomes.append(error)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(call, a, b)
                group.start_soon(call, b, a)
        timed_out = [o for o in outcomes if isinstance(o, RemoteError)]
        assert timed_out, outcomes
        assert all(error.type_name == "TimeoutError" for error in timed_out)


@pytest.mark.worker
async def test_a_repeated_call_does_not_repeat_its_nested_calls_on_the_worker(
    test_worker_host: WorkerHost, oid: str
) -> None:
    source, target, teller = f"{oid}-source", f"{oid}-target", f"{oid}-teller"
    async with DurableClient(test_worker_host.url, token=TOKEN, **CLIENT_OPTIONS) as client:
        await client.get(Purse, source).give(10)
        transfer = proto.Call(
            "test.Teller",
            teller,
            "transfer",
            {"source": source, "target": target, "amount": 4},
            "t-1",
        )
        first = await client._perform(transfer)
        again = await client._perform(transfer)
        assert (first.result, again.result, again.version) == (True, True, first.version)
        assert (await client.get(Purse, source).load()).balance == 6
        assert (await client.get(Purse, target).load()).balance == 4
