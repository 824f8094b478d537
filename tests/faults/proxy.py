"""A fault-injecting TCP proxy between a real client and a real server.

The proxy listens on 127.0.0.1 and forwards every connection to one upstream
address. Faults follow a *seeded* schedule, so a failing run can be replayed:
connection number ``n`` draws its decisions from ``random.Random(f"{seed}:{n}")``,
the same draws in the same order whatever the timing. (What a run does still
depends on which request lands on which connection, so a replay reproduces the
faults, not the exact interleaving.)

A connection carries *exchanges*: an exchange starts when the client sends
bytes after the server has spoken (or at the start), and lasts until the client
speaks again after the server replied; on an HTTP/1.1 keep-alive connection
that is one request and its reply. For each exchange the schedule picks one of:

- ``drop_before``: close both sides as soon as the request's first bytes
  arrive, forwarding nothing (the server never sees the request);
- ``drop_after_request``: forward the request, then close both sides as soon
  as the first reply bytes come back, forwarding none of them (the server
  acted; the client never learns the outcome);
- ``reset_mid_reply``: forward the request and part of the reply's first
  chunk, then close both sides;
- ``delay``: hold the request back for a random time before forwarding it;
- nothing (pass it through).

Independently, a connection may be cut after a random number of bytes from
the server (``stream_reset``): that is how a WebSocket is reset mid-stream. A
cut closes with a FIN or, for a share of them (``hard``), with a TCP reset.

``counters`` records everything the proxy did; ``describe()`` (and the note
``replay_note`` adds to a failing test's exception) names the seed, so
``DURABLE_FAULT_SEED=<seed>`` replays it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import random
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, Self, TypeAlias
from urllib.parse import urlsplit

import anyio
import anyio.abc

__all__ = ["Counters", "FaultProxy", "Schedule", "fault_seed", "replay_note"]

Fault: TypeAlias = Literal["drop_before", "drop_after_request", "reset_mid_reply", "delay"]
FAULTS: Final[tuple[Fault, ...]] = ("drop_before", "drop_after_request", "reset_mid_reply", "delay")
READ_SIZE: Final = 65536
_STREAM_ERRORS: Final = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)


def fault_seed() -> int:
    """The seed of this run: ``$DURABLE_FAULT_SEED`` to replay one, else a fresh one."""
    given = os.environ.get("DURABLE_FAULT_SEED")
    if given:
        return int(given)
    return random.SystemRandom().randrange(2**32)


@dataclass(frozen=True, slots=True)
class Schedule:
    """What the proxy does, as probabilities (per exchange, or per connection)."""

    seed: int
    drop_before: float = 0.0
    drop_after_request: float = 0.0
    reset_mid_reply: float = 0.0
    delay: float = 0.0
    max_delay: float = 0.02
    stream_reset: float = 0.0
    """Probability that a connection is cut after some bytes from the server."""
    stream_reset_bytes: tuple[int, int] = (1, 4096)
    """Bounds of that number of bytes."""
    hard: float = 0.5
    """Share of cuts that send a TCP reset instead of a FIN."""

    def __post_init__(self) -> None:
        total = self.drop_before + self.drop_after_request + self.reset_mid_reply + self.delay
        if total > 1.0:
            raise ValueError(f"the fault probabilities add up to {total}, over 1")

    def pick(self, draw: float) -> Fault | None:
        """The fault for one exchange, from one uniform draw in [0, 1)."""
        bound = 0.0
        for kind in FAULTS:
            bound += float(getattr(self, kind))
            if draw < bound:
                return kind
        return None


@dataclass(slots=True)
class Counters:
    """What the proxy did since it started."""

    connections: int = 0
    exchanges: int = 0
    drop_before: int = 0
    drop_after_request: int = 0
    reset_mid_reply: int = 0
    delay: int = 0
    stream_resets: int = 0
    hard_resets: int = 0
    upstream_refused: int = 0
    bytes_up: int = 0
    bytes_down: int = 0

    @property
    def dropped(self) -> int:
        """Connections the proxy broke on purpose (delays not included)."""
        return (
            self.drop_before + self.drop_after_request + self.reset_mid_reply + self.stream_resets
        )

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream`` (a URL), injecting faults.

    Use it as an async context manager in the test's own event loop (asyncio or
    trio); ``url`` is the address to point a client at. Set ``enabled`` to
    False to pass everything through untouched (the schedule keeps drawing, so
    the faults of later connections do not shift).
    """

    def __init__(self, upstream: str, schedule: Schedule) -> None:
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"the upstream needs a host and a port: {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self.schedule = schedule
        self.counters = Counters()
        self.enabled = True
        self.url = ""
        self._ids = itertools.count()
        self._links: set[_Link] = set()
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    @property
    def seed(self) -> int:
        return self.schedule.seed

    def describe(self) -> str:
        """The seed and the counters, for failure messages."""
        return (
            f"fault seed {self.seed} (replay: DURABLE_FAULT_SEED={self.seed}); "
            f"proxy counters {self.counters.as_dict()}"
        )

    @property
    def open_connections(self) -> int:
        return len(self._links)

    async def cut_all(self) -> int:
        """Close every open connection now (with a FIN); returns how many."""
        links = list(self._links)
        for link in links:
            await link.close(hard=False)
        return len(links)

    async def __aenter__(self) -> Self:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self.url = f"http://127.0.0.1:{port}"
        self._listener = listener
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(listener.serve, self._serve_one)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        if task_group is not None:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
        for link in list(self._links):
            await link.close(hard=False)
        if self._listener is not None:
            await self._listener.aclose()

    async def _serve_one(self, client: anyio.abc.SocketStream) -> None:
        index = next(self._ids)
        rng = random.Random(f"{self.schedule.seed}:{index}")
        self.counters.connections += 1
        try:
            upstream = await anyio.connect_tcp(self.upstream_host, self.upstream_port)
        except OSError:
            self.counters.upstream_refused += 1
            await _close(client, hard=True)
            return
        link = _Link(self, rng, client, upstream)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)
            await link.close(hard=False)


@dataclass(slots=True)
class _Exchange:
    fault: Fault | None
    hard: bool
    amount: float  # the delay's share of max_delay, or where a reply is cut


@dataclass(eq=False, slots=True)
class _Link:
    """One proxied connection: two pumps and the schedule of its exchanges."""

    proxy: FaultProxy
    rng: random.Random
    client: anyio.abc.SocketStream
    upstream: anyio.abc.SocketStream
    server_spoke: bool = True
    exchange: _Exchange | None = None
    reply_started: bool = False
    down_budget: int | None = None
    cut_hard: bool = False
    closed: bool = False
    cancel: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    def __post_init__(self) -> None:
        schedule = self.proxy.schedule
        # Always the same draws, in the same order, whether or not they are used.
        cut = self.rng.random()
        budget = self.rng.randint(*schedule.stream_reset_bytes)
        hard = self.rng.random()
        if cut < schedule.stream_reset:
            self.down_budget = budget
            self.cut_hard = hard < schedule.hard

    async def run(self) -> None:
        with self.cancel:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._pump_up, tg)
                tg.start_soon(self._pump_down, tg)

    async def close(self, *, hard: bool) -> None:
        if self.closed:
            return
        self.closed = True
        await _close(self.client, hard=hard)
        await _close(self.upstream, hard=hard)
        self.cancel.cancel()

    async def _fault(self, kind: Fault | Literal["stream_resets"], *, hard: bool) -> None:
        counters = self.proxy.counters
        setattr(counters, kind, getattr(counters, kind) + 1)
        counters.hard_resets += hard
        await self.close(hard=hard)

    def _next_exchange(self) -> _Exchange:
        schedule = self.proxy.schedule
        draw, hard, amount = self.rng.random(), self.rng.random(), self.rng.random()
        fault = schedule.pick(draw) if self.proxy.enabled else None
        self.proxy.counters.exchanges += 1
        return _Exchange(fault, hard < schedule.hard, amount)

    async def _pump_up(self, tg: anyio.abc.TaskGroup) -> None:
        counters = self.proxy.counters
        try:
            while True:
                chunk = await self.client.receive(READ_SIZE)
                if self.server_spoke:
                    self.server_spoke = False
                    self.reply_started = False
                    self.exchange = exchange = self._next_exchange()
                    if exchange.fault == "drop_before":
                        await self._fault("drop_before", hard=exchange.hard)
                        return
                    if exchange.fault == "delay":
                        counters.delay += 1
                        await anyio.sleep(exchange.amount * self.proxy.schedule.max_delay)
                counters.bytes_up += len(chunk)
                await self.upstream.send(chunk)
        except _STREAM_ERRORS:
            pass
        tg.cancel_scope.cancel()

    async def _pump_down(self, tg: anyio.abc.TaskGroup) -> None:
        counters = self.proxy.counters
        try:
            while True:
                chunk = await self.upstream.receive(READ_SIZE)
                self.server_spoke = True
                exchange = self.exchange
                if exchange is not None and not self.reply_started:
                    self.reply_started = True
                    if exchange.fault == "drop_after_request":
                        await self._fault("drop_after_request", hard=exchange.hard)
                        return
                    if exchange.fault == "reset_mid_reply":
                        keep = int(exchange.amount * len(chunk))
                        if keep:
                            await self.client.send(chunk[:keep])
                            counters.bytes_down += keep
                        await self._fault("reset_mid_reply", hard=exchange.hard)
                        return
                if self.down_budget is not None and self.proxy.enabled:
                    if len(chunk) >= self.down_budget:
                        keep = self.down_budget
                        if keep:
                            await self.client.send(chunk[:keep])
                            counters.bytes_down += keep
                        await self._fault("stream_resets", hard=self.cut_hard)
                        return
                    self.down_budget -= len(chunk)
                counters.bytes_down += len(chunk)
                await self.client.send(chunk)
        except _STREAM_ERRORS:
            pass
        tg.cancel_scope.cancel()


_LINGER_RESET: Final = struct.pack("ii", 1, 0)


async def _close(stream: anyio.abc.SocketStream, *, hard: bool) -> None:
    """Close ``stream`` for good: with a FIN, or with a TCP reset (``hard``).

    Shielded, so that a cancelled caller still closes the socket.
    """
    with anyio.CancelScope(shield=True):
        if hard:
            with contextlib.suppress(OSError):
                raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        with contextlib.suppress(*_STREAM_ERRORS):
            await stream.aclose()


@contextlib.contextmanager
def replay_note(*proxies: FaultProxy) -> Iterator[None]:
    """Add each proxy's seed and counters to any exception raised inside."""
    try:
        yield
    except BaseException as error:
        for proxy in proxies:
            error.add_note(proxy.describe())
        raise
