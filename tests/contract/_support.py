"""Shared helpers for the model-contract tests: the examples' schema document."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from cloudflare_durable._codegen.commands import document_of

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_MODULES = ("counter", "chat_room", "collaborative_document", "bank", "auction")


def examples_document() -> dict[str, Any]:
    """The schema document of the example modules (what worker/ serves)."""
    folder = str(ROOT / "examples")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return document_of([importlib.import_module(name) for name in EXAMPLE_MODULES])
