"""``cloudflare_durable.blocking``: scripts, as users write them, run in child processes
(one background loop per process, closed at exit) against the embedded host and
``durable serve``; and the warning for a remote call that is never awaited."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cloudflare_durable import DurableClient
from cloudflare_durable.testing import NetworkHost

from .conftest import ROOT, TOKEN
from .models import Counter

PRELUDE = f"""
import os, sys, threading
sys.path.insert(0, {str(ROOT / "examples")!r})
from counter import Counter
from cloudflare_durable import blocking

def fds(match):
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{{fd}}")
        except OSError:
            continue
        if match(target):
            found.append(target)
    return found
"""


def script(code: str, cwd: Path, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", PRELUDE + textwrap.dedent(code)],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    return result.stdout


def test_a_thousand_calls_share_one_sqlite_connection(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite3"
    out = script(
        f"""
        counter = Counter.get("c")
        for _ in range(1000):
            value = blocking.run(counter.increment(1))
        print("value", value)
        print("connections", len(fds(lambda t: t == {str(store)!r})))
        """,
        tmp_path,
        CLOUDFLARE_DURABLE_STORE=str(store),
    )
    assert "value 1000" in out
    assert "connections 1" in out
    # Closed at exit: SQLite removes the write-ahead log with its last connection.
    assert store.exists()
    assert not Path(f"{store}-wal").exists()


def test_memory_state_lasts_from_call_to_call(tmp_path: Path) -> None:
    out = script(
        """
        for _ in range(3):
            blocking.run(Counter.get("m").increment(2))
        print("loaded", blocking.run(Counter.get("m").load()).value)
        """,
        tmp_path,
        CLOUDFLARE_DURABLE_STORE=":memory:",
    )
    assert "loaded 6" in out
    assert not list(tmp_path.iterdir())  # no stray store file


def test_a_thousand_calls_to_a_server_use_a_bounded_pool(
    network_host: NetworkHost, tmp_path: Path
) -> None:
    out = script(
        """
        sockets = lambda: len(fds(lambda t: t.startswith("socket:")))
        before = sockets()
        counter = Counter.get("pool-" + os.urandom(4).hex())
        for _ in range(1000):
            value = blocking.run(counter.increment(1))
        print("value", value)
        print("sockets", sockets() - before)
        """,
        tmp_path,
        CLOUDFLARE_WORKER_URL=network_host.url,
        CLOUDFLARE_DURABLE_TOKEN=TOKEN,
        CLOUDFLARE_DURABLE_POOL_SIZE="4",
    )
    assert "value 1000" in out
    sockets = int(out.split("sockets ")[1])
    assert 1 <= sockets <= 4 + 2  # the pool, and the loop's own wake-up pair


def test_calls_from_several_threads(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite3"
    out = script(
        f"""
        errors = []
        def work():
            try:
                for _ in range(50):
                    blocking.run(Counter.get("shared").increment(1))
            except BaseException as error:
                errors.append(error)
        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print("errors", errors)
        print("value", blocking.run(Counter.get("shared").load()).value)
        print("connections", len(fds(lambda t: t == {str(store)!r})))
        """,
        tmp_path,
        CLOUDFLARE_DURABLE_STORE=str(store),
    )
    assert "errors []" in out
    assert "value 400" in out
    assert "connections 1" in out


def test_iterate_a_subscription_and_leave_it(tmp_path: Path) -> None:
    out = script(
        """
        counter = Counter.get("watched")
        seen = []
        def bump():
            for _ in range(3):
                blocking.run(counter.increment(1))
        for snapshot in blocking.iterate(counter.subscribe()):
            seen.append(snapshot.value)
            if snapshot.value == 0:
                threading.Thread(target=bump).start()
            if snapshot.value >= 3:
                break
        print("seen", seen[0], seen[-1], seen == sorted(set(seen)))
        async def numbers():
            for n in range(3):
                yield n
        print("numbers", list(blocking.iterate(numbers())))
        """,
        tmp_path,
        CLOUDFLARE_DURABLE_STORE=":memory:",
    )
    assert "seen 0 3 True" in out
    assert "numbers [0, 1, 2]" in out


def test_errors_propagate_and_the_loop_goes_on(tmp_path: Path) -> None:
    out = script(
        """
        from cloudflare_durable import ValidationError
        try:
            blocking.run(Counter.get("e").increment("x"))
        except ValidationError as error:
            print("refused", type(error).__name__)
        print("value", blocking.run(Counter.get("e").increment(1)))
        """,
        tmp_path,
        CLOUDFLARE_DURABLE_STORE=":memory:",
    )
    assert "refused ValidationError" in out
    assert "value 1" in out


def test_blocking_inside_a_method_body_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(
        textwrap.dedent(
            """
            from cloudflare_durable import DurableModel, blocking, remote

            class Nested(DurableModel):
                n: int = 0

                @remote
                async def wrong(self) -> int:
                    return blocking.run(Nested.get("other").right())

                @remote
                async def right(self) -> int:
                    return 1
            """
        )
    )
    out = script(
        """
        sys.path.insert(0, os.getcwd())
        from models import Nested
        from cloudflare_durable import RemoteError
        try:
            blocking.run(Nested.get("n").wrong())
        except RemoteError as error:
            print("refused", error.type_name, "await instead" in str(error))
        """,
        tmp_path,
        CLOUDFLARE_DURABLE_STORE=":memory:",
    )
    assert "refused UsageError True" in out


def test_the_blocking_example(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "blocking_script.py")],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "counter at 3" in result.stdout


# -- a remote call that is never awaited --------------------------------------------


def _forget_to_await() -> None:
    Counter.get("never-awaited").increment(1)  # type: ignore[unused-coroutine]  # the mistake


def test_a_call_never_awaited_warns_naming_the_method() -> None:
    with pytest.warns(RuntimeWarning, match=r"Counter\.increment\(\) on 'never-awaited'") as seen:
        _forget_to_await()
    [warning] = seen.list  # Python's generic "coroutine ... was never awaited" is not added
    assert "so the call was never sent" in str(warning.message)


@pytest.mark.anyio
async def test_awaited_calls_do_not_warn(durable_client: DurableClient) -> None:
    call = Counter.get("awaited").increment(2)
    assert await call == 2
    gc.collect()  # filterwarnings = error: any warning would fail the test


def test_a_closed_call_does_not_warn() -> None:
    call = Counter.get("closed").increment(1)
    call.close()
    del call
    gc.collect()
