"""Listing the objects of a model: ``Model.list(prefix, limit)`` and
``GET /v1/objects/{model}?prefix=&after=&limit=`` (``docs/protocol.md``).

Ids of objects with stored state, in the order of their UTF-8 bytes, page by page;
exact on the Python hosts, including right after concurrent creates and deletes.
"""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import quote

import anyio
import httpx
import pytest

from cloudflare_durable import DurableClient, UnknownModelError, UsageError
from cloudflare_durable import _protocol as proto
from cloudflare_durable.host import Host
from cloudflare_durable.host._store import prefix_end

from .models import Alarm, Counter

pytestmark = pytest.mark.anyio

# Ids whose UTF-8 byte order differs from their UTF-16 order and from Python's
# str order only where it must: U+FFFF sorts before U+10000 in UTF-8 (and in
# code points), after it in UTF-16.
ODD = ["a", "b", "a/b", "é", "\uffff", "\U00010000", "A", "a b", "~", "z" * 100]


def byte_order(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda object_id: object_id.encode())


async def ids_of(client: DurableClient, prefix: str, limit: int | None = None) -> list[str]:
    return [object_id async for object_id in Counter.list(prefix, limit, client=client)]


async def test_ids_come_in_utf8_byte_order_with_their_prefix(
    py_client: DurableClient, oid: str
) -> None:
    made = [f"{oid}/{suffix}" for suffix in ODD]
    for object_id in random.sample(made, len(made)):
        await py_client.get(Counter, object_id).increment(1)
    await py_client.get(Counter, f"{oid}-other").increment(1)  # another prefix
    assert await ids_of(py_client, f"{oid}/") == byte_order(made)
    assert await ids_of(py_client, f"{oid}/a") == byte_order(
        [i for i in made if i.startswith(f"{oid}/a")]
    )
    assert await ids_of(py_client, f"{oid}/", limit=3) == byte_order(made)[:3]
    assert await ids_of(py_client, f"{oid}/", limit=0) == []
    assert await ids_of(py_client, f"{oid}/nothing") == []


async def test_only_objects_with_state_are_listed(py_client: DurableClient, oid: str) -> None:
    kept, deleted = py_client.get(Counter, f"{oid}-kept"), py_client.get(Counter, f"{oid}-gone")
    await kept.increment(1)
    await deleted.increment(1)
    await deleted.delete()  # version 2, no state
    await py_client.get(Counter, f"{oid}-read").load()  # read, never written
    assert await ids_of(py_client, oid) == [f"{oid}-kept"]
    await deleted.increment(1)
    assert await ids_of(py_client, oid) == [f"{oid}-gone", f"{oid}-kept"]


async def test_pages_are_fetched_as_the_iteration_goes(
    py_client: DurableClient, oid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proto, "MAX_LIST_LIMIT", 7)  # the client's pages: 7 ids each
    made = [f"{oid}-{n:03d}" for n in range(30)]
    await Counter.create_many({object_id: {} for object_id in made}, client=py_client)
    assert await ids_of(py_client, oid) == made
    assert await ids_of(py_client, oid, limit=15) == made[:15]
    listed = Counter.list(oid, client=py_client)
    assert [await anext(listed) for _ in range(8)] == made[:8]  # two pages so far
    await py_client.get(Counter, made[20]).delete()  # not fetched yet: not listed
    rest = [object_id async for object_id in listed]
    assert rest == [i for i in made[8:] if i != made[20]]


async def test_a_body_lists_on_the_host_running_it(py_client: DurableClient, oid: str) -> None:
    for n in range(3):
        await py_client.get(Alarm, f"{oid}-{n}").ring("t")
    assert await py_client.get(Alarm, f"{oid}-0").ids(oid) == [f"{oid}-{n}" for n in range(3)]


async def test_bad_arguments_are_refused_before_any_io(py_client: DurableClient) -> None:
    with pytest.raises(UsageError):
        Counter.list(3, client=py_client)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Counter.list("", -1, client=py_client)


async def test_an_unknown_model_is_refused(tmp_path: Path) -> None:
    async with (
        Host(str(tmp_path / "s.sqlite3"), models=[Alarm]) as host,
        DurableClient(host=host) as client,
    ):
        with pytest.raises(UnknownModelError):
            await ids_of(client, "")


async def test_listing_matches_the_truth_after_concurrent_creates_and_deletes(
    py_client: DurableClient, oid: str
) -> None:
    """Twenty writers create and delete objects at random; the listing, taken while
    they write and after, always ends equal to the objects that have state."""
    latest: dict[str, tuple[int, bool]] = {}  # by id: the newest version seen, and its state
    rng = random.Random(oid)

    async def writer(number: int) -> None:
        for step in range(40):
            object_id = f"{oid}-{rng.randrange(60):02d}"
            handle = py_client.get(Counter, object_id)
            if rng.random() < 0.6:
                await handle.increment(1)
                seen = (handle.durable_version, True)
            else:
                await handle.delete()
                seen = (handle.durable_version, False)
            latest[object_id] = max(latest.get(object_id, seen), seen)
            if step % 10 == number % 10:
                listed = await ids_of(py_client, oid)
                assert listed == byte_order(listed)  # in order while others write

    async with anyio.create_task_group() as group:
        for number in range(20):
            group.start_soon(writer, number)
    truth = byte_order([object_id for object_id, (_, present) in latest.items() if present])
    assert await ids_of(py_client, oid) == truth


def test_prefix_end_bounds_every_id_with_the_prefix() -> None:
    assert prefix_end("ab") == "ac"
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\U0010ffff") is None
    assert prefix_end("a\ud7ff") == "a\ue000"
    for prefix in ["a", "é", "\uffff", "x\U0010ffff"]:
        end = prefix_end(prefix)
        assert end is not None
        for tail in ["", "\x00", "\U0010ffff" * 3, "zz"]:
            assert (prefix + tail).encode() < end.encode()


class TestWire:
    """``GET /v1/objects/{model}`` on the network host, as bytes."""

    def test_pages_and_cursor(self, network_http: httpx.Client, oid: str) -> None:
        for n in range(5):
            reply = network_http.post(
                proto.object_path("Counter", f"{oid}-{n}", "call", "increment")
            )
            assert reply.status_code == 200
        page = network_http.get(f"/v1/objects/Counter?prefix={quote(oid)}&limit=2")
        assert page.status_code == 200
        assert page.headers["durable-protocol"] == "1"
        assert page.json() == {"ids": [f"{oid}-0", f"{oid}-1"], "next": f"{oid}-1"}
        after = quote(f"{oid}-1", safe="")
        page = network_http.get(f"/v1/objects/Counter?prefix={quote(oid)}&after={after}&limit=3")
        assert page.json() == {"ids": [f"{oid}-2", f"{oid}-3", f"{oid}-4"], "next": None}
        page = network_http.get(f"/v1/objects/Counter?limit=1000&prefix={quote(oid)}&other=x")
        assert page.json()["ids"] == [f"{oid}-{n}" for n in range(5)]
        default = network_http.get(f"/v1/objects/Counter?prefix={quote(oid)}&after=")
        assert default.json()["next"] is None

    @pytest.mark.parametrize("limit", ["0", "1001", "x", "-1", "1.5", "", "%2B1", "%EF%BC%91"])
    def test_a_bad_limit_is_refused(self, network_http: httpx.Client, limit: str) -> None:
        reply = network_http.get(f"/v1/objects/Counter?limit={limit}")
        assert reply.status_code == 400
        assert reply.json()["error"]["code"] == "bad_request"

    @pytest.mark.parametrize("query", ["prefix=%G1", "after=%", "prefix=%E0%A4", "after=%FF"])
    def test_a_bad_escape_is_refused(self, network_http: httpx.Client, query: str) -> None:
        reply = network_http.get(f"/v1/objects/Counter?{query}")
        assert reply.status_code == 400
        assert reply.json()["error"]["code"] == "invalid_id"

    def test_values_are_decoded_once_and_plus_is_a_plus(
        self, network_http: httpx.Client, oid: str
    ) -> None:
        for suffix in ["a+b", "a b", "a%20b"]:
            path = proto.object_path("Counter", f"{oid}{suffix}", "call", "increment")
            assert network_http.post(path).status_code == 200
        listed = network_http.get(f"/v1/objects/Counter?prefix={quote(oid)}a+").json()["ids"]
        assert listed == [f"{oid}a+b"]
        listed = network_http.get(f"/v1/objects/Counter?prefix={quote(oid)}a%2520").json()["ids"]
        assert listed == [f"{oid}a%20b"]

    def test_unknown_model_other_methods_and_no_token(self, network_http: httpx.Client) -> None:
        assert network_http.get("/v1/objects/Nope").json()["error"]["code"] == "unknown_model"
        refused = network_http.post("/v1/objects/Counter")
        assert (refused.status_code, refused.json()["error"]["code"]) == (
            405,
            "method_not_allowed",
        )
        anonymous = network_http.get("/v1/objects/Counter", headers={"Authorization": ""})
        assert anonymous.status_code == 401
