"""The ``durable`` command line (Click and Rich, from the ``server`` extra).

``main(argv)`` runs one command and returns its exit status; the console
script ``durable`` and ``python -m cloudflare_durable._cli`` call it. Each verb
lives in its own module and is added to the group in ``_app``, so new verbs
slot in without touching the others.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_MISSING_EXTRA = (
    "durable: the command line needs the server extra: pip install 'cloudflare-durable[server]'"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``durable`` with ``argv`` (default: the process's arguments); the exit status."""
    try:
        from ._app import run
    except ImportError as error:  # click or rich missing: the core install has no CLI
        if error.name not in ("click", "rich"):
            raise
        print(_MISSING_EXTRA, file=sys.stderr)
        return 2
    return run(argv)
