"""``durable serve``: module loading, refusals, and the no-token warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from cloudflare_durable.testing import NetworkHost

ROOT = Path(__file__).resolve().parents[1]


def _durable(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cloudflare_durable.host._cli", *args]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=30, env=env or dict(os.environ)
    )


def test_serve_a_dotted_module_without_a_token(tmp_path: Path) -> None:
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(
        "from cloudflare_durable import DurableModel, remote\n\n"
        "class Tally(DurableModel, name='myapp.Tally'):\n"
        "    n: int = 0\n\n"
        "    @remote\n"
        "    async def add(self, k: int) -> int:\n"
        "        self.n += k\n"
        "        return self.n\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CLOUDFLARE_API_TOKEN"}
    env["PYTHONPATH"] = str(tmp_path)
    with NetworkHost("myapp.models", store=tmp_path / "s.sqlite3", env=env) as server:
        reply = httpx.post(
            f"{server.url}/v1/objects/myapp.Tally/t/call/add", json={"args": {"k": 2}}, timeout=10
        )
        assert reply.json()["result"] == 2
        assert "WITHOUT authentication" in server.output()
        assert "serving myapp.Tally" in server.output()


def test_a_module_without_models_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("x = 1\n")
    result = _durable("serve", "empty.py", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "defines no DurableModel" in result.stderr


def test_a_missing_module_is_refused(tmp_path: Path) -> None:
    result = _durable("serve", "nowhere.py", "--port", "0", cwd=tmp_path)
    assert result.returncode != 0
    assert "no such file" in result.stderr
    result = _durable("serve", "no.such.module", "--port", "0", cwd=tmp_path)
    assert result.returncode != 0
    assert "cannot import" in result.stderr


def test_the_token_can_come_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "CLOUDFLARE_API_TOKEN": "from-env"}
    with NetworkHost(ROOT / "examples" / "counter.py", env=env) as server:
        assert "WITHOUT" not in server.output()
        refused = httpx.get(f"{server.url}/v1/objects/Counter/a", timeout=10)
        assert refused.status_code == 401
        allowed = httpx.get(
            f"{server.url}/v1/objects/Counter/a",
            headers={"Authorization": "Bearer from-env"},
            timeout=10,
        )
        assert allowed.status_code == 200
