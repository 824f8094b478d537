"""Fixtures: real hosts for the suite to run against.

``client`` is parametrised over every host that serves the example models: the
embedded host (in-process), the network host (``durable serve`` on 127.0.0.1)
and the Worker on workerd. ``py_client`` covers the two Python hosts, for the
test-only models of ``tests/models.py``. Servers are started once per session:
they are the ``durable_server`` and ``durable_worker`` fixtures of this
package's own pytest plugin.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudflare_durable import DurableClient
from cloudflare_durable.testing import NetworkHost, WorkerHost

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "models.py"
#: A Worker serving test models of ``models.py`` (objects that call each other).
TEST_WORKER = ROOT / "worker" / "test" / "app"
TOKEN = "test-token"
CLIENT_OPTIONS: dict[str, Any] = {
    "timeout": 15.0,
    "retries": 5,
    "retry_delay": 0.02,
    "reconnect_delay": 0.02,
}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def durable_token() -> str:
    """The token of the plugin's servers (``cloudflare_durable.pytest_plugin``)."""
    return TOKEN


@pytest.fixture(scope="session")
def network_host(durable_server: NetworkHost) -> NetworkHost:
    """``durable serve tests/models.py`` (the ini option durable_models), for the session."""
    return durable_server


def worker_available() -> bool:
    if WorkerHost.available():
        return True
    if os.environ.get("CI"):
        pytest.fail("the Worker is not installed: run `npm ci` in worker/")
    return False


@pytest.fixture(scope="session")
def worker_host(request: pytest.FixtureRequest) -> WorkerHost:
    """``worker/`` on workerd, for the session (the plugin skips it without Node)."""
    worker_available()
    worker: WorkerHost = request.getfixturevalue("durable_worker")
    return worker


@pytest.fixture(scope="session")
def test_worker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerHost]:
    """The test Worker (``worker/test/app``): ``test.Purse``, ``test.Teller`` and
    ``test.Relay`` on workerd."""
    if not worker_available():
        pytest.skip("Node dependencies of worker/ are not installed (npm ci)")
    persist = tmp_path_factory.mktemp("test-worker")
    with WorkerHost(persist, token=TOKEN, worker_dir=TEST_WORKER) as server:
        yield server


def _client(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> DurableClient:
    if kind == "embedded":
        return DurableClient(store=str(tmp_path / "embedded.sqlite3"), **CLIENT_OPTIONS)
    server = request.getfixturevalue(f"{kind}_host")
    return DurableClient(server.url, token=TOKEN, **CLIENT_OPTIONS)


@pytest.fixture
def network_http(network_host: NetworkHost) -> Iterator[httpx.Client]:
    """A raw HTTP client of the session's network host, with the suite's token."""
    with httpx.Client(
        base_url=network_host.url, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        yield http


@pytest.fixture(params=["embedded", "network", "worker"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DurableClient]:
    async with _client(request, request.param, tmp_path) as c:
        yield c


@pytest.fixture(params=["embedded", "network"])
async def py_client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DurableClient]:
    async with _client(request, request.param, tmp_path) as c:
        yield c


@pytest.fixture
def oid(request: pytest.FixtureRequest) -> str:
    """An object id unique to this test (servers are shared by the session)."""
    return f"{request.node.name[:60]}-{uuid.uuid4().hex[:10]}"
