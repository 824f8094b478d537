"""Load: many concurrent clients on a few dozen objects, against each network server.

    python benchmarks/bench_load.py [--seconds 30] [--clients 200] [--objects 50]
                                    [--servers network,worker] [--json]

For each server (the network host, ``durable serve``, and the Worker on workerd)
a fresh server is started on 127.0.0.1 with a fresh store. ``--clients`` clients,
each a ``DurableClient`` of its own (its own connection), run in one event loop
for ``--seconds`` seconds; each call picks one of ``--objects`` counters at
random and either increments it (nine calls in ten) or loads it. The clients
keep their default retry policy; retries are counted.

Printed per server: calls and calls/s, latency p50 / p99 / max in ms, errors
(calls that failed after retries), retries, whether every counter ends at
exactly the number of increments acknowledged on it, and the server's memory:
the peak of its resident memory sampled every 0.2 s (for the Worker, node and
workerd together) and ``VmHWM``, the kernel's peak, summed over its processes.

The client runs in the same machine and on the same cores as the server, so
the figures are a floor for the server, not a ceiling.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from counter import Counter  # noqa: E402

from cloudflare_durable import DurableClient, DurableError  # noqa: E402
from cloudflare_durable.testing import NetworkHost, ServerProcess, WorkerHost  # noqa: E402

TOKEN = "bench-token"


@dataclass
class Report:
    server: str
    seconds: float
    clients: int
    objects: int
    calls: int
    calls_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    retries: int
    exact: bool
    peak_rss_mib: float
    vm_hwm_mib: float
    first_errors: list[str]


class RetryCounter(logging.Handler):
    """Counts the client's "retrying ..." log records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("retrying"):
            self.count += 1


def process_tree(pid: int) -> list[int]:
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        for tasks in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue += [int(child) for child in tasks.read_text().split()]
            except OSError:
                continue
    return tree


def memory_kib(pids: list[int], field: str) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_load(
    server: ServerProcess, name: str, seconds: float, clients: int, objects: int
) -> Report:
    process = server._process
    assert process is not None
    pids = process_tree(process.pid)
    run = uuid_prefix()
    object_ids = [f"{run}-{index}" for index in range(objects)]
    acknowledged = [0] * objects
    latencies: list[float] = []
    errors: list[str] = []
    peak_rss = 0
    retries = RetryCounter()
    telemetry_logger = logging.getLogger("cloudflare_durable.telemetry")
    telemetry_logger.addHandler(retries)
    telemetry_logger.setLevel(logging.INFO)
    started = anyio.Event()
    deadline = 0.0

    async def client_loop(seed: int) -> None:
        rng = random.Random(seed)
        async with DurableClient(server.url, token=TOKEN, pool_size=1, timeout=30) as client:
            counters = [client.get(Counter, object_id) for object_id in object_ids]
            await started.wait()
            while time.monotonic() < deadline:
                index = rng.randrange(objects)
                begin = time.perf_counter()
                try:
                    if rng.random() < 0.9:
                        await counters[index].increment(1)
                        acknowledged[index] += 1
                    else:
                        await counters[index].load()
                except DurableError as error:
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                latencies.append(time.perf_counter() - begin)

    async def sample_memory() -> None:
        nonlocal peak_rss
        while True:
            peak_rss = max(peak_rss, memory_kib(pids, "VmRSS"))
            await anyio.sleep(0.2)

    try:
        async with anyio.create_task_group() as outer:
            outer.start_soon(sample_memory)
            async with anyio.create_task_group() as clients_group:
                for seed in range(clients):
                    clients_group.start_soon(client_loop, seed)
                await anyio.sleep(0.5)  # every client waits on the start line
                deadline = time.monotonic() + seconds
                begin = time.monotonic()
                started.set()
            # each client stops at the deadline, once its call in flight returns
            elapsed = time.monotonic() - begin
            outer.cancel_scope.cancel()
    finally:
        telemetry_logger.removeHandler(retries)
    vm_hwm = memory_kib(pids, "VmHWM")

    exact = True
    async with DurableClient(server.url, token=TOKEN, timeout=30) as client:
        for index, object_id in enumerate(object_ids):
            value = (await client.get(Counter, object_id).load()).value
            exact = exact and value == acknowledged[index]
    ordered = sorted(latencies)
    return Report(
        server=name,
        seconds=round(elapsed, 2),
        clients=clients,
        objects=objects,
        calls=len(latencies),
        calls_per_second=round(len(latencies) / elapsed, 1),
        p50_ms=round(percentile(ordered, 0.50) * 1000, 2),
        p99_ms=round(percentile(ordered, 0.99) * 1000, 2),
        max_ms=round((ordered[-1] if ordered else float("nan")) * 1000, 2),
        errors=len(errors),
        retries=retries.count,
        exact=exact,
        peak_rss_mib=round(peak_rss / 1024, 1),
        vm_hwm_mib=round(vm_hwm / 1024, 1),
        first_errors=errors[:5],
    )


def uuid_prefix() -> str:
    return f"load-{random.SystemRandom().randrange(16**8):08x}"


def start(name: str, folder: Path) -> ServerProcess:
    if name == "network":
        models = ROOT / "examples" / "counter.py"
        return NetworkHost(models, store=folder / "state.sqlite3", token=TOKEN).start()
    if not WorkerHost.available():
        raise SystemExit("the Worker is not installed: run `npm ci` in worker/")
    return WorkerHost(folder / "persist", token=TOKEN).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--servers", default="network,worker")
    parser.add_argument("--json", action="store_true", help="print one JSON report per line")
    args = parser.parse_args(argv)
    reports = []
    for name in args.servers.split(","):
        with tempfile.TemporaryDirectory() as folder:
            server = start(name, Path(folder))
            try:
                report = anyio.run(run_load, server, name, args.seconds, args.clients, args.objects)
            finally:
                server.close()
        reports.append(report)
        if args.json:
            print(json.dumps(asdict(report)), flush=True)
    if not args.json:
        print_table(reports)
    return 0 if all(r.errors == 0 and r.exact for r in reports) else 1


def print_table(reports: list[Report]) -> None:
    columns = [
        ("server", "server"),
        ("calls", "calls"),
        ("calls/s", "calls_per_second"),
        ("p50 ms", "p50_ms"),
        ("p99 ms", "p99_ms"),
        ("max ms", "max_ms"),
        ("errors", "errors"),
        ("retries", "retries"),
        ("exact", "exact"),
        ("peak RSS MiB", "peak_rss_mib"),
        ("VmHWM MiB", "vm_hwm_mib"),
    ]
    rows = [[title for title, _ in columns]]
    rows += [[str(getattr(report, key)) for _, key in columns] for report in reports]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    first = reports[0] if reports else None
    if first is not None:
        print(
            f"{first.clients} clients, {first.objects} objects, {first.seconds:g} s per server "
            "(9 increments : 1 load)"
        )
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    for report in reports:
        for error in report.first_errors:
            print(f"{report.server}: {error}")


if __name__ == "__main__":
    raise SystemExit(main())
