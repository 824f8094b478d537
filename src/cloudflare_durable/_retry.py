"""Retries, backoff and deadlines: the one engine that requests, subscriptions and
RPC sessions share.

- :func:`backoff` yields jittered, capped exponential delays;
- :func:`deadline` bounds a block and raises our ``TimeoutError`` when it expires;
- :func:`retrying` runs one attempt after another while the failure is retryable;
- :class:`Backoff` paces a connection that keeps coming back (reset once it works).
"""

from __future__ import annotations

import builtins
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Final, TypeVar

import anyio

from . import _exceptions as exc

__all__ = ["MAX_BACKOFF", "Backoff", "backoff", "deadline", "retrying"]

T = TypeVar("T")

MAX_BACKOFF: Final = 30.0
"""The longest delay between two attempts, in seconds."""

logger = logging.getLogger("cloudflare_durable.retry")


def backoff(base: float, cap: float = MAX_BACKOFF) -> Iterator[float]:
    """Jittered, capped exponential delays: base, 2*base, 4*base... each within [d/2, d]."""
    for attempt in itertools.count():
        delay = min(cap, base * 2**attempt)
        yield delay / 2 + random.uniform(0, delay / 2)


class deadline:  # a function to its callers: ``with deadline(...)``
    """Fail the block with our ``TimeoutError`` if it takes longer than ``seconds``.

    ``what`` says what timed out; it is formatted only then. (A cancel scope used
    directly: anyio's ``fail_after`` nests two generator-based context managers,
    a tenth of a client's time in a profile of pipelined session calls.)
    """

    __slots__ = ("_scope", "_seconds", "_what")

    def __init__(self, seconds: float, what: object) -> None:
        self._seconds = seconds
        self._what = what
        self._scope = anyio.CancelScope(deadline=anyio.current_time() + seconds)

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        scope = self._scope
        scope.__exit__(kind, value, traceback)
        if scope.cancelled_caught:  # only its deadline cancels this scope
            raise exc.TimeoutError(f"{self._what}: no reply within {self._seconds:g} s") from (
                builtins.TimeoutError()
            )


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    retries: int,
    delay: float,
    within: float,
    what: object,
) -> T:
    """Run ``attempt``, each time within ``within`` seconds, until it succeeds, its
    failure is not retryable, or ``retries`` more attempts have failed. ``what`` says
    what is attempted, in messages (formatted only for them)."""
    delays = backoff(delay)
    for number in itertools.count():
        try:
            with deadline(within, what):
                return await attempt()
        except exc.DurableError as error:
            if not error.retryable or number >= retries:
                raise
            wait = next(delays)
            logger.info(
                "retrying %s after %s (attempt %d, in %.3f s)", what, error, number + 1, wait
            )
            await anyio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


class Backoff:
    """Delays between reconnections: growing while they fail, reset once one works."""

    def __init__(self, base: float) -> None:
        self._base = base
        self._delays: Iterator[float] | None = None

    def reset(self) -> None:
        self._delays = None

    async def wait(self, what: str, error: exc.DurableError) -> None:
        if self._delays is None:
            self._delays = backoff(self._base)
        delay = next(self._delays)
        logger.info("%s lost (%s); reconnecting in %.3f s", what, error, delay)
        await anyio.sleep(delay)
