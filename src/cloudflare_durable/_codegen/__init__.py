"""Code generation from Python models: TypeScript for the Worker, and Worker projects."""

from __future__ import annotations

from pathlib import Path

from .library import library_dir
from .typescript import GENERATED_MARK, Naming, UnsupportedSchemaError, generate, namings

__all__ = [
    "GENERATED_MARK",
    "Naming",
    "UnsupportedSchemaError",
    "generate",
    "library_dir",
    "namings",
    "stale_files",
    "write_files",
]


def write_files(out: Path, files: dict[str, str]) -> list[Path]:
    """Write generated ``files`` into ``out`` and delete the generated files it no longer
    produces. Files without the generated mark are never touched. Returns what changed."""
    out.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for name, text in files.items():
        path = out / name
        if path.exists() and not _is_generated(path):
            raise FileExistsError(f"{path} exists and was not generated: move it out of {out}")
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in stale_files(out, files):
        path.unlink()
        changed.append(path)
    return changed


def stale_files(out: Path, files: dict[str, str]) -> list[Path]:
    """Generated files in ``out`` that ``files`` no longer contains."""
    if not out.is_dir():
        return []
    return sorted(
        path for path in out.glob("*.ts") if path.name not in files and _is_generated(path)
    )


def _is_generated(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        return handle.readline().startswith(GENERATED_MARK)
