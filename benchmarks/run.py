"""Every benchmark in one table: each row is our figure against a raw baseline
measured in the same run, on the same server.

    python benchmarks/run.py [--quick] [--no-worker]

Rows:

- embedded: ``await counter.increment(1)`` vs validate + dict + one SQLite commit;
- HTTP call vs a raw ``httpx.AsyncClient`` POST of the same JSON to the same
  endpoint (network host, then the Worker on workerd);
- RPC-session call vs a raw ``websockets`` request/reply on one connection;
- pipelined calls in one RPC session (one object), calls/s, vs a raw ``websockets``
  client pipelining the same call frames (fresh ids) on one connection, with as
  many calls in flight as a server accepts (``MAX_CALLS_IN_FLIGHT``);
- a call whose body calls another object (``Account.transfer`` calling
  ``deposit``) vs two calls made one after the other from outside;
- fan-out: N subscribers on one object, time from the call that changes it until
  the last subscriber has the new snapshot (p50 / p99 over changes);
- Worker: RPC-session calls/s vs HTTP calls/s on the same object.

The Worker rows run whenever Node is installed (``npm ci`` installs
``worker/node_modules`` first if they are missing); when they cannot, the output
says so and why. Latency rows interleave the baseline and our client in chunks,
so noise on a shared machine hits both alike; the ratio of medians is what counts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import anyio
import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import (  # noqa: E402
    HEADERS,
    MODELS,
    TOKEN,
    Row,
    interleave,
    median_us,
    print_table,
    say_left_out,
    verdict,
    worker_project,
    worker_status,
)
from counter import Counter  # noqa: E402
from models import Account  # noqa: E402

from cloudflare_durable import DurableClient  # noqa: E402
from cloudflare_durable._protocol import (  # noqa: E402
    ACKNOWLEDGE_EVERY,
    MAX_CALLS_IN_FLIGHT,
    PING_TEXT,
    has_patch_feature,
)
from cloudflare_durable.testing import NetworkHost, ServerProcess, WorkerHost  # noqa: E402


def ws_url(server: ServerProcess, model: str, object_id: str) -> str:
    return server.url.replace("http://", "ws://") + f"/v1/objects/{model}/{object_id}/ws"


async def announces_patches(server: ServerProcess) -> bool:
    """Whether the server says ``Durable-Features: patch``: our client then sends the
    version it holds (``have``) with each call, and so do the raw baselines."""
    url = f"{server.url}/v1/objects/Counter/probe-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(headers=HEADERS) as raw_client:
        reply = await raw_client.get(url)
    return has_patch_feature(reply.headers.get("durable-features"))


def call_text(call_id: int, have: int | None) -> str:
    """The call frame our client sends for ``increment(1)``: a fresh request id, and the
    version the handle holds once it holds one (to a server that sends patches)."""
    frame: dict[str, object] = {
        "type": "call",
        "id": call_id,
        "method": "increment",
        "args": {"by": 1},
        "request_id": uuid.uuid4().hex,
    }
    if have is not None:
        frame["have"] = have
    return json.dumps(frame, separators=(",", ":"))


class RawSocket:
    """A raw ``websockets`` connection speaking the protocol by hand: it pings every
    ``ACKNOWLEDGE_EVERY`` frames read, as a server requires of every client (4008)."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.unacknowledged = 0

    async def send(self, text: str) -> None:
        await self.socket.send(text)

    async def receive(self) -> dict[str, object]:
        while True:
            frame: dict[str, object] = json.loads(await self.socket.recv())
            self.unacknowledged += 1
            if self.unacknowledged >= ACKNOWLEDGE_EVERY:
                self.unacknowledged = 0
                await self.socket.send(PING_TEXT)
            if frame["type"] != "pong":
                return frame


async def http_row(server: ServerProcess, target: str, calls: int, goal: str) -> Row:
    object_id = f"http-{uuid.uuid4().hex[:8]}"
    raw_id = f"raw-{uuid.uuid4().hex[:8]}"
    url = f"{server.url}/v1/objects/Counter/{raw_id}/call/increment"
    patches = await announces_patches(server)
    async with (
        httpx.AsyncClient(headers=HEADERS) as raw_client,
        DurableClient(server.url, token=TOKEN) as client,
    ):
        counter = client.get(Counter, object_id)
        have: list[int | None] = [None]

        async def raw() -> None:
            # The same JSON our client sends: the arguments, a fresh request id, and the
            # version it holds.
            body: dict[str, object] = {"args": {"by": 1}, "request_id": uuid.uuid4().hex}
            if have[0] is not None:
                body["have"] = have[0]
            reply = await raw_client.post(url, content=json.dumps(body).encode())
            reply.raise_for_status()
            version = reply.json()["version"]
            have[0] = version if patches else None

        async def ours() -> None:
            await counter.increment(1)

        raw_samples, our_samples = await interleave(raw, ours, calls)
    raw_m, our_m = median_us(raw_samples), median_us(our_samples)
    ratio = our_m / raw_m
    return Row(
        target,
        "HTTP call, median",
        f"{our_m:.0f} us",
        f"{raw_m:.0f} us (raw httpx POST)",
        f"{ratio:.2f}",
        goal,
        verdict(ratio <= 1.15),
    )


async def session_row(server: ServerProcess, target: str, calls: int) -> Row:
    object_id = f"session-{uuid.uuid4().hex[:8]}"
    raw_id = f"rawws-{uuid.uuid4().hex[:8]}"
    patches = await announces_patches(server)
    async with (
        connect(ws_url(server, "Counter", raw_id), additional_headers=HEADERS) as socket,
        DurableClient(server.url, token=TOKEN) as client,
    ):
        counter = client.get(Counter, object_id)
        raw_socket = RawSocket(socket)
        async with counter.session() as session:
            next_id = iter(range(1, 10**9))
            have: list[int | None] = [None]

            async def raw() -> None:
                await raw_socket.send(call_text(next(next_id), have[0]))
                reply = await raw_socket.receive()
                if reply["type"] != "result":
                    raise RuntimeError(f"the raw session got {reply}")
                have[0] = int(reply["version"]) if patches else None  # type: ignore[call-overload]

            async def ours() -> None:
                await session.increment(1)

            raw_samples, our_samples = await interleave(raw, ours, calls)
    raw_m, our_m = median_us(raw_samples), median_us(our_samples)
    ratio = our_m / raw_m
    return Row(
        target,
        "RPC-session call, sequential, median",
        f"{our_m:.0f} us",
        f"{raw_m:.0f} us (raw websockets)",
        f"{ratio:.2f}",
        "<= 1.5",
        verdict(ratio <= 1.5),
    )


async def raw_pipelined_round(
    socket: RawSocket, calls: int, window: int, have: list[int], patches: bool
) -> None:
    """``calls`` call frames on one connection, at most ``window`` unanswered at a time.
    ``have`` holds the version last seen and the next frame id."""
    sent = received = 0
    next_id = have[1]

    def held() -> int | None:
        return have[0] if patches and have[0] else None

    while sent < min(window, calls):
        await socket.send(call_text(next_id + sent, held()))
        sent += 1
    while received < calls:
        reply = await socket.receive()
        if reply["type"] != "result":
            raise RuntimeError(f"the raw pipelined client got {reply}")
        received += 1
        have[0] = max(have[0], int(reply["version"]))  # type: ignore[call-overload]
        if sent < calls:
            await socket.send(call_text(next_id + sent, held()))
            sent += 1
    have[1] = next_id + calls


async def pipelined_row(
    server: ServerProcess, target: str, calls: int, rounds: int, in_flight: int = 1000
) -> tuple[Row, float]:
    """Calls/s of one RPC session with ``in_flight`` calls outstanding (the session
    sends at most ``MAX_CALLS_IN_FLIGHT`` at a time) against a raw client keeping
    the same number of call frames unanswered on one connection; rounds alternate."""
    object_id = f"pipe-{uuid.uuid4().hex[:8]}"
    raw_id = f"rawpipe-{uuid.uuid4().hex[:8]}"
    per_round = max(in_flight, calls // rounds)
    per_task = per_round // in_flight
    per_round = per_task * in_flight
    raw_time = our_time = 0.0
    patches = await announces_patches(server)
    async with (
        connect(ws_url(server, "Counter", raw_id), additional_headers=HEADERS) as socket,
        DurableClient(server.url, token=TOKEN) as client,
    ):
        raw_socket = RawSocket(socket)
        have = [0, 1]  # the version last seen, the next frame id
        counter = client.get(Counter, object_id)
        async with counter.session() as session:

            async def task() -> None:
                for _ in range(per_task):
                    await session.increment(1)

            async def ours() -> None:
                async with anyio.create_task_group() as tg:
                    for _ in range(in_flight):
                        tg.start_soon(task)

            await raw_pipelined_round(
                raw_socket, MAX_CALLS_IN_FLIGHT, MAX_CALLS_IN_FLIGHT, have, patches
            )
            await session.increment(1)  # warm up both
            for _ in range(rounds):
                start = time.perf_counter()
                await raw_pipelined_round(raw_socket, per_round, MAX_CALLS_IN_FLIGHT, have, patches)
                raw_time += time.perf_counter() - start
                start = time.perf_counter()
                await ours()
                our_time += time.perf_counter() - start
        final = await counter.load()
    if final.value != per_round * rounds + 1:
        raise RuntimeError(f"pipelined run lost calls: {final.value} != {per_round * rounds + 1}")
    ours_rate = per_round * rounds / our_time
    raw_rate = per_round * rounds / raw_time
    ratio = ours_rate / raw_rate
    row = Row(
        target,
        "pipelined RPC-session calls, one object",
        f"{ours_rate:,.0f} calls/s",
        f"{raw_rate:,.0f} calls/s (raw websockets, {MAX_CALLS_IN_FLIGHT} in flight)",
        f"{ratio:.2f}",
        ">= 0.5",
        verdict(ratio >= 0.5),
    )
    return row, ours_rate


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


async def nested_row(client: DurableClient, target: str, calls: int) -> Row:
    """``a.transfer(b, 1)`` (its body calls ``b.deposit(1)``) against
    ``c.deposit(-1)`` then ``d.deposit(1)`` from outside, on the same host."""
    tag = uuid.uuid4().hex[:8]
    a, b = client.get(Account, f"nest-a-{tag}"), client.get(Account, f"nest-b-{tag}")
    c, d = client.get(Account, f"two-c-{tag}"), client.get(Account, f"two-d-{tag}")

    async def two() -> None:
        await c.deposit(-1)
        await d.deposit(1)

    transfers = 0

    async def nested() -> None:
        nonlocal transfers
        await a.transfer(b.durable_id, 1)
        transfers += 1

    raw_samples, our_samples = await interleave(two, nested, calls)
    balances = ((await a.load()).balance, (await b.load()).balance)
    if balances != (-transfers, transfers):
        raise RuntimeError(f"{transfers} transfers left the balances at {balances}")
    raw_m, our_m = median_us(raw_samples), median_us(our_samples)
    ratio = our_m / raw_m
    return Row(
        target,
        "call making one nested call, median",
        f"{our_m:.0f} us",
        f"{raw_m:.0f} us (two calls from outside)",
        f"{ratio:.2f}",
        "report",
    )


async def network_rows(server: ServerProcess, target: str, args: argparse.Namespace) -> list[Row]:
    rows = [await http_row(server, target, args.calls, "<= 1.15")]
    rows.append(await session_row(server, target, args.calls))
    row, rate = await pipelined_row(server, target, args.pipelined, args.rounds)
    rows.append(row)
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
            "see bench_scale.py",
            "",
            "report",
        )
    )
    return rows


async def served_nested_row(server: ServerProcess, target: str, calls: int) -> Row:
    async with DurableClient(server.url, token=TOKEN) as client:
        return await nested_row(client, target, calls)


async def embedded_nested_row(folder: Path, calls: int) -> Row:
    async with DurableClient(store=str(folder / "nested.sqlite3")) as client:
        return await nested_row(client, "embedded host", calls)


def embedded_row(folder: Path, calls: int) -> Row:
    from bench_embedded import measure

    raw, mine = anyio.run(measure, folder, calls, 100)
    raw_m, our_m = median_us(raw), median_us(mine)
    ratio = our_m / raw_m
    return Row(
        "embedded host",
        "increment(1), file store, median",
        f"{our_m:.0f} us (+{our_m - raw_m:.0f})",
        f"{raw_m:.0f} us (validate + dict + commit)",
        f"{ratio:.2f}",
        "<= 1.5",
        verdict(ratio <= 1.5),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="cloudflare-durable benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--no-worker", action="store_true", help="skip the Worker on workerd")
    args = parser.parse_args()
    args.calls = 300 if args.quick else 3000
    args.pipelined = 2000 if args.quick else 40000
    args.rounds = 2 if args.quick else 8
    args.subscribers = 100 if args.quick else 1000
    args.changes = 10 if args.quick else 50
    left_out = worker_status(args.no_worker)
    folder = Path(tempfile.mkdtemp(prefix="durable-bench-"))
    rows = [embedded_row(folder, args.calls)]
    rows.append(anyio.run(embedded_nested_row, folder, args.calls))
    with NetworkHost(
        ROOT / "examples" / "counter.py", store=folder / "net.sqlite3", token=TOKEN
    ) as server:
        rows += anyio.run(network_rows, server, "network host", args)
    with NetworkHost(MODELS, store=folder / "nested.sqlite3", token=TOKEN) as server:
        rows.append(anyio.run(served_nested_row, server, "network host", args.calls))
    if left_out is None:
        with WorkerHost(folder / "worker", token=TOKEN) as worker:
            rows += anyio.run(network_rows, worker, "Worker (workerd)", args)
        with WorkerHost(
            folder / "nested-worker", token=TOKEN, worker_dir=worker_project(folder)
        ) as worker:
            rows.append(anyio.run(served_nested_row, worker, "Worker (workerd)", args.calls))
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
    if left_out is not None:
        say_left_out(left_out)


if __name__ == "__main__":
    main()
