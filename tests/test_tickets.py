"""Tickets (``cloudflare_durable.issue_ticket``): the format both servers read, the
known answer of ``docs/protocol.md``, and what a ticket does and does not allow on
the network host (the golden cases run the same on the Worker)."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.sync.client import connect

from cloudflare_durable import UsageError, issue_ticket
from cloudflare_durable._exceptions import UnauthorizedError
from cloudflare_durable._tickets import read_ticket, ticket_key
from cloudflare_durable.testing import NetworkHost

from .conftest import TOKEN
from .models import Counter

NOW = 4102444740
KNOWN = (
    "t1.eyJtb2RlbCI6IkNvdW50ZXIiLCJpZCI6ImMxIiwiYWxsb3ciOlsiaW5jcmVtZW50IiwibG9hZCJdLCJleHAiOjQxMDI0"
    "NDQ4MDB9.x2Q5Y0U7yRr5raWpSXOBwYfq00zU0PToWmxh8OLFwZA"
)


def test_the_known_answer_of_the_protocol() -> None:
    made = issue_ticket("golden-token", Counter, "c1", allow=["load", "increment"], now=NOW)
    assert made == KNOWN
    scope = read_ticket(KNOWN, ticket_key("golden-token"), now=NOW)
    assert (scope.model, scope.object_id, scope.allow, scope.expires) == (
        "Counter",
        "c1",
        frozenset({"load", "increment"}),
        NOW + 60,
    )
    assert scope.permits("Counter", "c1", "increment")
    assert not scope.permits("Counter", "c2", "increment")
    assert not scope.permits("Counter", "c1", "reset")


@pytest.mark.parametrize(
    ("ticket", "key", "now"),
    [
        (KNOWN, "golden-token", NOW + 60),  # expired
        (KNOWN, "golden-token", NOW - 3700),  # valid for longer than an hour: refused
        (KNOWN, "another-token", NOW),
        (KNOWN.replace("t1.", "t2.", 1), "golden-token", NOW),
        (KNOWN[:-2], "golden-token", NOW),
        (KNOWN + "x", "golden-token", NOW),
        ("t1..", "golden-token", NOW),
        ("", "golden-token", NOW),
        ("t1.e30.e30", "golden-token", NOW),
    ],
)
def test_bad_tickets_are_unauthorized(ticket: str, key: str, now: int) -> None:
    with pytest.raises(UnauthorizedError, match="invalid or has expired"):
        read_ticket(ticket, ticket_key(key), now=now)


def test_issuing_checks_its_arguments() -> None:
    with pytest.raises(UsageError):
        issue_ticket("", Counter, "c1")
    with pytest.raises(UsageError):
        issue_ticket("t", Counter, "c1", ttl=3601)
    with pytest.raises(UsageError):
        issue_ticket("t", Counter, "c1", allow=[])
    with pytest.raises(UsageError):
        issue_ticket("t", Counter, "c1", allow=[f"m{i}" for i in range(9)])
    with pytest.raises(UsageError):
        issue_ticket("t", object, "c1")
    assert issue_ticket("t", "Counter", "c1").startswith("t1.")


def _ticket(allow: list[str], object_id: str) -> str:
    return issue_ticket(TOKEN, Counter, object_id, allow=allow)


def test_a_ticket_on_the_network_host(network_host: NetworkHost, oid: str) -> None:
    url = f"{network_host.url}/v1/objects/Counter/{oid}"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(f"{url}/call/increment", json={}, headers=bearer).status_code == 200
    load = {"Authorization": f"Ticket {_ticket(['load'], oid)}"}
    assert httpx.get(url, headers=load).json()["state"] == {"value": 1}
    refused = httpx.post(f"{url}/call/increment", json={}, headers=load)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert httpx.get(f"{network_host.url}/v1/models", headers=load).status_code == 403
    expired = issue_ticket(TOKEN, Counter, oid, now=time.time() - 120)
    assert httpx.get(url, headers={"Authorization": f"Ticket {expired}"}).status_code == 401


def test_a_ticket_socket_calls_only_what_it_allows(network_host: NetworkHost, oid: str) -> None:
    ws = network_host.url.replace("http://", "ws://") + f"/v1/objects/Counter/{oid}/ws"
    offered = ["durable.v1", f"durable.ticket.{_ticket(['load', 'increment'], oid)}"]
    with connect(ws, subprotocols=offered, open_timeout=10) as socket:  # type: ignore[arg-type]
        assert socket.subprotocol == "durable.v1"
        socket.send(json.dumps({"type": "call", "id": 1, "method": "increment", "args": {}}))
        assert json.loads(socket.recv(timeout=10))["result"] == 1
        socket.send(json.dumps({"type": "call", "id": 2, "method": "reset", "args": {}}))
        refused = json.loads(socket.recv(timeout=10))
        assert (refused["id"], refused["error"]["code"]) == (2, "forbidden")


def test_the_host_serves_the_browser_module_without_a_token(network_host: NetworkHost) -> None:
    reply = httpx.get(f"{network_host.url}/v1/client.js")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/javascript")
    assert "export function connect" in reply.text
