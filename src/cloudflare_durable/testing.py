"""Helpers to run real servers in tests: the network host and the Worker on workerd.

Both start a child process on 127.0.0.1 (a free port unless one is given), wait
until it announces its URL, and stop it on ``stop()`` or at the end of a
``with`` block. ``kill()`` sends SIGKILL (for crash tests) and ``restart()``
starts it again on the same port and store::

    with NetworkHost("myapp/models.py", store=tmp_path / "s.sqlite3", token="t") as server:
        async with server.client() as client:
            ...
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from ._client import DurableClient

__all__ = ["NetworkHost", "ServerProcess", "WorkerHost", "default_worker_dir"]

_URL_RE: Final = re.compile(r"(http://127\.0\.0\.1:(\d+))")
#: The example Worker of a source checkout (absent from an installed package).
WORKER_DIR: Final = Path(__file__).resolve().parents[2] / "worker"


def default_worker_dir() -> Path:
    """The Worker project tests run by default: ``worker/`` of a source checkout, else the
    current directory (a project made by ``durable init worker``)."""
    return WORKER_DIR if (WORKER_DIR / "wrangler.jsonc").is_file() else Path.cwd()


class ServerProcess:
    """A server in a child process that prints its URL when it is ready."""

    startup_timeout: float = 30.0
    token: str | None = None

    def __init__(self, port: int = 0, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.env = env
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix="durable-server-", suffix=".log", delete=False
        )

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Self:
        if self._process is not None:
            raise RuntimeError("the server is already running")
        self._log.seek(0)
        self._log.truncate()
        env = {**os.environ, **(self.env or {}), "WRANGLER_SEND_METRICS": "false"}
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            text = Path(self._log.name).read_text(errors="replace")
            match = _URL_RE.search(text)
            if match:
                self.url, self.port = match.group(1), int(match.group(2))
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.command()} did not start:\n{self.output()}")

    def client(self, **options: Any) -> DurableClient:
        """A ``DurableClient`` for this server (its URL and token); ``options`` are
        ``DurableClient``'s (``timeout=``, ``retries=``...)."""
        if not self.url:
            raise RuntimeError("the server has not started")
        return DurableClient(self.url, token=self.token, **options)

    def output(self) -> str:
        """Everything the server printed since it last started."""
        return Path(self._log.name).read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), then forcefully if it does not exit in time."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if process.stdin is not None:
            process.stdin.close()

    def kill(self) -> None:
        """Kill with SIGKILL: no shutdown code runs (a crash)."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(10)
            if process.stdin is not None:
                process.stdin.close()

    def restart(self) -> Self:
        """Stop and start again on the same port (and store)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NetworkHost(ServerProcess):
    """``durable serve MODULE`` in a child process. ``allowed_origins`` are the origins
    of the web pages it answers besides its own (``--allow-origin``)."""

    def __init__(
        self,
        module: str | os.PathLike[str],
        *,
        store: str | os.PathLike[str] = ":memory:",
        token: str | None = None,
        port: int = 0,
        env: dict[str, str] | None = None,
        allowed_origins: Sequence[str] = (),
    ) -> None:
        super().__init__(port, env)
        self.allowed_origins = list(allowed_origins)
        self.module = os.fspath(module)
        self.store = os.fspath(store)
        self.token = token

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "cloudflare_durable._cli", "serve", self.module]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--store", self.store]
        if self.token is not None:
            argv += ["--token", self.token]
        for origin in self.allowed_origins:
            argv += ["--allow-origin", origin]
        return argv


class WorkerHost(ServerProcess):
    """A Worker project on workerd (Miniflare), persisting to ``persist``.

    ``worker_dir`` is the project (its ``wrangler.jsonc`` and installed
    ``node_modules``); by default ``worker/`` of a source checkout, else the
    current directory. The server script comes with this package.
    ``allowed_origins`` are the origins of the web pages it answers besides its own.
    """

    def __init__(
        self,
        persist: str | os.PathLike[str],
        *,
        token: str | None = None,
        port: int = 0,
        worker_dir: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        allowed_origins: Sequence[str] = (),
    ) -> None:
        super().__init__(port, env)
        self.allowed_origins = list(allowed_origins)
        self.persist = os.fspath(persist)
        self.token = token
        self.worker_dir = Path(worker_dir) if worker_dir is not None else default_worker_dir()

    @staticmethod
    def available(worker_dir: str | os.PathLike[str] | None = None) -> bool:
        """Whether Node and the project's installed dependencies are present."""
        root = Path(worker_dir) if worker_dir is not None else default_worker_dir()
        return shutil.which("node") is not None and (root / "node_modules").is_dir()

    def command(self) -> list[str]:
        from ._codegen import library_dir

        node = shutil.which("node") or "node"
        serve = library_dir() / "scripts" / "serve.mjs"
        argv = [node, str(serve), "--dir", str(self.worker_dir), "--port", str(self.port)]
        argv += ["--persist", self.persist]
        if self.token is not None:
            argv += ["--token", self.token]
        for origin in self.allowed_origins:
            argv += ["--allow-origin", origin]
        return argv
