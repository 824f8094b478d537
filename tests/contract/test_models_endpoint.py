"""``GET /v1/models`` on both servers: the schema document, the same bytes for the same models.

The Worker serves the document it was generated from (worker/src/generated); the
network host computes it from the models it serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudflare_durable._schema import schema_json
from cloudflare_durable.testing import NetworkHost, WorkerHost

from ._support import ROOT, examples_document
from .conftest import durable

TOKEN = "test-token"


@pytest.fixture(scope="module")
def examples_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkHost]:
    """``durable serve`` on a module serving exactly the example models and events."""
    folder = tmp_path_factory.mktemp("examples-host")
    module = folder / "served_examples.py"
    module.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'examples')!r})\n"
        "from counter import Counter\n"
        "from chat_room import ChatRoom, Posted\n"
        "from collaborative_document import Document, Edited, Joined, Left\n"
        "from bank import Account, Transfer\n"
        "from auction import Auction, AuctionClosed, BidPlaced, Wallet\n"
    )
    with NetworkHost(module, store=folder / "state.sqlite3", token=TOKEN) as server:
        yield server


def get_models(url: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{url}/v1/models", headers=headers, timeout=10)


def test_the_worker_serves_the_examples_document(worker_host: WorkerHost) -> None:
    reply = get_models(worker_host.url)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.text == schema_json(examples_document())


def test_the_network_host_serves_the_examples_document(examples_host: NetworkHost) -> None:
    reply = get_models(examples_host.url)
    assert reply.status_code == 200
    assert reply.text == schema_json(examples_document())


def test_both_servers_serve_identical_bytes(
    worker_host: WorkerHost, examples_host: NetworkHost
) -> None:
    assert get_models(worker_host.url).content == get_models(examples_host.url).content


@pytest.mark.parametrize("server", ["worker_host", "examples_host"])
def test_the_document_needs_the_token(server: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(server).url
    for token in (None, "wrong"):
        reply = get_models(url, token)
        assert reply.status_code == 401
        assert reply.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("server", ["worker_host", "examples_host"])
def test_durable_check_passes_against_each_server(
    server: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue(server).url
    examples = [
        str(ROOT / "examples" / f)
        for f in (
            "counter.py",
            "chat_room.py",
            "collaborative_document.py",
            "bank.py",
            "auction.py",
        )
    ]
    result = durable("check", *examples, "--url", url, "--token", TOKEN, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
