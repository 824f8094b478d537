"""Fixtures of the fault suite: servers to break, seeds, and process measurements.

``server`` is each session server of ``tests/conftest.py`` (the network host and
the Worker on workerd), for tests that only break connections. ``own_server``
starts a server of the test's own (on a fresh store) for tests that kill or
restart it. Tests here run on asyncio unless they ask for trio as well.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, TypeAlias

import httpx
import pytest

from cloudflare_durable import _protocol as proto
from cloudflare_durable.testing import NetworkHost, ServerProcess, WorkerHost

from ..conftest import MODELS, TOKEN, worker_available
from .proxy import fault_seed

Kind: TypeAlias = Literal["network", "worker"]
SERVERS = ["network", pytest.param("worker", marks=pytest.mark.worker)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def seed() -> int:
    """This test's fault seed (``DURABLE_FAULT_SEED`` replays one)."""
    return fault_seed()


@pytest.fixture(params=SERVERS)
def kind(request: pytest.FixtureRequest) -> Kind:
    value: Kind = request.param
    if value == "worker" and not worker_available():
        pytest.skip("Node dependencies of worker/ are not installed (npm ci)")
    return value


@pytest.fixture
def server(request: pytest.FixtureRequest, kind: Kind) -> ServerProcess:
    """The session server of that kind (shared: use unique object ids)."""
    found: ServerProcess = request.getfixturevalue(f"{kind}_host")
    return found


def server_of(
    kind: Kind,
    where: Path,
    *,
    port: int = 0,
    token: str | None = TOKEN,
    worker_dir: Path | None = None,
) -> ServerProcess:
    """A server of ``kind`` (not started) keeping its state under ``where``, with the
    suite's token unless another (or None, for none) is given. The Worker is
    ``worker/`` unless ``worker_dir`` names another project (the test Worker)."""
    if kind == "network":
        return NetworkHost(MODELS, store=where / "state.sqlite3", token=token, port=port)
    return WorkerHost(where / "persist", token=token, port=port, worker_dir=worker_dir)


def start_server(
    kind: Kind,
    where: Path,
    *,
    port: int = 0,
    token: str | None = TOKEN,
    worker_dir: Path | None = None,
) -> ServerProcess:
    """A fresh server of ``kind``, started (see ``server_of``)."""
    return server_of(kind, where, port=port, token=token, worker_dir=worker_dir).start()


@pytest.fixture
def own_server(kind: Kind, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own, to kill and restart (closed at the end)."""
    started = start_server(kind, tmp_path)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def sentinel(server: ServerProcess) -> str:
    """A Counter created with the value 7 on ``server``, which nothing may change."""
    object_id = f"sentinel-{uuid.uuid4().hex}"
    with httpx.Client(base_url=server.url) as http:
        reply = http.put(
            proto.object_path("Counter", object_id),
            content=b'{"state":{"value":7}}',
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert reply.status_code == 201, reply.text
    return object_id


def pid_of(server: ServerProcess) -> int:
    """The process id of the server's own process (serve.mjs for the Worker)."""
    process = server._process
    assert process is not None, "the server is not running"
    return process.pid


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux ``/proc``)."""
    found: list[int] = []
    for tasks in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in tasks.read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue += children(current)
    return tree


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def memory_kib(pid: int, field: Literal["VmRSS", "VmHWM"] = "VmRSS") -> int:
    """Resident memory of one process in KiB: now (``VmRSS``) or at its peak (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def server_memory_kib(server: ServerProcess, field: Literal["VmRSS", "VmHWM"] = "VmRSS") -> int:
    """Resident memory of the server's whole process tree (the Worker: node and workerd)."""
    total = 0
    for pid in process_tree(pid_of(server)):
        try:
            total += memory_kib(pid, field)
        except OSError:
            continue
    return total
