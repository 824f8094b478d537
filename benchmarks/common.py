"""What the benchmark scripts share: the table, interleaved timing, the Worker's
readiness, and a server's CPU time and memory read from ``/proc``.

Every figure is a ratio against a baseline measured in the same run: latency rows
alternate chunks of the baseline and of the thing measured, so noise on a shared
machine hits both alike, and compare medians.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cloudflare_durable.testing import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
WORKER_DIR = ROOT / "worker"
MODELS = ROOT / "benchmarks" / "models.py"
TOKEN = "bench-token"
HEADERS = {
    "authorization": f"Bearer {TOKEN}",
    "durable-protocol": "1",
    "content-type": "application/json",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Row:
    target: str
    what: str
    ours: str
    baseline: str
    ratio: str
    goal: str
    met: str = ""


def print_table(rows: list[Row], title: str | None = None) -> None:
    """Rows as a Markdown table (a ``met`` column when any row has a verdict)."""
    fields = ["target", "what", "ours", "baseline", "ratio", "goal"]
    if any(row.met for row in rows):
        fields.append("met")
    header = Row("target", "measure", "ours", "baseline (same run)", "ratio", "goal", "met")
    table = [header, *rows]
    widths = [max(len(getattr(r, f)) for r in table) for f in fields]
    if title:
        print(f"\n{title}\n")
    for index, row in enumerate(table):
        cells = [getattr(row, f) for f in fields]
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


def print_grid(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A Markdown table under a title."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    print(f"\n{title}\n")
    for index, row in enumerate([headers, *rows]):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def interleave(
    raw: Callable[[], Awaitable[object]],
    ours: Callable[[], Awaitable[object]],
    calls: int,
    chunk: int = 100,
) -> tuple[list[float], list[float]]:
    """Latencies of ``calls`` calls of each, alternating chunks of ``chunk`` calls."""
    samples = await interleave_many([raw, ours], calls, chunk)
    return samples[0], samples[1]


async def interleave_many(
    functions: list[Callable[[], Awaitable[object]]],
    calls: int,
    chunk: int = 100,
    *,
    meter: Callable[[], float] | list[Callable[[], float]] | None = None,
    spent: list[float] | None = None,
) -> list[list[float]]:
    """Latencies of ``calls`` calls of each function, in chunks taken in turn.

    With ``meter`` (a server's CPU seconds, say; or one meter per function),
    ``spent[i]`` gains what the meter moved during function ``i``'s chunks.
    """
    chunk = min(chunk, calls)
    samples: list[list[float]] = [[] for _ in functions]
    meters = meter if isinstance(meter, list) else [meter] * len(functions)
    for _ in range(min(chunk, 20)):  # warm up
        for fn in functions:
            await fn()
    for _ in range(max(1, calls // chunk)):
        for index, fn in enumerate(functions):
            found = samples[index]
            measure = meters[index]
            before = measure() if measure is not None else 0.0
            for _ in range(chunk):
                start = time.perf_counter()
                await fn()
                found.append(time.perf_counter() - start)
            if measure is not None and spent is not None:
                spent[index] += measure() - before
    return samples


# -- the Worker --------------------------------------------------------------------


def worker_status(no_worker: bool) -> str | None:
    """None when the Worker rows can run; else why they are left out.

    Installs ``worker/node_modules`` with ``npm ci`` when Node is there and they
    are missing.
    """
    if no_worker:
        return "--no-worker was given"
    if shutil.which("node") is None:
        return "Node is not installed (node not found on PATH)"
    if not (WORKER_DIR / "node_modules").is_dir():
        if shutil.which("npm") is None:
            return "worker/node_modules is missing and npm is not installed"
        print("worker/node_modules is missing: running npm ci in worker/", file=sys.stderr)
        env = {**os.environ, "WRANGLER_SEND_METRICS": "false"}
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=WORKER_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            return f"npm ci in worker/ failed: {(done.stdout + done.stderr).strip()[-500:]}"
    return None


def say_left_out(reason: str) -> None:
    """Say loudly, on stdout with the tables, that the Worker rows were not run."""
    line = "!" * 78
    print(f"\n{line}\n!! Worker rows LEFT OUT: {reason}\n{line}", flush=True)


# -- a server's CPU time and memory --------------------------------------------------


def server_pid(server: ServerProcess) -> int:
    process = server._process  # the child the helper started
    assert process is not None, "the server is not running"
    return process.pid


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (workerd runs under Node's serve.mjs)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of ``pids`` so far (ticks of 1/CLK_TCK s)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of ``pids`` together."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
        except OSError:
            continue
    return total


def worker_project(folder: Path) -> Path:
    """A Worker project for ``benchmarks/models.py`` (``durable init worker``), with
    the method bodies of ``WORKER_BODIES`` and the repository Worker's installed
    toolchain. Made once per folder."""
    from models import WORKER_BODIES

    root = folder / "bench-worker"
    if root.exists():
        return root
    init = ["init", "worker", str(root), "--models", str(MODELS)]
    subprocess.run(
        [sys.executable, "-m", "cloudflare_durable._cli", *init],
        check=True,
        capture_output=True,
        text=True,
    )
    for name, text in WORKER_BODIES.items():
        (root / "src" / "models" / name).write_text(text)
    os.symlink(WORKER_DIR / "node_modules", root / "node_modules")
    return root
