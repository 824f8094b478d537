"""The test models the test Worker (worker/test/app) serves, from tests/models.py:
objects that call each other. Regenerate its code from the repository's root with

    durable codegen typescript worker/test/app/app_models.py --out worker/test/app/src/generated
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.models import Purse, Relay, Teller  # noqa: E402

__all__ = ["Purse", "Relay", "Teller"]
