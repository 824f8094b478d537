"""Load, in small: ``benchmarks/bench_load.py`` for 3 seconds with 20 clients on 5
objects, against each server. No call fails, and every counter ends at exactly
the increments acknowledged on it. (The full run, 200 clients on 50 objects for
30 seconds, is a benchmark: ``python benchmarks/bench_load.py``.)
"""

from __future__ import annotations

import json
import subprocess
import sys

from ..conftest import ROOT
from .conftest import Kind


def test_load_smoke(kind: Kind) -> None:
    script = ROOT / "benchmarks" / "bench_load.py"
    argv = [sys.executable, str(script), "--seconds", "3", "--clients", "20", "--objects", "5"]
    done = subprocess.run(
        [*argv, "--servers", kind, "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["server"] == kind
    assert report["errors"] == 0, report["first_errors"]
    assert report["exact"], report
    assert report["calls"] > 100, report
