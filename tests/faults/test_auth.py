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
from typing import Any

import httpx

from cloudflare_durable import _protocol as proto
from cloudflare_durable.testing import ServerProcess

from ..conftest import TOKEN
from ._wire import HttpReply, RawWebSocket, ws_connect

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
