"""Where the TypeScript library is: inside the installed package, or in a source checkout."""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["library_dir"]

_PACKAGE: Final = Path(__file__).resolve().parents[1]


def library_dir() -> Path:
    """The folder of the TypeScript library (an npm package named ``cloudflare-durable``).

    A wheel ships it as ``cloudflare_durable/_worker``; a source checkout
    (an editable install) has it in ``worker/lib``.
    """
    for candidate in (_PACKAGE / "_worker", _PACKAGE.parents[1] / "worker" / "lib"):
        if (candidate / "package.json").is_file() and (candidate / "src" / "index.ts").is_file():
            return candidate
    raise FileNotFoundError(
        "the TypeScript library of cloudflare-durable is missing from this installation"
    )
