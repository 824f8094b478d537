"""The browser module (``worker/lib/browser/durable.js``): strict TypeScript checks its
JSDoc types, and its declarations (``durable.d.ts``) are what tsc makes of them. Its
behaviour is tested in Chromium by ``tests/test_live_auction.py``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, worker_available

BROWSER = ROOT / "worker" / "lib" / "browser"
TSC = ROOT / "worker" / "node_modules" / ".bin" / "tsc"


def test_the_module_typechecks_and_its_declarations_are_current(tmp_path: Path) -> None:
    if not worker_available():
        pytest.skip("Node dependencies of worker/ are not installed (npm ci)")
    result = subprocess.run(
        [str(TSC), "-p", str(BROWSER), "--outDir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    made = (tmp_path / "durable.d.ts").read_text()
    assert made == (BROWSER / "durable.d.ts").read_text(), (
        "durable.d.ts is stale: run `npx tsc -p lib/browser` in worker/"
    )
