"""Writing generated files: atomically, and never over a file that symbp did not write."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from symbp.errors import OutputError


def written_by_symbp(path: Path, marker: str) -> bool:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return marker in head


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _publish(temporary: str, path: Path) -> None:
    """Moves a finished temporary file into place with the permissions a plain open() would give."""
    # mkstemp creates files readable by their owner only.
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, path)


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
        _publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_writable(path: Path) -> None:
    """Fails before any work is done when ``path`` could not be written later."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give a file path")
    if not path.parent.exists():
        raise OutputError(f"{path.parent}: directory does not exist; create it first")


def write_binary_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Calls ``write`` on a temporary file beside ``path``, then renames it into place.

    A failure part-way leaves no file behind and never a truncated one at ``path``. Unlike
    ``write_atomically`` this replaces any existing file: it is for outputs the user named.
    """
    path = Path(path)
    check_writable(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        _publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
