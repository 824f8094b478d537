"""Every example runs, unchanged, on the embedded host, the network host and the Worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, TOKEN

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
EXPECTED = {
    "counter.py": "final value: 3",
    "collaborative_document.py": "document at version 4",
    "chat_room.py": "last two: ['bob: hi ann', 'ann: bye']",
    "bank.py": "balances: ann 70, bob 30, total 100",
    "auction.py": "ann pays 25, bob holds {}",
    "blocking_script.py": "counter at 3",
}
# Examples whose objects the Worker does not serve.
PYTHON_ONLY: set[str] = set()


def _run(example: Path, env: dict[str, str], cwd: Path) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    result = subprocess.run(
        [sys.executable, str(example)],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_example_is_checked() -> None:
    assert {path.name for path in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_on_the_embedded_host(example: Path, tmp_path: Path) -> None:
    output = _run(example, {}, tmp_path)
    assert EXPECTED[example.name] in output
    assert (tmp_path / "durable.sqlite3").exists()  # the documented default store


@pytest.mark.parametrize("kind", ["network", "worker"])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_on_a_server(
    example: Path, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "worker" and example.name in PYTHON_ONLY:
        pytest.skip(f"the Worker does not serve the objects of {example.name}")
    server = request.getfixturevalue(f"{kind}_host")
    env = {"CLOUDFLARE_WORKER_URL": server.url, "CLOUDFLARE_DURABLE_TOKEN": TOKEN}
    output = _run(example, env, tmp_path)
    assert EXPECTED[example.name] in output
    assert not (tmp_path / "durable.sqlite3").exists()
