"""Auth: every endpoint, over HTTP and WebSocket, lets in only the right token, and
a refusal says nothing about any object.

Each server is asked on every endpoint (and on paths that name unknown models,
methods or malformed ids, and with bad bodies or protocol versions) with no
token, a wrong token of the same length, shorter and longer ones, an empty one
and other schemes. All of them get ``401`` with one and the same body, whatever
the path, object or model; none changes anything. The right token gets in.
``GET /v1/health`` is the documented exception: it answers without a token and
says nothing but ``ok``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudflare_durable import _protocol as proto
from cloudflare_durable.testing import ServerProcess

from ..conftest import TOKEN
from ._wire import HttpReply, RawWebSocket, ws_connect
from .conftest import Kind, server_of, start_server

WRONG: dict[str, str | None] = {
    "none": None,
    "same length": "Bearer " + TOKEN[:-1] + chr(ord(TOKEN[-1]) + 1),
    "shorter": "Bearer " + TOKEN[:4],
    "longer": "Bearer " + TOKEN + "-and-more",
    "empty": "Bearer",
    "prefix": "Bearer " + TOKEN[:-1],
    "no scheme": TOKEN,
    "basic": "Basic " + TOKEN,
    "twice": f"Bearer {TOKEN} {TOKEN}",
}
RIGHT = [f"Bearer {TOKEN}", f"bearer {TOKEN}"]


def endpoints(object_id: str) -> Iterator[tuple[str, str, bytes | None]]:
    """(method, path, body) for every endpoint, and for paths that must not be told apart."""
    obj = proto.object_path("Counter", object_id)
    yield "POST", proto.object_path("Counter", object_id, "call", "increment"), b'{"args":{}}'
    yield "GET", obj, None
    yield "PUT", obj, b'{"state":{"value":1}}'
    yield "PATCH", obj, b'{"fields":{"value":2}}'
    yield "DELETE", obj, None
    yield "POST", proto.object_path("Counter", object_id, "call", "no_such_method"), b"{}"
    yield "GET", proto.object_path("NoSuchModel", object_id), None
    yield "GET", proto.object_path("Counter", object_id + "-never-written"), None
    yield "GET", "/v1/objects/Counter/%00bad", None
    yield "GET", "/v1/objects/Counter", None
    yield "GET", "/v1/nothing-here", None
    yield "POST", obj, b'{"args":{}}'  # a method the path does not allow
    yield "POST", proto.object_path("Counter", object_id, "call", "increment"), b"{not json"
    yield "GET", proto.object_path("Counter", object_id, "ws"), None  # without an upgrade


def ask(
    http: httpx.Client,
    method: str,
    path: str,
    body: bytes | None,
    auth: str | None,
    version: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    if version is not None:
        headers["Durable-Protocol"] = version
    try:
        return http.request(method, path, content=body, headers=headers)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        # workerd now and then resets a kept-alive connection after answering a request
        # whose body the Worker did not read (about one in 1,500 here): ask again.
        return http.request(method, path, content=body, headers=headers)


def state_of(http: httpx.Client, object_id: str) -> Any:
    reply = http.get(
        proto.object_path("Counter", object_id), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert reply.status_code == 200
    return reply.json()


def test_only_the_right_token_gets_in_over_http(server: ServerProcess, sentinel: str) -> None:
    bodies: set[bytes] = set()
    with httpx.Client(base_url=server.url) as http:
        before = state_of(http, sentinel)
        for method, path, body in endpoints(sentinel):
            for name, auth in WRONG.items():
                for version in (None, "1", "2"):
                    reply = ask(http, method, path, body, auth, version)
                    where = f"{method} {path} with {name} token, protocol {version}"
                    assert reply.status_code == 401, f"{where}: {reply.status_code} {reply.text}"
                    assert reply.json()["error"]["code"] == "unauthorized", where
                    assert reply.headers.get("durable-protocol") == "1", where
                    bodies.add(reply.content)
        assert state_of(http, sentinel) == before, "a refused request changed the object"
        assert len(bodies) == 1, f"401 bodies differ: {bodies}"
        assert sentinel.encode() not in bodies.pop()

        for auth in RIGHT:
            reply = ask(http, "GET", proto.object_path("Counter", sentinel), None, auth)
            assert reply.status_code == 200, reply.text
            assert reply.json() == before
            for method, path, body in endpoints(sentinel + "-right"):
                reply = ask(http, method, path, body, auth)
                assert reply.status_code != 401, f"{method} {path}: refused with the right token"


def test_only_the_right_token_gets_in_over_websocket(server: ServerProcess, sentinel: str) -> None:
    bodies: set[bytes] = set()
    paths = [
        proto.object_path("Counter", sentinel, "ws"),
        proto.object_path("Counter", sentinel + "-never-written", "ws"),
        proto.object_path("NoSuchModel", sentinel, "ws"),
        "/v1/objects/Counter/%00bad/ws",
        "/v1/nothing-here",
    ]
    with httpx.Client(base_url=server.url) as http:
        before = state_of(http, sentinel)
        for path in paths:
            for name, auth in WRONG.items():
                headers = [] if auth is None else [("Authorization", auth)]
                refused = ws_connect(server.url, path, headers)
                where = f"WebSocket {path} with {name} token"
                assert isinstance(refused, HttpReply), f"{where}: the upgrade was accepted"
                assert refused.status == 401, f"{where}: {refused.status} {refused.body!r}"
                bodies.add(refused.body)
        assert state_of(http, sentinel) == before
        http_body = ask(http, "GET", proto.object_path("Counter", sentinel), None, None).content
    assert bodies == {http_body}, f"WebSocket 401 bodies differ from HTTP's: {bodies}"

    for auth in RIGHT:
        socket = ws_connect(server.url, paths[0], [("Authorization", auth)])
        assert isinstance(socket, RawWebSocket), f"refused with the right token: {socket}"
        try:
            socket.protocol.send_text(b'{"type":"subscribe","since":null}')
            socket.flush()
            frame = socket.next_frame()
            assert frame is not None
            snapshot = json.loads(bytes(frame.data))
            assert snapshot == {"type": "snapshot", **before}
        finally:
            socket.close()


def test_health_answers_without_a_token_and_says_nothing_else(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as http:
        for auth in [None, *WRONG.values(), *RIGHT]:
            reply = ask(http, "GET", "/v1/health", None, auth)
            assert reply.status_code == 200
            assert reply.json() == {"status": "ok", "protocol": 1}


# -- safe defaults (docs/protocol.md, "Safe defaults") --------------------------------


def test_an_empty_token_is_refused_at_start(kind: Kind, tmp_path: Path) -> None:
    """``--token ""`` (a token variable that was never set) must not start an open server."""
    with pytest.raises(RuntimeError, match="did not start"), server_of(kind, tmp_path, token=""):
        pass


@pytest.fixture
def anonymous(kind: Kind, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server started without a token, on 127.0.0.1."""
    started = start_server(kind, tmp_path, token=None)
    try:
        yield started
    finally:
        started.close()


def test_without_a_token_only_loopback_host_names_are_served(anonymous: ServerProcess) -> None:
    """A web page on another site can point its own host name at 127.0.0.1 (DNS
    rebinding); a server without a token answers only localhost, 127.0.0.1 and [::1]."""
    path = proto.object_path("Counter", "anonymous")
    with httpx.Client(base_url=anonymous.url) as http:
        for host in ("127.0.0.1", "localhost", f"localhost:{anonymous.port}", "[::1]:1"):
            reply = http.get(path, headers={"Host": host})
            assert reply.status_code == 200, f"{host}: {reply.text}"
        for host in ("attacker.example", "127.0.0.2", "localhost.attacker.example"):
            reply = http.get(path, headers={"Host": host})
            assert reply.status_code == 403, f"{host}: {reply.text}"
            assert reply.json()["error"]["code"] == "forbidden"
        assert http.get("/v1/health", headers={"Host": "attacker.example"}).status_code == 200
    refused = ws_connect(anonymous.url, path + "/ws", [("Host", "attacker.example")])
    assert isinstance(refused, HttpReply)
    assert refused.status == 403


def test_requests_from_other_origins_are_refused(server: ServerProcess, sentinel: str) -> None:
    """Cross-site WebSocket hijacking and cross-site requests: an ``Origin`` other than
    the server's own is refused (403) before the token is looked at; none changes
    anything; clients that send no ``Origin`` are unaffected."""
    path = proto.object_path("Counter", sentinel)
    auth = ("Authorization", f"Bearer {TOKEN}")
    host = server.url.removeprefix("http://")
    with httpx.Client(base_url=server.url) as http:
        before = state_of(http, sentinel)
        for origin in ("http://attacker.example", f"http://{host}.attacker.example", "null"):
            for headers in ({"Origin": origin}, {"Origin": origin, auth[0]: auth[1]}):
                reply = http.delete(path, headers=headers)
                assert reply.status_code == 403, f"{origin}: {reply.text}"
                assert reply.json()["error"]["code"] == "forbidden"
            refused = ws_connect(server.url, path + "/ws", [auth, ("Origin", origin)])
            assert isinstance(refused, HttpReply), f"{origin}: the upgrade was accepted"
            assert refused.status == 403
        assert state_of(http, sentinel) == before
        same = http.get(path, headers={"Origin": f"http://{host}", auth[0]: auth[1]})
        assert same.status_code == 200
    opened = ws_connect(server.url, path + "/ws", [auth, ("Origin", f"http://{host}")])
    assert isinstance(opened, RawWebSocket)
    opened.close()
