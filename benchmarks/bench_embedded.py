"""Embedded host: ``await counter.increment(1)`` against the same work done by hand.

The baseline validates the argument with pydantic, updates a dict and commits one
SQLite transaction (same file settings as the host: WAL, synchronous=FULL). Both
run in the same process, on the same disk, interleaved in rounds, and the ratio
of medians is printed. Target: ratio <= 1.5.

    python benchmarks/bench_embedded.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import pydantic

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from counter import Counter

from cloudflare_durable import DurableClient


class IncrementArgs(pydantic.BaseModel):
    by: int = 1


class Baseline:
    """The same work by hand: validate, update a dict, commit one transaction."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, version INTEGER, state TEXT)")
        self.state = {"value": 0}
        self.version = 0

    def increment(self) -> None:
        args = IncrementArgs.model_validate({"by": 1})
        self.state["value"] += args.by
        self.version += 1
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "INSERT INTO t VALUES ('c', ?, ?) ON CONFLICT (k) DO UPDATE "
            "SET version = excluded.version, state = excluded.state",
            (self.version, json.dumps(self.state)),
        )
        self.db.execute("COMMIT")


async def measure(folder: Path, calls: int, chunk: int) -> tuple[list[float], list[float]]:
    """Alternate chunks of baseline and library calls, so machine noise hits both alike."""
    raw: list[float] = []
    mine: list[float] = []
    baseline = Baseline(folder / "raw.sqlite3")
    async with DurableClient(store=str(folder / "ours.sqlite3")) as client:
        counter = client.get(Counter, "bench")
        for _ in range(chunk):  # warm up both
            baseline.increment()
            await counter.increment(1)
        for _ in range(calls // chunk):
            for _ in range(chunk):
                start = time.perf_counter()
                baseline.increment()
                raw.append(time.perf_counter() - start)
            for _ in range(chunk):
                start = time.perf_counter()
                await counter.increment(1)
                mine.append(time.perf_counter() - start)
    baseline.db.close()
    return raw, mine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="durable-bench-"))
    raw, mine = anyio.run(measure, folder, args.calls, args.chunk)
    raw_median, our_median = statistics.median(raw), statistics.median(mine)
    print("embedded host, file store (WAL, synchronous=FULL), sequential increment(1)")
    print(f"  baseline (validate + dict + one SQLite commit): median {raw_median * 1e6:8.1f} us")
    print(f"  await counter.increment(1):                     median {our_median * 1e6:8.1f} us")
    print(f"  ratio: {our_median / raw_median:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
