"""Schema evolution: ``schema_version=`` and ``@migration``.

A store written by version 1 of the models (``tests/schema_v1.py``, run in a
subprocess or by ``durable serve``) is opened by version 2 (``tests/schema_v2.py``):
a field removed, one renamed, one whose type changed. Loading older state runs the
migrations and validates; it is stored migrated (every field, and the schema
version) with the next change, or by ``durable migrate``. State written by a newer
version is refused.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from websockets.sync.client import connect

from cloudflare_durable import (
    DurableClient,
    DurableModel,
    ModelDefinitionError,
    ValidationError,
    migration,
    remote,
)
from cloudflare_durable import _protocol as proto
from cloudflare_durable._schema import schema_document
from cloudflare_durable.host import Host
from cloudflare_durable.host._migrate import migrate_objects
from cloudflare_durable.testing import NetworkHost

from .conftest import CLIENT_OPTIONS, ROOT, TOKEN
from .schema_v2 import MIGRATED, Rename, Retype, Shrink

pytestmark = pytest.mark.anyio

V1 = ROOT / "tests" / "schema_v1.py"
V2 = ROOT / "tests" / "schema_v2.py"
MODELS = list(MIGRATED)


def run_v1(command: str, store: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(V1), command, str(store)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def rows(store: Path, model: str, object_id: str = "one") -> tuple[int, int, dict[str, Any]]:
    """(version, schema version, fields) of an object, as stored."""
    with sqlite3.connect(store) as db:
        version, schema_version = db.execute(
            "SELECT version, schema_version FROM durable_objects WHERE model = ? AND object_id = ?",
            (model, object_id),
        ).fetchone()
        fields = dict(
            db.execute(
                "SELECT field, value FROM durable_fields WHERE model = ? AND object_id = ?",
                (model, object_id),
            ).fetchall()
        )
    return version, schema_version, {name: json.loads(text) for name, text in fields.items()}


@pytest.fixture
def v1_store(tmp_path: Path) -> Path:
    store = tmp_path / "v1.sqlite3"
    run_v1("write", store)
    return store


@pytest.fixture(params=["embedded", "network"])
async def v2_client(request: pytest.FixtureRequest, v1_store: Path) -> AsyncIterator[DurableClient]:
    """A client of version 2 of the models, on the store version 1 wrote."""
    if request.param == "embedded":
        async with DurableClient(store=str(v1_store), **CLIENT_OPTIONS) as client:
            yield client
        return
    with NetworkHost(V2, store=v1_store, token=TOKEN) as server:
        async with DurableClient(server.url, token=TOKEN, **CLIENT_OPTIONS) as client:
            yield client


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
async def test_older_state_is_migrated_when_read(
    v2_client: DurableClient, v1_store: Path, model: type[DurableModel]
) -> None:
    loaded = await v2_client.get(model, "one").load()
    assert loaded.model_dump() == MIGRATED[model]
    assert loaded.durable_version == 1
    assert rows(v1_store, model.__durable_name__)[1] == 1  # reading stores nothing


async def test_migrated_state_is_stored_whole_with_the_next_change(
    v2_client: DurableClient, v1_store: Path
) -> None:
    assert await v2_client.get(Shrink, "one").bump() == 4
    assert rows(v1_store, "test.Shrink") == (2, 2, {"kept": 4})  # legacy is gone
    await v2_client.get(Rename, "one").rename("kettle")
    assert rows(v1_store, "test.Rename") == (2, 2, {"name": "kettle"})
    assert await v2_client.get(Retype, "one").describe() == "12.50"  # no change: nothing stored
    assert rows(v1_store, "test.Retype")[:2] == (1, 1)


async def test_a_subscriber_gets_the_migrated_state(v2_client: DurableClient) -> None:
    async with v2_client.get(Rename, "one").subscribe() as snapshots:
        assert (await anext(snapshots)).name == "teapot"
        await v2_client.get(Rename, "one").rename("kettle")
        changed = await anext(snapshots)
        assert (changed.name, changed.durable_version) == ("kettle", 2)


async def test_state_that_does_not_migrate_is_refused_clearly(v2_client: DurableClient) -> None:
    with pytest.raises(ValidationError) as refused:
        await v2_client.get(Retype, "broken").load()
    assert "schema version 1" in refused.value.message
    assert refused.value.details["errors"][0]["type"] == "migration_failed"


async def test_newer_state_is_refused_by_older_code(v1_store: Path) -> None:
    async with DurableClient(store=str(v1_store)) as client:
        for model in MODELS:
            await client.get(model, "one").load()
        await client.get(Shrink, "one").bump()  # stored by version 2
    printed = run_v1("read", v1_store)
    assert "Shrink ValidationError test.Shrink 'one' is stored by schema version 2" in printed
    assert "this code knows up to 1" in printed
    assert "schema_version_newer" in printed
    assert "Rename {'title': 'teapot'}" in printed  # untouched: still version 1


async def _bump(store: Path) -> None:
    async with DurableClient(store=str(store)) as client:
        await client.get(Shrink, "one").bump()


def test_newer_state_is_refused_over_the_wire(v1_store: Path) -> None:
    anyio.run(_bump, v1_store)
    with (
        NetworkHost(V1, store=v1_store, token=TOKEN) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http,
    ):
        for request in [
            http.build_request("GET", proto.object_path("test.Shrink", "one")),
            http.build_request("POST", proto.object_path("test.Shrink", "one", "call", "bump")),
            http.build_request(
                "PATCH", proto.object_path("test.Shrink", "one"), json={"fields": {}}
            ),
        ]:
            reply = http.send(request)
            assert reply.status_code == 422, reply.text
            error = reply.json()["error"]
            assert error["code"] == "validation_error"
            assert error["message"] == (
                "test.Shrink 'one' is stored by schema version 2, this code knows up to 1"
            )
            assert error["details"]["errors"][0]["type"] == "schema_version_newer"
        assert http.delete(proto.object_path("test.Shrink", "one")).json()["deleted"] is True
        created = http.put(proto.object_path("test.Shrink", "one"), json={"state": {}})
        assert created.status_code == 201
    assert rows(v1_store, "test.Shrink")[1:] == (1, {"kept": 0, "legacy": ""})


def test_migrate_upgrades_every_object_eagerly(v1_store: Path) -> None:
    host = Host(str(v1_store), models=MODELS)
    try:
        seen: list[tuple[int, int]] = []
        dry = migrate_objects(host, Retype, dry_run=True, progress=lambda *p: seen.append(p))
        assert (dry.total, dry.migrated, list(dry.failed)) == (2, 1, ["broken"])
        assert seen == [(1, 2), (2, 2)]
        assert rows(v1_store, "test.Retype")[1] == 1  # a dry run stores nothing
        report = migrate_objects(host, "test.Retype")
        assert (report.migrated, list(report.failed)) == (1, ["broken"])
        assert rows(v1_store, "test.Retype") == (1, 2, {"cents": 1250})  # same version
        assert migrate_objects(host, Retype).total == 1  # only the broken one is left
        for model in (Shrink, Rename):
            assert migrate_objects(host, model).migrated == 1
            assert rows(v1_store, model.__durable_name__) == (1, 2, MIGRATED[model])
    finally:
        host.close()


def test_durable_migrate_command(v1_store: Path) -> None:
    def durable(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cloudflare_durable._cli", "migrate", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    dry = durable(str(V2), "Rename", "--store", str(v1_store), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 objects stored by a schema version older than 2; 1 would be migrated" in dry.stdout
    assert rows(v1_store, "test.Rename")[1] == 1
    done = durable(str(V2), "test.Rename", "--store", str(v1_store))
    assert done.returncode == 0, done.stderr
    assert "1 migrated, 0 failed" in done.stdout
    assert rows(v1_store, "test.Rename") == (1, 2, {"name": "teapot"})
    failed = durable(str(V2), "Retype", "--store", str(v1_store))
    assert failed.returncode == 1
    assert "'broken'" in failed.stderr
    assert durable(str(V2), "Nope", "--store", str(v1_store)).returncode == 2


def test_the_schema_document_carries_the_version() -> None:
    document = schema_document(MODELS)
    assert {name: model["schema_version"] for name, model in document["models"].items()} == {
        "test.Rename": 2,
        "test.Retype": 2,
        "test.Shrink": 2,
    }


def test_ill_formed_declarations_are_refused() -> None:
    with pytest.raises(ModelDefinitionError, match="schema_version"):

        class Zero(DurableModel, name="test.schema.Zero", schema_version=0):
            pass

    with pytest.raises(ModelDefinitionError, match="from_version"):
        migration(from_version=0)
    with pytest.raises(ModelDefinitionError, match="at version 2"):

        class Ahead(DurableModel, name="test.schema.Ahead", schema_version=2):
            @migration(from_version=2)
            @staticmethod
            def nothing(data: dict[str, Any]) -> dict[str, Any]:
                return data

    with pytest.raises(ModelDefinitionError, match="two migrations"):

        class Twice(DurableModel, name="test.schema.Twice", schema_version=2):
            @migration(from_version=1)
            @staticmethod
            def one(data: dict[str, Any]) -> dict[str, Any]:
                return data

            @migration(from_version=1)
            @staticmethod
            def other(data: dict[str, Any]) -> dict[str, Any]:
                return data


class Chained(DurableModel, name="test.schema.Chained", schema_version=4):
    """Version 2 had no migration (a field with a default was added)."""

    label: str = ""
    size: int = 0

    @migration(from_version=1)
    def from_one(data: dict[str, Any]) -> dict[str, Any]:  # no @staticmethod: fine too
        data["label"] = data.pop("name", "")
        return data

    @migration(from_version=3)
    @staticmethod
    def from_three(data: dict[str, Any]) -> dict[str, Any]:
        data["label"] = data["label"].upper()
        return data

    @remote
    async def touch(self) -> None:
        self.size += 1


async def test_a_chain_of_migrations_runs_in_order(tmp_path: Path) -> None:
    store = tmp_path / "chain.sqlite3"
    async with DurableClient(store=str(store)) as client:
        await client.get(Chained, "one").touch()
    with sqlite3.connect(store) as db:
        db.execute("UPDATE durable_objects SET schema_version = 1")
        db.execute(
            "UPDATE durable_fields SET field = 'name', value = '\"ann\"' WHERE field = 'label'"
        )
    assert Chained.from_one({"name": "x"}) == {"label": "x"}  # still callable on the class
    async with DurableClient(store=str(store)) as client:
        loaded = await client.get(Chained, "one").load()
        assert (loaded.label, loaded.size) == ("ANN", 1)


def test_a_subscription_to_newer_state_is_refused_with_an_error_frame(v1_store: Path) -> None:
    anyio.run(_bump, v1_store)
    with NetworkHost(V1, store=v1_store, token=TOKEN) as server:
        url = server.url.replace("http://", "ws://") + proto.object_path("test.Shrink", "one", "ws")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with connect(url, additional_headers=headers, open_timeout=10) as socket:
            socket.send(json.dumps({"type": "subscribe", "since": None}))
            frame = json.loads(socket.recv(timeout=10))
            assert frame["type"] == "error"
            assert frame["id"] is None
            assert frame["error"]["details"]["errors"][0]["type"] == "schema_version_newer"
            socket.send(json.dumps({"type": "ping"}))
            assert json.loads(socket.recv(timeout=10)) == {"type": "pong"}
