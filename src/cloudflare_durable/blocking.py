"""The async API from blocking code: scripts, Django or Flask views, a REPL.

::

    from cloudflare_durable import blocking

    n = blocking.run(Counter.get("c1").increment(1))        # an int
    for snapshot in blocking.iterate(Counter.get("c1").subscribe()):
        print(snapshot.value)

Everything runs on one background event loop per process (an anyio blocking
portal on a daemon thread), started at the first use and closed at interpreter
exit. Every call, from any thread, runs there, so the whole process shares one
default client: one connection pool to a server, or one embedded host on one
SQLite connection, whose state (even ``:memory:``) lasts from call to call.

Handles used outside any event loop once this module is imported (for instance
``handle.subscribe()`` before ``iterate``) resolve to that same default client.
Do not call these from code already running on that loop (a method body, or a
coroutine given to ``run``): await instead.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextvars
import sys
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterator
from typing import Any, Final, TypeVar, cast

import anyio
from anyio.from_thread import BlockingPortal

from . import _exceptions as exc
from ._client import DurableClient, close_default, default_client, provide_outside_loops

__all__ = ["iterate", "run"]

T = TypeVar("T")

_SHUTDOWN_TIMEOUT: Final = 10.0


class _Loop:
    """The background event loop: a thread running a blocking portal."""

    def __init__(self) -> None:
        ready: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()

        async def serve() -> None:
            async with BlockingPortal() as portal:
                ready.set_result(portal)
                await portal.sleep_until_stopped()

        def main() -> None:
            try:
                anyio.run(serve)
            except BaseException as error:  # reported to the thread that waits for it
                if not ready.done():
                    ready.set_exception(error)

        kwargs: dict[str, Any] = {}
        if sys.version_info >= (3, 14):  # a fresh context, not the starting thread's
            kwargs["context"] = contextvars.Context()
        self.thread = threading.Thread(
            target=main, name="cloudflare-durable-blocking", daemon=True, **kwargs
        )
        self.thread.start()
        self.portal = ready.result()

    def call(self, awaitable: Awaitable[T]) -> T:
        if threading.current_thread() is self.thread:
            if hasattr(awaitable, "close"):
                awaitable.close()  # it will never run: do not warn that it was not awaited
            raise exc.UsageError(
                "cloudflare_durable.blocking cannot be used from code running on its own "
                "event loop (a method body, or a coroutine given to blocking.run): await instead"
            )
        future = self.portal.start_task_soon(_await, awaitable)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # interrupted (Ctrl-C): stop the work on the loop too
            raise

    def close(self) -> None:
        try:
            self.portal.call(close_default)
            self.portal.call(self.portal.stop, True)
        except RuntimeError:
            pass  # the loop is already gone
        self.thread.join(_SHUTDOWN_TIMEOUT)


_lock = threading.Lock()
_loop: _Loop | None = None


def _get_loop() -> _Loop:
    global _loop
    loop = _loop
    if loop is not None:
        return loop
    with _lock:
        if _loop is None:
            _loop = _Loop()
            atexit.register(_shutdown)
        return _loop


def _shutdown() -> None:
    """Close the default client and stop the loop (at interpreter exit)."""
    global _loop
    with _lock:
        loop, _loop = _loop, None
    if loop is not None:
        loop.close()


async def _default_client() -> DurableClient:
    return default_client()


def _client_outside_loops() -> DurableClient:
    """The background loop's default client, for handles used outside any event loop
    (``handle.subscribe()`` resolves its client when called, before ``iterate``)."""
    return _get_loop().call(_default_client())


provide_outside_loops(_client_outside_loops)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def run(awaitable: Awaitable[T], /) -> T:
    """Wait for ``awaitable`` on the background loop and return its result.

    ``blocking.run(Counter.get("c1").increment(1))`` returns an ``int``;
    exceptions propagate as they are. Thread-safe: calls from several threads
    run concurrently on the loop.
    """
    return _get_loop().call(awaitable)


_END: Final = object()


async def _next(iterator: AsyncIterator[T]) -> T | object:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _END


def iterate(iterable: AsyncIterable[T], /) -> Iterator[T]:
    """Iterate ``iterable`` (a subscription, an event stream, an async generator) from
    blocking code. Each item is awaited on the background loop; leaving the ``for``
    loop (``break``, an exception) closes the async iterator and its connection."""
    loop = _get_loop()
    iterator = loop.call(_aiter(iterable))
    try:
        while True:
            item = loop.call(_next(iterator))
            if item is _END:
                return
            yield cast(T, item)
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None and _loop is loop:
            loop.call(aclose())


async def _aiter(iterable: AsyncIterable[T]) -> AsyncIterator[T]:
    return iterable.__aiter__()
