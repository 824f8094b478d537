"""Schedules: ``self.schedule(when, self.method, ...)`` in a body, ``cancel_schedule``,
``handle.schedules()`` and ``GET /v1/objects/{model}/{id}/schedules``.

A schedule is stored with the change of the call that made it, and runs once, at
or after its time, as a call of its object: its own version, its events, its
subscribers. Failures are retried with backoff, then kept as failed.
"""

from __future__ import annotations

import datetime
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest

from cloudflare_durable import DurableClient, RemoteError, Schedule
from cloudflare_durable import _protocol as proto
from cloudflare_durable.testing import NetworkHost

from .conftest import CLIENT_OPTIONS, MODELS, TOKEN
from .models import ALARM_FAILURES, Alarm, Rang

pytestmark = pytest.mark.anyio

UTC = datetime.UTC
WHEN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def wait_for(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll ``check`` until it holds (what it waits for happens in another process, or
    in a task nothing here can signal from)."""
    with anyio.fail_after(within):
        while not await check():  # noqa: ASYNC110
            await anyio.sleep(0.02)


async def test_a_schedule_runs_once_as_a_call_of_its_object(
    py_client: DurableClient, oid: str
) -> None:
    alarm = py_client.get(Alarm, oid)
    async with alarm.subscribe() as snapshots, alarm.events(Rang) as events:
        assert (await anext(snapshots)).durable_version == 0
        before = datetime.datetime.now(UTC)
        schedule_id = await alarm.arm(0.5, "x")
        assert re.fullmatch(r"[0-9a-f]{32}", schedule_id)
        assert alarm.durable_version == 1  # scheduling is a change
        [pending] = await alarm.schedules()
        assert isinstance(pending, Schedule)
        assert (pending.id, pending.method, pending.args) == (schedule_id, "ring", {"token": "x"})
        assert (pending.attempts, pending.status, pending.error) == (0, "pending", None)
        assert before + datetime.timedelta(seconds=0.45) < pending.when
        assert pending.when < datetime.datetime.now(UTC) + datetime.timedelta(seconds=0.51)
        with anyio.fail_after(10):
            assert (await anext(snapshots)).durable_version == 1
            rang = await anext(events)
            snapshot = await anext(snapshots)
    assert datetime.datetime.now(UTC) >= pending.when
    assert rang == Rang(token="x")
    assert (snapshot.durable_version, snapshot.rings) == (2, ["x"])
    assert await alarm.schedules() == []
    await anyio.sleep(0.3)
    assert (await alarm.load()).rings == ["x"]


async def test_an_aware_datetime_keeps_its_millisecond(py_client: DurableClient, oid: str) -> None:
    alarm = py_client.get(Alarm, oid)
    far = datetime.datetime(
        2100, 1, 2, 3, 4, 5, 123456, datetime.timezone(datetime.timedelta(hours=5))
    )
    far_id = await alarm.arm_at(far, "far")
    [pending] = await alarm.schedules()
    assert pending.when == far.replace(microsecond=124000).astimezone(UTC)  # rounded up
    assert await alarm.disarm(far_id)
    soon = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=-3)))
    await alarm.arm_at(soon + datetime.timedelta(seconds=0.3), "at")
    await wait_for(lambda: _rang(alarm, ["at"]))


async def _rang(alarm: Alarm, expected: list[str]) -> bool:
    return (await alarm.load()).rings == expected


async def test_many_schedules_each_run_once(py_client: DurableClient, oid: str) -> None:
    alarm = py_client.get(Alarm, oid)
    ids = await alarm.arm_many([0.05 * (n % 7) for n in range(40)], "t")
    assert len(set(ids)) == 40
    await wait_for(lambda: _count(alarm, 40))
    await anyio.sleep(0.3)
    rings = (await alarm.load()).rings
    assert sorted(rings) == sorted(f"t{n}" for n in range(40))
    assert await alarm.schedules() == []


async def _count(alarm: Alarm, count: int) -> bool:
    return len((await alarm.load()).rings) >= count


async def test_arguments_are_validated_when_scheduling(py_client: DurableClient, oid: str) -> None:
    alarm = py_client.get(Alarm, oid)
    with pytest.raises(RemoteError) as bad:
        await alarm.arm_bad(0.1)
    assert bad.value.type_name == "ValidationError"
    with pytest.raises(RemoteError) as naive:
        await alarm.arm_naive()
    assert naive.value.type_name == "UsageError"
    assert "aware" in naive.value.remote_message
    assert await alarm.schedules() == []
    assert (await alarm.load()).durable_version == 0


async def test_a_call_that_raises_schedules_nothing(py_client: DurableClient, oid: str) -> None:
    alarm = py_client.get(Alarm, oid)
    with pytest.raises(RemoteError):
        await alarm.arm_then_fail(0.05)
    assert await alarm.schedules() == []
    await anyio.sleep(0.2)
    loaded = await alarm.load()
    assert (loaded.durable_version, loaded.rings) == (0, [])


async def test_cancelling(py_client: DurableClient, oid: str) -> None:
    alarm = py_client.get(Alarm, oid)
    later = await alarm.arm(60, "later")
    soon = await alarm.arm(1.0, "soon")
    assert [s.id for s in await alarm.schedules()] == [soon, later]  # by time
    assert await alarm.disarm(soon) is True
    assert alarm.durable_version == 3  # cancelling is a change...
    assert await alarm.disarm(soon) is False
    assert await alarm.disarm("0" * 32) is False
    assert alarm.durable_version == 3  # ... cancelling nothing is not
    assert await alarm.arm_and_cancel(0.1) is True  # made and cancelled by one call: nothing
    assert alarm.durable_version == 3
    assert [s.id for s in await alarm.schedules()] == [later]
    await anyio.sleep(1.2)
    assert (await alarm.load()).rings == []


async def test_deleting_the_state_cancels_its_schedules(py_client: DurableClient, oid: str) -> None:
    alarm = py_client.get(Alarm, oid)
    await alarm.arm(1.0, "x")
    assert await alarm.delete()
    assert await alarm.schedules() == []
    await anyio.sleep(1.2)
    loaded = await alarm.load()
    assert (loaded.durable_version, loaded.rings) == (2, [])


class TestEmbedded:
    """What only the embedded host shows: its schedules run while a client is entered,
    or when it is next used; failures retried, with fast backoff for the test."""

    @pytest.fixture(autouse=True)
    def fast_retries(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(proto, "SCHEDULE_RETRY_FIRST", 0.05)
        monkeypatch.setattr(proto, "SCHEDULE_RETRY_MAX", 0.1)
        monkeypatch.setattr(proto, "SCHEDULE_ATTEMPTS", 4)

    async def test_failures_are_retried_then_kept_as_failed(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, "cloudflare_durable.host")
        ALARM_FAILURES.update({"twice": 2, "always": 99})
        async with DurableClient(store=str(tmp_path / "s.sqlite3")) as client:
            twice, always = client.get(Alarm, "twice"), client.get(Alarm, "always")
            await twice.arm_flaky(0)
            schedule_id = await always.arm_flaky(0)
            await wait_for(lambda: _rang(twice, ["flaky"]))
            await wait_for(lambda: _failed(always))
            [failed] = await always.schedules()
            assert (failed.id, failed.status, failed.attempts) == (schedule_id, "failed", 4)
            assert failed.error is not None
            assert failed.error["code"] == "remote_error"
            assert failed.error["details"]["type"] == "RuntimeError"
            assert await twice.schedules() == []
            await anyio.sleep(0.3)
            assert (await always.load()).rings == []
            assert ALARM_FAILURES == {"twice": 0, "always": 95}
        messages = [record.getMessage() for record in caplog.records]
        assert any("failed (attempt 1 of 4)" in text for text in messages)
        assert any("failed 4 times, and is kept as failed" in text for text in messages)
        assert any(record.levelno == logging.ERROR for record in caplog.records)

    async def test_due_schedules_run_when_a_client_opens(self, tmp_path: Path) -> None:
        store = str(tmp_path / "s.sqlite3")
        async with DurableClient(store=store) as client:
            await client.get(Alarm, "a").arm(0.2, "while closed")
        await anyio.sleep(0.4)
        async with DurableClient(store=store) as client:
            await wait_for(lambda: _rang(client.get(Alarm, "a"), ["while closed"]), within=2)

    async def test_a_client_not_entered_runs_what_is_due_before_its_next_operation(
        self, tmp_path: Path
    ) -> None:
        client = DurableClient(store=str(tmp_path / "s.sqlite3"))
        try:
            alarm = client.get(Alarm, "lazy")
            await alarm.arm(0.1, "lazy")
            await anyio.sleep(0.3)
            assert await alarm.schedules() == []  # ran first
            assert (await alarm.load()).rings == ["lazy"]
        finally:
            await client.aclose()

    async def test_a_run_carries_its_request_id_and_is_remembered(self, tmp_path: Path) -> None:
        store = tmp_path / "s.sqlite3"
        async with DurableClient(store=str(store)) as client:
            alarm = client.get(Alarm, "r")
            schedule_id = await alarm.arm(0, "r")
            await wait_for(lambda: _rang(alarm, ["r"]))
        with sqlite3.connect(store) as db:
            rows = db.execute(
                "SELECT request_id FROM durable_requests WHERE object_id = 'r'"
            ).fetchall()
            left = db.execute("SELECT COUNT(*) FROM durable_schedules").fetchone()[0]
        assert rows == [(f"schedule:{schedule_id}",)]
        assert left == 0


async def _failed(alarm: Alarm) -> bool:
    found = await alarm.schedules()
    return bool(found) and found[0].status == "failed"


class TestWire:
    def test_the_schedules_of_an_object(self, network_http: httpx.Client, oid: str) -> None:
        path = proto.object_path("test.Alarm", oid)
        assert network_http.get(f"{path}/schedules").json() == {"schedules": []}
        for token, delay in [("b", 60), ("a", 30), ("c", 60)]:
            reply = network_http.post(
                f"{path}/call/arm", json={"args": {"delay": delay, "token": token}}
            )
            assert reply.status_code == 200
        listed = network_http.get(f"{path}/schedules")
        assert listed.status_code == 200
        entries = listed.json()["schedules"]
        assert entries[0]["args"]["token"] == "a"
        assert [(e["when"], e["id"]) for e in entries] == sorted(
            (e["when"], e["id"]) for e in entries
        )
        for entry in entries:
            assert set(entry) == {"id", "when", "method", "args", "attempts", "status", "error"}
            assert WHEN.fullmatch(entry["when"]), entry["when"]
            assert re.fullmatch(r"[0-9a-f]{32}", entry["id"])
            assert (entry["method"], entry["attempts"], entry["status"], entry["error"]) == (
                "ring",
                0,
                "pending",
                None,
            )

    def test_refusals(self, network_http: httpx.Client) -> None:
        assert network_http.post("/v1/objects/test.Alarm/a/schedules").status_code == 405
        unknown = network_http.get("/v1/objects/Nope/a/schedules")
        assert unknown.json()["error"]["code"] == "unknown_model"
        bad = network_http.get("/v1/objects/test.Alarm/%00/schedules")
        assert bad.json()["error"]["code"] == "invalid_id"


async def test_the_network_host_runs_what_fell_due_while_it_was_down(tmp_path: Path) -> None:
    with NetworkHost(MODELS, store=tmp_path / "s.sqlite3", token=TOKEN) as server:
        async with DurableClient(server.url, token=TOKEN, **CLIENT_OPTIONS) as client:
            alarm = client.get(Alarm, "down")
            await alarm.arm(0.5, "late")
            server.stop()
            await anyio.sleep(1.0)
            server.start()
            await wait_for(lambda: _rang(alarm, ["late"]))
            assert await alarm.schedules() == []
