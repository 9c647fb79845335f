"""Writing generated files: atomically, and never over a file that symbp did not write."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from symbp.errors import OutputError


def written_by_symbp(path: Path, marker: str) -> bool:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return marker in head


def write_atomically(path: Path, text: str, *, marker: str, force: bool = False) -> None:
    """Writes via a temporary file in the same folder and a rename, so readers never see half a file."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give a file path with -o")
    if path.exists() and not force and not written_by_symbp(path, marker):
        raise OutputError(f"{path}: exists and was not written by symbp; choose another path or pass --force")
    if not path.parent.exists():
        raise OutputError(f"{path.parent}: directory does not exist; create it first")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
