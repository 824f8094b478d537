"""``durable ls``, ``export``, ``import`` and ``migrate``, run as users run them (the
console script in a subprocess), moving objects between the embedded store and the
network host, across schema versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudflare_durable.testing import NetworkHost

from .conftest import TOKEN
from .test_cli import COUNTER, clean_env, durable

V1 = """
from cloudflare_durable import DurableModel, remote

class Item(DurableModel, schema_version=1):
    name: str
    count: int = 0
"""

V2 = """
from typing import Any
from cloudflare_durable import DurableModel, migration

class Item(DurableModel, schema_version=2):
    title: str
    count: int = 0

    @migration(from_version=1)
    @staticmethod
    def rename(data: dict[str, Any]) -> dict[str, Any]:
        data["title"] = data.pop("name").upper()
        return data
"""


def ok(*args: str) -> str:
    result = durable(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def counters(store: Path, *ids: str) -> None:
    for n, object_id in enumerate(ids, start=1):
        ok(
            "call",
            "Counter",
            object_id,
            "increment",
            f"by={n}",
            "--models",
            COUNTER,
            "--store",
            str(store),
        )


def test_ls_lists_ids_with_state_in_byte_order(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite3"
    counters(store, "b", "a", "é", "a/2")
    local = ["--models", COUNTER, "--store", str(store)]
    assert ok("ls", "Counter", *local).splitlines() == ["a", "a/2", "b", "é"]
    assert ok("ls", "Counter", "--prefix", "a", *local).splitlines() == ["a", "a/2"]
    assert ok("ls", "Counter", "--limit", "1", *local).splitlines() == ["a"]
    assert [json.loads(line) for line in ok("ls", "Counter", "--json", *local).splitlines()] == [
        "a",
        "a/2",
        "b",
        "é",
    ]


def test_objects_move_from_the_embedded_store_to_a_server_and_back(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite3"
    seed = tmp_path / "seed.jsonl"
    seed.write_text(
        "".join(
            json.dumps(
                {
                    "model": "Counter",
                    "id": f"c{n:04}",
                    "version": 9,
                    "schema_version": 1,
                    "state": {"value": n},
                }
            )
            + "\n"
            for n in range(1, 1203)  # more than one page of a listing
        )
    )
    ok("import", str(seed), "--models", COUNTER, "--store", str(store))
    exported = tmp_path / "counters.jsonl"
    ok("export", "Counter", "--models", COUNTER, "--store", str(store), "--out", str(exported))
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(lines) == 1202
    assert lines[0] == {
        "model": "Counter",
        "id": "c0001",
        "version": 1,
        "schema_version": 1,
        "state": {"value": 1},
    }
    remote = ["--url", "", "--token", TOKEN]
    with NetworkHost(COUNTER, store=tmp_path / "server.sqlite3", token=TOKEN) as server:
        remote[1] = server.url
        summary = json.loads(ok("import", str(exported), "--json", *remote))
        assert summary == {
            "created": 1202,
            "replaced": 0,
            "skipped": 0,
            "failed": 0,
            "failures": [],
        }
        assert len(ok("ls", "Counter", *remote).splitlines()) == 1202
        state = json.loads(ok("get", "Counter", "c1202", "--json", *remote))
        assert (state["version"], state["state"]) == (1, {"value": 1202})

        # Again: every object exists now.
        again = durable("import", str(exported), "--json", *remote)
        assert again.returncode == 1
        refused = json.loads(again.stdout)
        assert (refused["created"], refused["failed"]) == (0, 1202)
        assert refused["failures"][0]["error"]["code"] == "already_exists"
        skipped = json.loads(ok("import", str(exported), "--existing", "skip", "--json", *remote))
        assert (skipped["skipped"], skipped["failed"]) == (1202, 0)
        ok("call", "Counter", "c0001", "increment", "by=100", *remote)
        replaced = json.loads(
            ok("import", str(exported), "--existing", "replace", "--json", *remote)
        )
        assert replaced["replaced"] == 1202
        state = json.loads(ok("get", "Counter", "c0001", "--json", *remote))
        assert state["state"] == {"value": 1}  # the exported value again

        # And back, from the server into a fresh store, through a pipe.
        back = tmp_path / "back.jsonl"
        ok("export", "Counter", "--prefix", "c000", "--out", str(back), *remote)
        copy = tmp_path / "copy.sqlite3"
        ok("import", str(back), "--models", COUNTER, "--store", str(copy))
        local = ["--models", COUNTER, "--store", str(copy)]
        assert ok("ls", "Counter", *local).splitlines() == [f"c000{n}" for n in range(1, 10)]


def test_import_migrates_older_state_and_refuses_newer(tmp_path: Path) -> None:
    (tmp_path / "v1.py").write_text(V1)
    (tmp_path / "v2.py").write_text(V2)
    v1 = ["--models", str(tmp_path / "v1.py")]
    v2 = ["--models", str(tmp_path / "v2.py")]
    old = tmp_path / "old.jsonl"
    old.write_text(
        json.dumps(
            {
                "model": "Item",
                "id": "i1",
                "version": 7,
                "schema_version": 1,
                "state": {"name": "pen", "count": 2},
            }
        )
        + "\n"
    )
    store = tmp_path / "v2.sqlite3"
    ok("import", str(old), *v2, "--store", str(store))
    state = json.loads(ok("get", "Item", "i1", "--json", *v2, "--store", str(store)))
    assert state == {
        "model": "Item",
        "id": "i1",
        "version": 1,
        "state": {"title": "PEN", "count": 2},
    }

    new = tmp_path / "new.jsonl"
    ok("export", "Item", *v2, "--store", str(store), "--out", str(new))
    assert json.loads(new.read_text())["schema_version"] == 2
    refused = durable("import", str(new), "--json", *v1, "--store", str(tmp_path / "v1.sqlite3"))
    assert refused.returncode == 1
    failure = json.loads(refused.stdout)["failures"][0]
    assert failure["error"]["code"] == "validation_error"
    assert "schema version 2" in failure["error"]["message"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json\n", "line 1: not JSON"),
        ('{"model": "Counter", "id": "a"}\n', "line 1: an export line has exactly the members"),
        (
            '{"model":"Counter","id":"a","version":1,"schema_version":1,"state":{"value":1}}\n'
            '{"model":"Counter","id":"a","version":1,"schema_version":1,"state":{"value":2}}\n',
            "line 2: Counter 'a' twice",
        ),
    ],
)
def test_a_bad_export_file_changes_nothing(tmp_path: Path, text: str, message: str) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(text)
    store = tmp_path / "s.sqlite3"
    result = durable("import", str(source), "--models", COUNTER, "--store", str(store))
    assert result.returncode == 1
    assert message in result.stderr
    assert ok("ls", "Counter", "--models", COUNTER, "--store", str(store)) == ""


def test_migrate_stores_every_object_migrated(tmp_path: Path) -> None:
    (tmp_path / "v1.py").write_text(V1)
    (tmp_path / "v2.py").write_text(V2)
    store = tmp_path / "s.sqlite3"
    for n in range(3):
        source = tmp_path / f"{n}.jsonl"
        source.write_text(
            json.dumps(
                {
                    "model": "Item",
                    "id": f"i{n}",
                    "version": 1,
                    "schema_version": 1,
                    "state": {"name": f"item {n}"},
                }
            )
            + "\n"
        )
        ok("import", str(source), "--models", str(tmp_path / "v1.py"), "--store", str(store))
    v2 = str(tmp_path / "v2.py")
    dry = json.loads(ok("migrate", v2, "Item", "--store", str(store), "--dry-run", "--json"))
    assert (dry["total"], dry["migrated"], dry["failed"], dry["dry_run"]) == (3, 3, {}, True)
    done = ok("migrate", v2, "Item", "--store", str(store))
    assert "3 objects stored by a schema version older than 2; 3 migrated, 0 failed" in done
    again = json.loads(ok("migrate", v2, "Item", "--store", str(store), "--json"))
    assert again["total"] == 0
    # The old code can no longer read what the new code stored.
    refused = durable(
        "get", "Item", "i0", "--models", str(tmp_path / "v1.py"), "--store", str(store)
    )
    assert refused.returncode == 1
    assert "stored by schema version 2" in refused.stderr
    missing = durable("migrate", v2, "Item", "--store", str(tmp_path / "nowhere.sqlite3"))
    assert missing.returncode == 2
    assert clean_env()  # the environment the commands ran in had no CLOUDFLARE_ variables
