"""The golden protocol cases of ``docs/golden/``, replayed byte for byte against real
servers: the network host and the Worker on workerd (whose own vitest suite runs
the same files inside workerd)."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from cloudflare_durable import issue_ticket
from cloudflare_durable.testing import NetworkHost, ServerProcess, WorkerHost

from .conftest import MODELS, worker_available

GOLDEN = Path(__file__).resolve().parents[1] / "docs" / "golden"
TOKEN = "golden-token"
CASES = [
    pytest.param(case, id=f"{path.stem}: {case['name']}")
    for path in sorted(GOLDEN.glob("*.json"))
    for case in json.loads(path.read_text())
]


@pytest.fixture(scope="module", params=["network", "worker"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("golden")
    if request.param == "network":
        process: ServerProcess = NetworkHost(MODELS, store=folder / "s.sqlite3", token=TOKEN)
    else:
        if not worker_available():
            pytest.skip("Node dependencies of worker/ are not installed (npm ci)")
        process = WorkerHost(folder, token=TOKEN)
    with process:
        yield process


def matches(expected: Any, actual: Any) -> bool:
    """Objects match as subsets, recursively; arrays and scalars exactly; "<any>" always;
    a member expected as "<absent>" must not be there."""
    if expected == "<any>":
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            (key not in actual)
            if value == "<absent>"
            else (key in actual and matches(value, actual[key]))
            for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return type(expected) is type(actual) and expected == actual


def _headers(step: dict[str, Any], origin: str, run: str = "") -> dict[str, str]:
    headers = {"Durable-Protocol": "1"}
    auth = step.get("auth", f"Bearer {TOKEN}")
    if auth is not None:
        headers["Authorization"] = auth
    for name, value in step.get("headers", {}).items():
        headers[name] = value.replace("{origin}", origin)
    spec = step.get("ticket")
    if spec is not None:  # "{ticket}": a ticket made now, signed with the golden token
        now = time.time() - (120 if spec.get("expired") else 0)
        object_id = spec["id"].replace("{run}", run)
        ticket = issue_ticket(TOKEN, spec["model"], object_id, allow=spec["allow"], now=now)
        headers = {name: value.replace("{ticket}", ticket) for name, value in headers.items()}
    return headers


def substituted(value: Any, tokens: dict[str, str]) -> Any:
    """``value`` with each ``{name}`` of ``tokens`` replaced in every string in it."""
    if isinstance(value, str):
        for name, token in tokens.items():
            value = value.replace(f"{{{name}}}", token)
        return value
    if isinstance(value, dict):
        return {substituted(k, tokens): substituted(v, tokens) for k, v in value.items()}
    if isinstance(value, list):
        return [substituted(item, tokens) for item in value]
    return value


def expanded(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The steps, with each ``{"repeat": n, "steps": [...]}`` unrolled (``{i}``: 0 to n-1)."""
    for step in steps:
        if "repeat" in step:
            for number in range(step["repeat"]):
                yield from expanded(substituted(step["steps"], {"i": str(number)}))
        else:
            yield step


def _connect(url: str, step: dict[str, Any], origin: str, run: str) -> ClientConnection:
    """Open a WebSocket; a Sec-WebSocket-Protocol header becomes the offered subprotocols."""
    headers = _headers(step, origin, run)
    offered = headers.pop("Sec-WebSocket-Protocol", None)
    subprotocols = None if offered is None else [p.strip() for p in offered.split(",")]
    return connect(
        url,
        additional_headers=headers,
        subprotocols=subprotocols,  # type: ignore[arg-type]
        open_timeout=10,
    )


def _body(request: dict[str, Any]) -> bytes | None:
    """``raw_body`` as is ("{fill}" replaced by ``fill``'s character repeated), or ``body``."""
    if "raw_body" in request:
        text: str = request["raw_body"]
        if "fill" in request:
            char, count = request["fill"]
            text = text.replace("{fill}", char * count)
        return text.encode()
    if "body" in request:
        return json.dumps(request["body"]).encode()
    return None


def _send_raw(
    base: str, method: str, path: str, headers: dict[str, str], body: bytes | None
) -> tuple[int, dict[str, str], bytes]:
    """A request whose path goes on the wire exactly as written (httpx would normalise it)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def _http(client: httpx.Client, step: dict[str, Any], run: str) -> None:
    request = step["request"]
    origin = str(client.base_url).rstrip("/")
    headers = _headers(request, origin, run)
    content = _body(request)
    if content is not None:
        headers.setdefault("Content-Type", "application/json")
    path = request["path"].replace("{run}", run)
    if request.get("raw"):
        status, reply_headers, text = _send_raw(origin, request["method"], path, headers, content)
    else:
        reply = client.request(request["method"], path, headers=headers, content=content)
        status, reply_headers, text = reply.status_code, dict(reply.headers), reply.content
    expected = step["response"]
    assert status == expected["status"], text[:2000]
    assert reply_headers.get("durable-protocol") == "1"
    for name, value in expected.get("headers", {}).items():
        assert reply_headers.get(name.lower()) == value, (name, reply_headers)
    if "body" in expected:
        assert matches(expected["body"], json.loads(text)), text[:2000]


def _ws_url(base: str, path: str, run: str) -> str:
    return base.replace("http://", "ws://") + path.replace("{run}", run)


def _ws(
    base: str, step: dict[str, Any], run: str, socket: ClientConnection | None, stack: ExitStack
) -> ClientConnection | None:
    if "ws_open" in step:
        url = _ws_url(base, step["ws_open"], run)
        opened = stack.enter_context(_connect(url, step, base, run))
        assert opened.response is not None
        for name in step.get("absent_headers", []):
            assert name not in opened.response.headers, opened.response.headers
        for name, value in step.get("expect_headers", {}).items():
            assert opened.response.headers.get(name) == value, opened.response.headers
        assert opened.subprotocol == step.get("subprotocol")
        return opened
    if "ws_open_refused" in step:
        with pytest.raises(InvalidStatus) as refused:
            _connect(_ws_url(base, step["ws_open_refused"], run), step, base, run)
        response = refused.value.response
        assert response.status_code == step["status"]
        if "body" in step:
            assert matches(step["body"], json.loads(response.body or b"null"))
        return socket
    assert socket is not None, "open the socket first"
    if "ws_send" in step:
        socket.send(json.dumps(step["ws_send"]))
    elif "ws_send_raw" in step:
        socket.send(step["ws_send_raw"])
    elif "ws_expect" in step:
        frame = json.loads(socket.recv(timeout=10))
        assert matches(step["ws_expect"], frame), frame
    return socket


@pytest.mark.parametrize("case", CASES)
def test_golden_case(server: ServerProcess, case: dict[str, Any]) -> None:
    run = uuid.uuid4().hex[:12]
    socket: ClientConnection | None = None
    with httpx.Client(base_url=server.url, timeout=10) as client, ExitStack() as stack:
        for step in expanded(substituted(case["steps"], {"run": run})):
            if "request" in step:
                _http(client, step, run)
            else:
                socket = _ws(server.url, step, run, socket, stack)
