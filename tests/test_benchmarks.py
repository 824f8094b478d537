"""The benchmarks run: ``benchmarks/run.py --quick --no-worker`` and
``benchmarks/bench_scale.py --quick --no-worker`` exit 0 and print every row.

No figure is checked (they are ratios for a person to read, on a shared machine);
only that each measurement ran to the end and said what it measured, and that a
run without the Worker says so.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("| ")]


@pytest.mark.timeout(300)
def test_run_prints_every_row() -> None:
    output = run("run.py", "--quick", "--no-worker")
    table = rows(output)
    expected = [
        ("embedded host", "increment(1), file store"),
        ("embedded host", "call making one nested call"),
        ("network host", "HTTP call"),
        ("network host", "RPC-session call, sequential"),
        ("network host", "pipelined RPC-session calls"),
        ("network host", "fan-out to 100 subscribers"),
        ("network host", "call making one nested call"),
        ("Elixir client (published)", "HTTP call on wrangler dev"),
    ]
    for target, measure in expected:
        assert any(target in row and measure in row for row in table), (target, measure, output)
    assert "raw websockets, 256 in flight" in output
    assert "Worker rows LEFT OUT: --no-worker was given" in output


@pytest.mark.timeout(300)
def test_bench_scale_prints_every_row() -> None:
    output = run("bench_scale.py", "--quick", "--no-worker")
    for title in (
        "State size",
        "Store growth per call on a 1 MB state",
        "Calls piling up on one object",
        "Fan-out",
        "Objects called at once by one client",
        "Objects in the store",
        "Bulk",
    ):
        assert title in output, (title, output)
    table = rows(output)
    expected = [
        ("embedded host, in-process", "100 B"),
        ("embedded host, in-process", "10 KB"),
        ("network host, HTTP", "10 KB"),
        ("network host, RPC session", "10 KB"),
        ("embedded host", "KB (100 B state)"),
        ("network host", "KB (100 B state)"),
        ("network host", "subscribers, server CPU per change"),
        ("network host", "until the last has it"),
        ("network host", "100 objects at once vs 10, HTTP, pool_size=10 (default)"),
        ("network host", "100 objects at once vs 10, HTTP, pool_size=100"),
        ("network host", "200 objects, each called once"),
        ("network host", "2,000 objects, each called once"),
        ("network host", "calls 51 to 100 on one object"),
        ("network host", "calls 151 to 200 on one object"),
        ("embedded host", "create_many(100) vs create one by one, store on disk"),
        ("network host", "create a new object vs call one"),
    ]
    for target, measure in expected:
        assert any(row.startswith(f"| {target} ") and measure in row for row in table), (
            target,
            measure,
            output,
        )
    assert "Worker rows LEFT OUT: --no-worker was given" in output
