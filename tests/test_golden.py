"""The golden protocol cases of ``docs/golden/``, replayed byte for byte against real
servers: the network host and the Worker on workerd (whose own vitest suite runs
the same files inside workerd)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

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
    """Objects match as subsets, recursively; arrays and scalars exactly; "<any>" always."""
    if expected == "<any>":
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return type(expected) is type(actual) and expected == actual


def _headers(step: dict[str, Any]) -> dict[str, str]:
    headers = {"Durable-Protocol": "1"}
    auth = step.get("auth", f"Bearer {TOKEN}")
    if auth is not None:
        headers["Authorization"] = auth
    headers.update(step.get("headers", {}))
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


def _http(client: httpx.Client, step: dict[str, Any], run: str) -> None:
    request = step["request"]
    headers = {**_headers(request)}
    content: bytes | None = None
    if "raw_body" in request:
        content = request["raw_body"].encode()
    elif "body" in request:
        content = json.dumps(request["body"]).encode()
    if content is not None:
        headers.setdefault("Content-Type", "application/json")
    path = request["path"].replace("{run}", run)
    reply = client.request(request["method"], path, headers=headers, content=content)
    expected = step["response"]
    assert reply.status_code == expected["status"], reply.text
    assert reply.headers.get("durable-protocol") == "1"
    if "body" in expected:
        assert matches(expected["body"], reply.json()), reply.text


def _ws_url(base: str, path: str, run: str) -> str:
    return base.replace("http://", "ws://") + path.replace("{run}", run)


def _ws(
    base: str, step: dict[str, Any], run: str, socket: ClientConnection | None, stack: ExitStack
) -> ClientConnection | None:
    if "ws_open" in step:
        url = _ws_url(base, step["ws_open"], run)
        return stack.enter_context(connect(url, additional_headers=_headers(step), open_timeout=10))
    if "ws_open_refused" in step:
        with pytest.raises(InvalidStatus) as refused:
            connect(
                _ws_url(base, step["ws_open_refused"], run),
                additional_headers=_headers(step),
                open_timeout=10,
            )
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
