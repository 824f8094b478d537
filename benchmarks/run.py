"""Every benchmark in one table: each row is our figure against a raw baseline
measured in the same run, on the same server.

    python benchmarks/run.py [--quick] [--no-worker]

Rows:

- embedded: ``await counter.increment(1)`` vs validate + dict + one SQLite commit;
- HTTP call vs a raw ``httpx.AsyncClient`` POST of the same JSON to the same
  endpoint (network host, then the Worker on workerd);
- RPC-session call vs a raw ``websockets`` request/reply on one connection;
- pipelined calls in one RPC session (one object), calls/s;
- fan-out: N subscribers on one object, time from the call that changes it until
  the last subscriber has the new snapshot (p50 / p99 over changes);
- Worker: RPC-session calls/s vs HTTP calls/s on the same object.

Latency rows interleave the baseline and our client in chunks, so noise on a
shared machine hits both alike; the ratio of medians is what counts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from counter import Counter  # noqa: E402

from cloudflare_durable import DurableClient  # noqa: E402
from cloudflare_durable.testing import NetworkHost, ServerProcess, WorkerHost  # noqa: E402

TOKEN = "bench-token"
HEADERS = {
    "authorization": f"Bearer {TOKEN}",
    "durable-protocol": "1",
    "content-type": "application/json",
}


@dataclass
class Row:
    target: str
    what: str
    ours: str
    baseline: str
    ratio: str
    goal: str


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def interleave(
    raw: Callable[[], Awaitable[object]],
    ours: Callable[[], Awaitable[object]],
    calls: int,
    chunk: int = 100,
) -> tuple[list[float], list[float]]:
    raw_samples: list[float] = []
    our_samples: list[float] = []
    for _ in range(chunk):  # warm up
        await raw()
        await ours()
    for _ in range(max(1, calls // chunk)):
        for samples, fn in ((raw_samples, raw), (our_samples, ours)):
            for _ in range(chunk):
                start = time.perf_counter()
                await fn()
                samples.append(time.perf_counter() - start)
    return raw_samples, our_samples


async def http_row(server: ServerProcess, target: str, calls: int, goal: str) -> tuple[Row, float]:
    object_id = f"http-{uuid.uuid4().hex[:8]}"
    raw_id = f"raw-{uuid.uuid4().hex[:8]}"
    url = f"{server.url}/v1/objects/Counter/{raw_id}/call/increment"
    async with (
        httpx.AsyncClient(headers=HEADERS) as raw_client,
        DurableClient(server.url, token=TOKEN) as client,
    ):
        counter = client.get(Counter, object_id)

        async def raw() -> None:
            # The same JSON our client sends: the arguments and a fresh request id.
            body = json.dumps({"args": {"by": 1}, "request_id": uuid.uuid4().hex}).encode()
            reply = await raw_client.post(url, content=body)
            reply.raise_for_status()
            reply.json()

        async def ours() -> None:
            await counter.increment(1)

        raw_samples, our_samples = await interleave(raw, ours, calls)
    raw_m, our_m = median_us(raw_samples), median_us(our_samples)
    row = Row(
        target,
        "HTTP call, median",
        f"{our_m:.0f} us",
        f"{raw_m:.0f} us (raw httpx POST)",
        f"{our_m / raw_m:.2f}",
        goal,
    )
    return row, our_m


async def session_row(server: ServerProcess, target: str, calls: int) -> Row:
    object_id = f"session-{uuid.uuid4().hex[:8]}"
    raw_id = f"rawws-{uuid.uuid4().hex[:8]}"
    ws_url = server.url.replace("http://", "ws://") + f"/v1/objects/Counter/{raw_id}/ws"
    async with (
        connect(ws_url, additional_headers=HEADERS) as socket,
        DurableClient(server.url, token=TOKEN) as client,
    ):
        counter = client.get(Counter, object_id)
        async with counter.session() as session:
            next_id = iter(range(1, 10**9))

            async def raw() -> None:
                frame = {
                    "type": "call",
                    "id": next(next_id),
                    "method": "increment",
                    "args": {"by": 1},
                    "request_id": uuid.uuid4().hex,  # as our client sends
                }
                await socket.send(json.dumps(frame))
                json.loads(await socket.recv())

            async def ours() -> None:
                await session.increment(1)

            raw_samples, our_samples = await interleave(raw, ours, calls)
    raw_m, our_m = median_us(raw_samples), median_us(our_samples)
    return Row(
        target,
        "RPC-session call, sequential, median",
        f"{our_m:.0f} us",
        f"{raw_m:.0f} us (raw websockets)",
        f"{our_m / raw_m:.2f}",
        "<= 1.5",
    )


async def pipelined(server: ServerProcess, calls: int, in_flight: int = 1000) -> float:
    """Calls per second of one RPC session with ``in_flight`` calls outstanding."""
    object_id = f"pipe-{uuid.uuid4().hex[:8]}"
    per_worker = max(1, calls // in_flight)
    async with DurableClient(server.url, token=TOKEN) as client:
        counter = client.get(Counter, object_id)
        async with counter.session() as session:

            async def worker() -> None:
                for _ in range(per_worker):
                    await session.increment(1)

            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for _ in range(in_flight):
                    tg.start_soon(worker)
            elapsed = time.perf_counter() - start
        final = await counter.load()
    if final.value != per_worker * in_flight:
        raise RuntimeError(f"pipelined run lost calls: {final.value} != {per_worker * in_flight}")
    return per_worker * in_flight / elapsed


async def sequential_http_rate(server: ServerProcess, calls: int) -> float:
    async with DurableClient(server.url, token=TOKEN) as client:
        counter = client.get(Counter, f"seq-{uuid.uuid4().hex[:8]}")
        start = time.perf_counter()
        for _ in range(calls):
            await counter.increment(1)
        return calls / (time.perf_counter() - start)


async def fan_out(server: ServerProcess, subscribers: int, changes: int) -> tuple[float, float]:
    """p50 and p99, over ``changes``, of the time until the last subscriber has it."""
    object_id = f"fan-{uuid.uuid4().hex[:8]}"
    arrivals: dict[int, list[float]] = {value: [] for value in range(2, changes + 2)}
    complete = {value: anyio.Event() for value in arrivals}
    ready = 0
    all_ready = anyio.Event()
    async with DurableClient(server.url, token=TOKEN, timeout=120) as client:
        counter = client.get(Counter, object_id)
        await counter.increment(1)

        async def subscriber() -> None:
            nonlocal ready
            async with counter.subscribe() as snapshots:
                async for snapshot in snapshots:
                    if snapshot.value == 1:
                        ready += 1
                        if ready == subscribers:
                            all_ready.set()
                        continue
                    arrivals[snapshot.value].append(time.perf_counter())
                    if len(arrivals[snapshot.value]) == subscribers:
                        complete[snapshot.value].set()
                    if snapshot.value == changes + 1:
                        return

        sent: dict[int, float] = {}
        async with anyio.create_task_group() as tg:
            for _ in range(subscribers):
                tg.start_soon(subscriber)
            with anyio.fail_after(120):
                await all_ready.wait()
            for value in range(2, changes + 2):
                sent[value] = time.perf_counter()
                await counter.increment(1)
                with anyio.fail_after(60):
                    await complete[value].wait()
    spans = sorted(max(arrivals[v]) - sent[v] for v in sent)
    return statistics.median(spans), spans[min(len(spans) - 1, int(len(spans) * 0.99))]


async def network_rows(server: ServerProcess, target: str, args: argparse.Namespace) -> list[Row]:
    rows = []
    row, _ = await http_row(server, target, args.calls, "<= 1.15")
    rows.append(row)
    rows.append(await session_row(server, target, args.calls))
    rate = await pipelined(server, args.pipelined)
    rows.append(
        Row(
            target,
            "pipelined RPC-session calls, one object",
            f"{rate:,.0f} calls/s",
            "",
            "",
            ">= 20,000/s" if target == "network host" else "",
        )
    )
    if target != "network host":
        http_rate = await sequential_http_rate(server, args.calls)
        rows.append(
            Row(
                target,
                "RPC-session calls/s vs sequential HTTP calls/s",
                f"{rate:,.0f}/s",
                f"{http_rate:,.0f}/s (HTTP)",
                f"{rate / http_rate:.1f}",
                "",
            )
        )
    p50, p99 = await fan_out(server, args.subscribers, args.changes)
    rows.append(
        Row(
            target,
            f"fan-out to {args.subscribers} subscribers, until the last has it",
            f"p50 {p50 * 1e3:.1f} ms / p99 {p99 * 1e3:.1f} ms",
            "",
            "",
            "report",
        )
    )
    return rows


def embedded_row(calls: int) -> Row:
    from bench_embedded import measure

    folder = Path(tempfile.mkdtemp(prefix="durable-bench-"))
    raw, mine = anyio.run(measure, folder, calls, 100)
    raw_m, our_m = median_us(raw), median_us(mine)
    return Row(
        "embedded host",
        "increment(1), file store, median",
        f"{our_m:.0f} us",
        f"{raw_m:.0f} us (validate + dict + commit)",
        f"{our_m / raw_m:.2f}",
        "<= 1.5",
    )


def print_table(rows: list[Row]) -> None:
    header = Row("target", "measure", "ours", "baseline (same run)", "ratio", "goal")
    table = [header, *rows]
    widths = [
        max(len(getattr(r, f)) for r in table)
        for f in ("target", "what", "ours", "baseline", "ratio", "goal")
    ]
    for index, row in enumerate(table):
        cells = [row.target, row.what, row.ours, row.baseline, row.ratio, row.goal]
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main() -> None:
    parser = argparse.ArgumentParser(description="cloudflare-durable benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--no-worker", action="store_true", help="skip the Worker on workerd")
    args = parser.parse_args()
    args.calls = 500 if args.quick else 3000
    args.pipelined = 5000 if args.quick else 40000
    args.subscribers = 100 if args.quick else 1000
    args.changes = 10 if args.quick else 50
    rows = [embedded_row(args.calls)]
    folder = Path(tempfile.mkdtemp(prefix="durable-bench-"))
    with NetworkHost(
        ROOT / "examples" / "counter.py", store=folder / "net.sqlite3", token=TOKEN
    ) as server:
        rows += anyio.run(network_rows, server, "network host", args)
    if not args.no_worker and WorkerHost.available():
        with WorkerHost(folder / "worker", token=TOKEN) as worker:
            rows += anyio.run(network_rows, worker, "Worker (workerd)", args)
    rows.append(
        Row(
            "Elixir client (published)",
            "HTTP call on wrangler dev, median",
            "",
            "1.6 ms",
            "",
            "reference",
        )
    )
    print_table(rows)


if __name__ == "__main__":
    main()
