"""The ``durable`` command, run as users run it (the installed console script, in a
subprocess) against real hosts: the embedded host, ``durable serve`` and the Worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from cloudflare_durable import DurableClient
from cloudflare_durable.testing import NetworkHost

from .conftest import CLIENT_OPTIONS, MODELS, ROOT, TOKEN
from .models import Document, Relay

COUNTER = str(ROOT / "examples" / "counter.py")
DOCUMENT = str(ROOT / "examples" / "collaborative_document.py")
_SCRIPT = shutil.which("durable", path=str(Path(sys.executable).parent))
DURABLE = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "cloudflare_durable._cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    return {**env, **extra}


def durable(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DURABLE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else clean_env(),
    )


# -- serve -----------------------------------------------------------------------


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
    env = clean_env(PYTHONPATH=str(tmp_path))
    with NetworkHost("myapp.models", store=tmp_path / "s.sqlite3", env=env) as server:
        reply = httpx.post(
            f"{server.url}/v1/objects/myapp.Tally/t/call/add", json={"args": {"k": 2}}, timeout=10
        )
        assert reply.json()["result"] == 2
        assert "WITHOUT authentication" in server.output()
        assert "serving myapp.Tally" in server.output()


def test_a_module_without_models_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("x = 1\n")
    result = durable("serve", "empty.py", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "defines no DurableModel" in result.stderr


def test_a_missing_module_is_refused(tmp_path: Path) -> None:
    result = durable("serve", "nowhere.py", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "no such file" in result.stderr
    result = durable("serve", "no.such.module", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot import" in result.stderr


@pytest.mark.parametrize("variable", ["CLOUDFLARE_DURABLE_TOKEN", "CLOUDFLARE_API_TOKEN"])
def test_the_token_can_come_from_the_environment(variable: str) -> None:
    with NetworkHost(COUNTER, env=clean_env(**{variable: "from-env"})) as server:
        assert "WITHOUT" not in server.output()
        assert "from-env" not in server.output()
        refused = httpx.get(f"{server.url}/v1/objects/Counter/a", timeout=10)
        assert refused.status_code == 401
        allowed = httpx.get(
            f"{server.url}/v1/objects/Counter/a",
            headers={"Authorization": "Bearer from-env"},
            timeout=10,
        )
        assert allowed.status_code == 200


def test_an_empty_token_is_an_error_not_no_token(tmp_path: Path) -> None:
    result = durable("serve", COUNTER, "--port", "0", "--token", "")
    assert result.returncode == 2
    assert "empty" in result.stderr
    (tmp_path / "token").write_text("\n")
    result = durable("serve", COUNTER, "--port", "0", "--token-file", str(tmp_path / "token"))
    assert result.returncode == 2
    assert "empty" in result.stderr


def test_the_token_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file\n")

    class FromFile(NetworkHost):
        def command(self) -> list[str]:
            return [*super().command(), "--token-file", str(tmp_path / "token")]

    with FromFile(COUNTER, env=clean_env()) as server:
        url = f"{server.url}/v1/objects/Counter/a"
        assert httpx.get(url, timeout=10).status_code == 401
        ok = httpx.get(url, headers={"Authorization": "Bearer from-a-file"}, timeout=10)
        assert ok.status_code == 200
        assert "from-a-file" not in server.output()


def test_without_a_token_only_loopback_is_served() -> None:
    result = durable("serve", COUNTER, "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without a token" in result.stderr
    # --allow-anonymous lifts the refusal (192.0.2.1 is a documentation address that
    # this machine does not have: binding fails after the check, and nothing listens).
    result = durable("serve", COUNTER, "--host", "192.0.2.1", "--port", "0", "--allow-anonymous")
    assert result.returncode == 2
    assert "cannot listen on 192.0.2.1" in result.stderr
    assert "refusing" not in result.stderr


def test_the_call_timeout_bounds_calls_between_objects(tmp_path: Path) -> None:
    """Two bodies calling each other wait on each other: ``--call-timeout`` ends that."""

    class Impatient(NetworkHost):
        def command(self) -> list[str]:
            return [*super().command(), "--call-timeout", "0.5"]

    with Impatient(MODELS, token=TOKEN, env=clean_env()) as server:

        async def deadlock() -> list[str]:
            outcomes: list[str] = []
            async with DurableClient(server.url, token=TOKEN, **CLIENT_OPTIONS) as client:

                async def one(me: str, other: str) -> None:
                    try:
                        await client.get(Relay, me).slow_then_call(other, 0.2)
                        outcomes.append("ok")
                    except Exception as error:
                        outcomes.append(type(error).__name__)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(one, "a", "b")
                    tg.start_soon(one, "b", "a")
            return outcomes

        started = time.monotonic()
        outcomes = anyio.run(deadlock)
        assert time.monotonic() - started < 5  # not the client's 15 s, nor 30 s
        assert "RemoteError" in outcomes  # one gave up (which frees the other to finish)


# -- call, get, watch --------------------------------------------------------------


@pytest.fixture(params=["embedded", "network", "worker"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The options that point the command at one host (the embedded one needs --models)."""
    if request.param == "embedded":
        return ["--store", str(tmp_path / "cli.sqlite3"), "--models", COUNTER]
    server = request.getfixturevalue(f"{request.param}_host")
    return ["--url", server.url, "--token", TOKEN]


def test_call_and_get(target: list[str], oid: str) -> None:
    first = durable("call", "Counter", oid, "increment", "by=2", *target)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "2"
    assert "version 1" in first.stderr
    second = durable("call", "Counter", oid, "increment", "--args", '{"by": 3}', *target, "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {"result": 5, "version": 2, "state": {"value": 5}}

    shown = durable("get", "Counter", oid, *target)
    assert shown.returncode == 0, shown.stderr
    assert "version 2" in shown.stdout
    assert "value" in shown.stdout
    assert "5" in shown.stdout
    as_json = durable("get", "Counter", oid, *target, "--json")
    assert json.loads(as_json.stdout) == {
        "model": "Counter",
        "id": oid,
        "version": 2,
        "state": {"value": 5},
    }


def test_failures_exit_1_with_the_error(target: list[str], oid: str) -> None:
    result = durable("call", "Counter", oid, "increment", "by=x", *target)
    assert result.returncode == 1
    assert "validation_error" in result.stderr
    result = durable("call", "Counter", oid, "explode", *target, "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "unknown_method"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "s.sqlite3")]
    result = durable("call", "Counter", "c", "increment", *store)  # no --models
    assert result.returncode == 2
    assert "--models" in result.stderr
    result = durable("call", "Counter", "c", "increment", "by", *store, "--models", COUNTER)
    assert result.returncode == 2
    assert "NAME=VALUE" in result.stderr
    result = durable("get", "Counter", "c", "--url", "http://127.0.0.1:1", *store)
    assert result.returncode == 2
    result = durable("frobnicate")
    assert result.returncode == 2


def test_an_unreachable_server_exits_1() -> None:
    env = clean_env(CLOUDFLARE_DURABLE_RETRY_COUNT="0", CLOUDFLARE_DURABLE_TIMEOUT="2000")
    result = subprocess.run(
        [*DURABLE, "get", "Counter", "c", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1
    assert "durable:" in result.stderr


def test_the_environment_points_at_the_server(network_host: NetworkHost, oid: str) -> None:
    env = clean_env(CLOUDFLARE_WORKER_URL=network_host.url, CLOUDFLARE_DURABLE_TOKEN=TOKEN)
    result = durable("call", "Counter", oid, "increment", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    refused = durable("get", "Counter", oid, env={**env, "CLOUDFLARE_DURABLE_TOKEN": "wrong"})
    assert refused.returncode == 1
    assert "unauthorized" in refused.stderr


def test_known_models_read_arguments_by_their_types(
    network_host: NetworkHost, tmp_path: Path, oid: str
) -> None:
    server = ["--url", network_host.url, "--token", TOKEN]
    # Without the model, 42 is JSON: the host refuses a number for a str parameter.
    refused = durable("call", "Document", oid, "join", "editor_id=42", "name=Ann", *server)
    assert refused.returncode == 1
    assert "validation_error" in refused.stderr
    # With it, a str parameter keeps the text as typed.
    joined = durable(
        "call", "Document", oid, "join", "editor_id=42", "name=Ann", *server, "--models", DOCUMENT
    )
    assert joined.returncode == 0, joined.stderr
    assert json.loads(joined.stdout) == ["42"]
    # A model may be named by its class name when its module is loaded.
    assert durable("get", "Document", oid, *server, "--models", DOCUMENT).returncode == 0


# -- watch ---------------------------------------------------------------------------


class Watcher:
    """``durable watch`` in a child process, its lines read by a thread."""

    def __init__(self, *args: str) -> None:
        env = clean_env(CLOUDFLARE_DURABLE_WEBSOCKET_RECONNECT_DELAY="50")
        self.process = subprocess.Popen(
            [*DURABLE, "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.lines) >= count, self.lines
        return self.lines

    def wait_until(
        self, done: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not any(done(line) for line in list(self.lines)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(done(line) for line in list(self.lines)), self.lines
        return list(self.lines)

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(20)
        self._reader.join(5)
        return status

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.close()


def _bump(url: str, object_id: str, times: int) -> None:
    async def go() -> None:
        async with DurableClient(url, token=TOKEN, **CLIENT_OPTIONS) as client:
            for _ in range(times):
                await client.get(Document, object_id).join("e", "n")

    anyio.run(go)


def test_watch_prints_snapshots_and_events_until_interrupted(
    network_host: NetworkHost, watchers: list[Watcher], oid: str
) -> None:
    watcher = Watcher("Document", oid, "--url", network_host.url, "--token", TOKEN)
    watchers.append(watcher)
    assert watcher.wait_for(1)[0] == {"type": "snapshot", "version": 0, "state": None}
    _bump(network_host.url, oid, 2)
    lines = watcher.wait_for(5)
    assert [(line["type"], line["version"]) for line in lines[:5]] == [
        ("snapshot", 0),
        ("snapshot", 1),
        ("event", 1),
        ("snapshot", 2),
        ("event", 2),
    ]
    assert lines[2]["name"] == "Joined"
    assert lines[2]["data"] == {"editor_id": "e", "name": "n"}
    assert watcher.interrupt() == 0


def test_watch_resumes_through_a_server_restart(
    tmp_path: Path, watchers: list[Watcher], oid: str
) -> None:
    with NetworkHost(MODELS, store=tmp_path / "s.sqlite3", token=TOKEN, env=clean_env()) as server:
        _bump(server.url, oid, 1)
        watcher = Watcher("Document", oid, "--url", server.url, "--token", TOKEN)
        watchers.append(watcher)
        watcher.wait_for(1)
        server.restart()
        _bump(server.url, oid, 2)
        lines = watcher.wait_until(lambda line: line == {**line, "type": "snapshot", "version": 3})
        versions = [line["version"] for line in lines if line["type"] == "snapshot"]
        assert versions == sorted(set(versions)), lines
        assert versions[0] == 1
        assert versions[-1] == 3
        assert watcher.interrupt() == 0


def test_watch_on_the_embedded_host_stops_after_count(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "s.sqlite3"), "--models", COUNTER]
    assert durable("call", "Counter", "w", "increment", *store).returncode == 0
    result = durable("watch", "Counter", "w", "--count", "1", *store)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"type": "snapshot", "version": 1, "state": {"value": 1}}


def test_watch_says_which_events_the_log_no_longer_holds(tmp_path: Path) -> None:
    """Resuming after version 1 on an object whose event log dropped versions 1 and 2
    (it keeps 1,000 events): the snapshot, a gap line, then the events it still has."""
    store = ["--store", str(tmp_path / "s.sqlite3"), "--models", str(MODELS)]
    assert durable("call", "test.Ledger", "l", "note", "text=first", *store).returncode == 0
    for batch in ("a", "b"):
        texts = json.dumps({"texts": [f"{batch}{n}" for n in range(600)]})
        assert (
            durable("call", "test.Ledger", "l", "note_many", "--args", texts, *store).returncode
            == 0
        )
    result = durable("watch", "test.Ledger", "l", "--since", "1", "--count", "3", *store)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["type"] for line in lines] == ["snapshot", "gap", "event"], lines
    assert lines[0]["version"] == 3
    assert {k: lines[1][k] for k in ("since", "until")} == {"since": 1, "until": 2}
    assert (lines[2]["version"], lines[2]["data"]) == (3, {"text": "b0"})


# -- help and completion ---------------------------------------------------------------

VERBS = [
    ["serve"],
    ["call"],
    ["get"],
    ["watch"],
    ["ls"],
    ["export"],
    ["import"],
    ["migrate"],
    ["schema"],
    ["check"],
    ["codegen", "typescript"],
    ["init", "worker"],
    ["completion"],
]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help_with_an_example(verb: list[str]) -> None:
    result = durable(*verb, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: durable {' '.join(verb)}" in result.stdout
    assert "Example" in result.stdout


def test_the_top_level_help_lists_the_verbs_and_exit_statuses() -> None:
    result = durable("--help")
    assert result.returncode == 0
    verbs = ("serve", "call", "get", "watch", "ls", "export", "import", "migrate", "schema")
    for verb in (*verbs, "check", "codegen", "init"):
        assert f"  {verb} " in result.stdout
    assert "Exit status" in result.stdout


def test_shell_completion() -> None:
    script = durable("completion", "bash")
    assert script.returncode == 0
    assert "_DURABLE_COMPLETE" in script.stdout
    env = clean_env(_DURABLE_COMPLETE="bash_complete", COMP_WORDS="durable wa", COMP_CWORD="1")
    completed = subprocess.run(DURABLE, capture_output=True, text=True, env=env, timeout=30)
    assert completed.stdout.split() == ["plain,watch"]
    env = {**env, "COMP_WORDS": "durable serve --all", "COMP_CWORD": "2"}
    completed = subprocess.run(DURABLE, capture_output=True, text=True, env=env, timeout=30)
    assert set(completed.stdout.split()) == {"plain,--allow-anonymous", "plain,--allow-origin"}
    assert durable("completion", "tcsh").returncode == 2


# -- the example ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["embedded", "network"])
def test_the_shell_tour_example(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    assert _SCRIPT is not None, "the durable console script is installed with the package"
    env = clean_env(PATH=f"{Path(_SCRIPT).parent}{os.pathsep}{os.environ['PATH']}")
    if kind == "network":
        server = request.getfixturevalue("network_host")
        env.update(CLOUDFLARE_WORKER_URL=server.url, CLOUDFLARE_DURABLE_TOKEN=TOKEN)
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "shell_tour.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "value from a script: 5" in result.stdout
    assert "a refused call exits with status 1" in result.stdout
    assert "copied: shell-tour shell-tour-2" in result.stdout
    assert (tmp_path / "durable.sqlite3").exists() == (kind == "embedded")
