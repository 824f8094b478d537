"""Time and collections on the Worker, from Python: listing through the index kept in
Durable Objects, schedules run exactly once through a crash, and state stored by an
older schema version opened by newer code (``worker/test/app`` serves ``app.Timer``
and ``app.Item``; ``worker/`` serves the examples)."""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from cloudflare_durable import _protocol as proto
from cloudflare_durable.testing import WorkerHost

from .conftest import TEST_WORKER, TOKEN, worker_available

pytestmark = [pytest.mark.worker, pytest.mark.anyio]

HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def own_test_worker(tmp_path: Path) -> Iterator[WorkerHost]:
    """The test Worker on a store of this test's own, to stop, kill and restart."""
    if not worker_available():
        pytest.skip("Node dependencies of worker/ are not installed (npm ci)")
    server = WorkerHost(tmp_path / "persist", token=TOKEN, worker_dir=TEST_WORKER)
    with server:
        yield server


async def list_all(http: httpx.AsyncClient, model: str, prefix: str, limit: int = 9) -> list[str]:
    ids: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"prefix": prefix, "limit": limit}
        if after is not None:
            params["after"] = after
        reply = await http.get(f"/v1/objects/{model}", params=params)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        ids += page["ids"]
        if page["next"] is None:
            return ids
        after = page["next"]


async def test_the_listing_converges_on_the_truth_after_concurrent_creates_and_deletes(
    worker_host: WorkerHost,
) -> None:
    prefix = f"conv-{uuid.uuid4().hex[:8]}-"
    ids = [f"{prefix}{n:03d}" for n in range(120)]
    draw = random.Random(7)
    exists: dict[str, bool] = dict.fromkeys(ids, False)
    async with httpx.AsyncClient(base_url=worker_host.url, headers=HEADERS, timeout=30) as http:

        async def churn(object_id: str) -> None:
            # Each object's own operations in order; objects concurrently with each other.
            path = proto.object_path("Counter", object_id)
            for _ in range(draw.randint(1, 4)):
                if draw.random() < 0.6:
                    reply = await http.post(f"{path}/call/increment", json={"args": {}})
                    assert reply.status_code == 200, reply.text
                    exists[object_id] = True
                else:
                    reply = await http.delete(path)
                    assert reply.status_code == 200, reply.text
                    exists[object_id] = False

        limiter = anyio.CapacityLimiter(24)

        async def limited(object_id: str) -> None:
            async with limiter:
                await churn(object_id)

        async with anyio.create_task_group() as group:
            for object_id in ids:
                group.start_soon(limited, object_id)
        truth = sorted(object_id for object_id, present in exists.items() if present)
        assert 0 < len(truth) < len(ids)
        assert await list_all(http, "Counter", prefix) == truth
        assert await list_all(http, "Counter", prefix, limit=1000) == truth


def fired(http: httpx.Client, object_id: str) -> list[str]:
    reply = http.get(proto.object_path("app.Timer", object_id))
    assert reply.status_code == 200, reply.text
    state = reply.json()["state"]
    return [] if state is None else list(state["fired"])


def test_schedules_run_exactly_once_through_a_kill(own_test_worker: WorkerHost) -> None:
    """Schedules fall due while the server is down (killed with SIGKILL, its workerd with
    it); after the restart, each runs exactly once (counted by its effect)."""
    objects = [f"t-{n}" for n in range(20)]
    notes = {object_id: [f"{object_id}/{k}" for k in range(3)] for object_id in objects}
    with httpx.Client(base_url=own_test_worker.url, headers=HEADERS, timeout=30) as http:
        for object_id, wanted in notes.items():
            http.put(proto.object_path("app.Timer", object_id), json={"state": {}})
            for k, note in enumerate(wanted):
                reply = http.post(
                    proto.object_path("app.Timer", object_id, "call", "later"),
                    json={"args": {"note": note, "seconds": 1.0 + 0.3 * k}},
                )
                assert reply.status_code == 200, reply.text
    own_test_worker.kill()
    time.sleep(2.5)  # every schedule falls due while nothing runs
    own_test_worker.start()
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=own_test_worker.url, headers=HEADERS, timeout=30) as http:
        while True:
            seen = {object_id: fired(http, object_id) for object_id in objects}
            if all(len(seen[o]) >= len(notes[o]) for o in objects) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        time.sleep(1.0)  # anything run twice would show now
        seen = {object_id: fired(http, object_id) for object_id in objects}
        for object_id in objects:
            assert sorted(seen[object_id]) == sorted(notes[object_id]), object_id
            schedules = http.get(proto.object_path("app.Timer", object_id, "schedules")).json()
            assert schedules == {"schedules": []}


def object_database(persist: Path, object_id: str) -> Path:
    """The SQLite database of the Durable Object named ``object_id`` under ``persist``."""
    for path in persist.rglob("*.sqlite"):
        if path.name == "metadata.sqlite":
            continue
        with sqlite3.connect(path) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "durable_object" not in tables:
                continue
            row = db.execute("SELECT object_id FROM durable_object").fetchone()
        db.close()
        if row is not None and row[0] == object_id:
            return path
    raise AssertionError(f"no Durable Object {object_id!r} under {persist}")


def rewrite(server: WorkerHost, object_id: str, *statements: str) -> None:
    """Run SQL on an object's database while its server is stopped."""
    server.stop()
    database = object_database(Path(server.persist), object_id)
    with sqlite3.connect(database) as db:
        for statement in statements:
            db.execute(statement)
    db.close()
    server.start()


def test_state_stored_by_schema_version_1_opened_by_version_2(own_test_worker: WorkerHost) -> None:
    """``app.Item`` is at schema version 2 (version 1 called ``name`` ``title``): the
    store of a version 1 Worker is migrated when each object is loaded, stored whole
    with its next change; state of a newer version is refused."""
    path = proto.object_path("app.Item", "i1")
    with httpx.Client(base_url=own_test_worker.url, headers=HEADERS, timeout=30) as http:
        assert http.put(path, json={"state": {"name": "x", "count": 2}}).status_code == 201
    rewrite(
        own_test_worker,
        "i1",
        "UPDATE durable_object SET schema_version = 1",
        "DELETE FROM durable_fields WHERE name = 'name'",
        "INSERT INTO durable_fields (name, value) VALUES ('title', '\"from v1\"')",
    )
    with httpx.Client(base_url=own_test_worker.url, headers=HEADERS, timeout=30) as http:
        assert http.get(path).json() == {"version": 1, "state": {"name": "from v1", "count": 2}}
        bumped = http.post(f"{path}/call/bump", json={"args": {}}).json()
        assert bumped == {"result": 3, "version": 2, "state": {"name": "from v1", "count": 3}}
    own_test_worker.stop()
    with sqlite3.connect(object_database(Path(own_test_worker.persist), "i1")) as db:
        assert db.execute("SELECT schema_version FROM durable_object").fetchone() == (2,)
        fields = dict(db.execute("SELECT name, value FROM durable_fields").fetchall())
    db.close()
    assert fields == {"name": json.dumps("from v1"), "count": "3"}
    own_test_worker.start()
    rewrite(own_test_worker, "i1", "UPDATE durable_object SET schema_version = 3")
    with httpx.Client(base_url=own_test_worker.url, headers=HEADERS, timeout=30) as http:
        refused = http.get(path)
        assert refused.status_code == 422
        error = refused.json()["error"]
        message = "app.Item 'i1' is stored by schema version 3, this code knows up to 2"
        assert error["message"] == message
        assert error["details"]["errors"] == [
            {"loc": [], "msg": message, "type": "schema_version_newer"}
        ]
        assert http.delete(path).json() == {"deleted": True, "version": 3, "state": None}
