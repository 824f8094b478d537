"""The network host mounted in a FastAPI app (``app.mount("/durable", create_app(...))``):
Python clients through the mount, the ``authorize`` hook applying the app's own
login to pages, and the app's routes using the host. The app is
``examples/live_auction/app.py``, run as users run it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import HTTPConnection
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from cloudflare_durable import DurableClient, issue_ticket
from cloudflare_durable.host import Host
from cloudflare_durable.host.asgi import create_app
from cloudflare_durable.testing import ServerProcess

from .conftest import ROOT
from .models import Auction, Counter, Wallet

TOKEN = "fastapi-token"


class AuctionApp(ServerProcess):
    def __init__(self, store: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
        super().__init__(
            env={**env, "CLOUDFLARE_DURABLE_TOKEN": TOKEN, "AUCTION_STORE": str(store)}
        )

    def command(self) -> list[str]:
        app = ROOT / "examples" / "live_auction" / "app.py"
        return [sys.executable, str(app), "--port", str(self.port)]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuctionApp]:
    with AuctionApp(tmp_path_factory.mktemp("fastapi") / "auction.sqlite3") as server:
        yield server


def test_python_clients_use_the_mounted_host(app: AuctionApp, oid: str) -> None:
    async def bid() -> tuple[int, int]:
        async with DurableClient(f"{app.url}/durable", token=TOKEN, timeout=10) as client:
            await client.get(Wallet, f"{oid}-ann").deposit(30)
            count = await client.get(Auction, oid).bid(f"{oid}-ann", 12)
            wallet = await client.get(Wallet, f"{oid}-ann").load()
            return count, wallet.holds[oid]

    assert anyio.run(bid) == (1, 12)
    refused = httpx.get(f"{app.url}/durable/v1/objects/Auction/{oid}")
    assert refused.status_code == 401


def _socket_url(app: AuctionApp, object_id: str) -> str:
    return app.url.replace("http://", "ws://") + f"/durable/v1/objects/Auction/{object_id}/ws"


def _open(app: AuctionApp, object_id: str, allow: list[str], cookie: str | None) -> object:
    ticket = issue_ticket(TOKEN, Auction, object_id, allow=allow)
    headers = {} if cookie is None else {"Cookie": f"user={cookie}"}
    return connect(
        _socket_url(app, object_id),
        subprotocols=["durable.v1", f"durable.ticket.{ticket}"],  # type: ignore[list-item]
        additional_headers=headers,
        open_timeout=10,
    )


def test_pages_need_a_ticket_and_the_apps_login(app: AuctionApp, oid: str) -> None:
    with _open(app, oid, ["load"], "ann") as socket:  # type: ignore[attr-defined]
        socket.send(json.dumps({"type": "subscribe", "since": None, "events": False}))
        assert json.loads(socket.recv(timeout=10))["type"] == "snapshot"
    with pytest.raises(InvalidStatus) as no_login:
        _open(app, oid, ["load"], None)
    assert no_login.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as no_ticket:
        connect(_socket_url(app, oid), additional_headers={"Cookie": "user=ann"}, open_timeout=10)
    assert no_ticket.value.response.status_code == 401


def test_the_hook_refuses_what_the_ticket_would_allow(app: AuctionApp, oid: str) -> None:
    """The app decides: its hook lets pages watch, not bid, whatever a ticket says."""
    with _open(app, oid, ["load", "bid"], "ann") as socket:  # type: ignore[attr-defined]
        call = {"type": "call", "id": 7, "method": "bid", "args": {"bidder": "x", "amount": 1}}
        socket.send(json.dumps(call))
        refused = json.loads(socket.recv(timeout=10))
        assert (refused["id"], refused["error"]["code"]) == (7, "forbidden")


def test_the_apps_own_routes(app: AuctionApp, oid: str) -> None:
    with httpx.Client(base_url=app.url, timeout=10) as client:
        assert client.post(f"/api/auctions/{oid}/ticket").status_code == 401
        client.get("/login", params={"user": f"{oid}-ann"}, follow_redirects=False)
        ticket = client.post(f"/api/auctions/{oid}/ticket").json()["ticket"]
        assert ticket.startswith("t1.")
        assert TOKEN not in ticket
        refused = client.post(f"/api/auctions/{oid}/bids", params={"amount": 5})
        assert refused.status_code == 409
        assert refused.json()["detail"] == "not enough money to bid 5"
        assert client.get("/durable/v1/client.js").status_code == 200
        assert client.get("/durable.js").text == client.get("/durable/v1/client.js").text
        page = client.get(f"/auctions/{oid}")
        assert page.status_code == 200
        assert TOKEN not in page.text


# -- create_app(authorize=...) in a FastAPI app, in process --------------------------


@pytest.mark.anyio
async def test_an_async_hook_sees_the_request_and_the_operation(anyio_backend: str) -> None:
    seen: list[tuple[str, str, str, str]] = []

    async def authorize(connection: HTTPConnection, model: str, object_id: str, op: str) -> bool:
        seen.append((connection.headers.get("x-user", ""), model, object_id, op))
        await anyio.lowlevel.checkpoint()
        return connection.headers.get("x-user") == "ann"

    api = FastAPI()
    async with Host(":memory:", models=[Counter]) as host:
        api.mount("/durable", create_app(host, authorize=authorize))
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            url = "/durable/v1/objects/Counter/c1"
            ok = await client.post(f"{url}/call/increment", json={}, headers={"x-user": "ann"})
            assert ok.json()["result"] == 1
            refused = await client.get(url, headers={"x-user": "bob"})
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "forbidden"
            deleted = await client.delete(url, headers={"x-user": "ann"})
            assert deleted.status_code == 200
    assert seen == [
        ("ann", "Counter", "c1", "increment"),
        ("bob", "Counter", "c1", "load"),
        ("ann", "Counter", "c1", "delete"),
    ]


@pytest.mark.anyio
async def test_a_failing_hook_is_an_internal_error(anyio_backend: str) -> None:
    def authorize(connection: HTTPConnection, model: str, object_id: str, op: str) -> bool:
        raise RuntimeError("/secret/path/in/the/message")

    async with Host(":memory:", models=[Counter]) as host:
        transport = httpx.ASGITransport(app=create_app(host, authorize=authorize))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            reply = await client.get("/v1/objects/Counter/c1")
    assert reply.status_code == 500
    assert "secret" not in reply.text
