"""Behaviour of the Python hosts (embedded and network) with test-only models."""

from __future__ import annotations

import anyio
import pytest

from cloudflare_durable import (
    DurableClient,
    InvalidResultError,
    ObjectNotFoundError,
    RemoteError,
    ValidationError,
)

from .models import Ledger, Noted, Profile, Tricky

pytestmark = pytest.mark.anyio


async def _unchanged(ledger: Ledger, entries: list[str], total: int, version: int) -> None:
    snapshot = await ledger.load()
    assert (snapshot.entries, snapshot.total, snapshot.durable_version) == (entries, total, version)


async def test_a_raise_after_mutating_keeps_nothing(py_client: DurableClient, oid: str) -> None:
    ledger = py_client.get(Ledger, oid)
    assert await ledger.add("a", 5) == 5
    with pytest.raises(RemoteError) as raised:
        await ledger.add_then_fail("b")
    assert raised.value.type_name == "RuntimeError"
    assert raised.value.details["message"] == "refusing b"
    await _unchanged(ledger, ["a"], 5, 1)
    assert await ledger.add("c", 1) == 6  # the live state was rebuilt, not the half-done one
    await _unchanged(ledger, ["a", "c"], 6, 2)


async def test_a_result_that_breaks_its_annotation_changes_nothing(
    py_client: DurableClient, oid: str
) -> None:
    ledger = py_client.get(Ledger, oid)
    await ledger.add("a", 1)
    with pytest.raises(InvalidResultError, match="return annotation"):
        await ledger.bad_result()
    with pytest.raises(InvalidResultError):
        await ledger.unserialisable()
    await _unchanged(ledger, ["a"], 1, 1)


async def test_a_body_that_corrupts_state_changes_nothing(
    py_client: DurableClient, oid: str
) -> None:
    ledger = py_client.get(Ledger, oid)
    await ledger.add("a", 1)
    with pytest.raises(InvalidResultError, match="left a state") as refused:
        await ledger.corrupt()
    assert "42" not in str(refused.value)  # no slice of the value in the message
    await _unchanged(ledger, ["a"], 1, 1)


async def test_required_fields_need_create(py_client: DurableClient, oid: str) -> None:
    profile = py_client.get(Profile, oid)
    with pytest.raises(ObjectNotFoundError, match="create"):
        await profile.load()
    with pytest.raises(ObjectNotFoundError):
        await profile.birthday()
    with pytest.raises(ValidationError, match="email"):
        await py_client.create(Profile, oid, age=3)
    with pytest.raises(ValidationError, match="age"):
        await py_client.create(Profile, oid, email="a@b.c", age=-1)
    created = await py_client.create(Profile, oid, email="a@b.c")
    assert (created.email, created.age) == ("a@b.c", 0)
    assert await profile.birthday() == 1
    with pytest.raises(ValidationError, match="age"):
        await profile.update(age=-5)
    assert await profile.delete() is True
    with pytest.raises(ObjectNotFoundError):
        await profile.load()
    assert not profile.durable_loaded


async def test_calls_to_one_object_never_interleave(py_client: DurableClient, oid: str) -> None:
    tricky = py_client.get(Tricky, oid)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(tricky.slow_increment)
    assert (await tricky.load()).value == 100


async def test_a_call_that_only_emits_events_makes_a_version(
    py_client: DurableClient, oid: str
) -> None:
    ledger = py_client.get(Ledger, oid)
    with anyio.fail_after(20):
        async with ledger.events(Noted) as events:
            await ledger.note("one")
            await ledger.add("two", 2)
            await ledger.note("three")
            notes = [(await anext(events)).text for _ in range(3)]
    assert notes == ["one", "two", "three"]
    assert (await ledger.load()).durable_version == 3  # each call emitted: a change each
