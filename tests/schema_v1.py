"""Version 1 of models whose stored state changes shape (``tests/schema_v2.py`` is
version 2). The test process imports only version 2; this module runs in a subprocess
(or in ``durable serve``), as an older deployment of the same application would.

``python tests/schema_v1.py write STORE`` stores one object of each model;
``python tests/schema_v1.py read STORE`` loads them and prints what happened.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from cloudflare_durable import DurableClient, DurableError, DurableModel, remote


class Shrink(DurableModel, name="test.Shrink"):
    """Version 2 removes ``legacy``."""

    kept: int = 0
    legacy: str = ""

    @remote
    async def bump(self) -> int:
        self.kept += 1
        return self.kept


class Rename(DurableModel, name="test.Rename"):
    """Version 2 calls ``title`` ``name``."""

    title: str = ""

    @remote
    async def describe(self) -> str:
        return self.title


class Retype(DurableModel, name="test.Retype"):
    """Version 2 keeps ``price`` in cents, as an integer."""

    price: str = "0.00"

    @remote
    async def describe(self) -> str:
        return self.price


STATES: dict[type[DurableModel], dict[str, Any]] = {
    Shrink: {"kept": 3, "legacy": "old"},
    Rename: {"title": "teapot"},
    Retype: {"price": "12.50"},
}


async def write(store: str) -> None:
    async with DurableClient(store=store) as client:
        for model, state in STATES.items():
            await client.create(model, "one", **state)
        await client.create(Retype, "broken", price="twelve")


async def read(store: str) -> None:
    async with DurableClient(store=store) as client:
        for model in STATES:
            try:
                print(model.__name__, (await client.get(model, "one").load()).model_dump())
            except DurableError as error:
                print(model.__name__, type(error).__name__, error.message, error.details)


if __name__ == "__main__":
    command, store = sys.argv[1], sys.argv[2]
    anyio.run(write if command == "write" else read, store)
