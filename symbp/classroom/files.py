"""Claiming every output before any work, then writing through symbp.output.

A file that exists is replaced only when it carries symbp's marker (LaTeX, XML, HTML, Python) or
``--force`` is given (CSV, JSON and zip files cannot carry a marker).
"""

from __future__ import annotations

from pathlib import Path

from symbp.errors import OutputError
from symbp.output import write_atomically, write_binary_atomically, written_by_symbp

MARKER = "symbp-generated"


def claim(paths, *, force: bool) -> None:
    """Fails, before anything is written, when any of ``paths`` could not or should not be written."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            raise OutputError(f"{path}: is a directory; choose another output folder with -o")
        if path.exists() and not path.is_file():
            raise OutputError(f"{path}: is not a regular file; choose another output folder with -o")
        if path.exists() and not force and not written_by_symbp(path, MARKER):
            raise OutputError(f"{path}: exists and was not written by symbp; choose another folder or pass --force")


def check_folder(folder: Path) -> None:
    """Fails before any work when ``folder`` could not hold the outputs."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is not a folder; give a folder with -o")
    if not folder.parent.exists():
        raise OutputError(f"{folder.parent}: directory does not exist; create it first")


def make_folder(folder: Path) -> None:
    check_folder(folder)
    Path(folder).mkdir(exist_ok=True)


def write_text(path: Path, text: str) -> None:
    """Writes a claimed file (``claim`` has already refused anything that must not be replaced)."""
    write_atomically(Path(path), text, marker=MARKER, force=True)


def write_bytes(path: Path, data: bytes) -> None:
    write_binary_atomically(Path(path), lambda stream: stream.write(data))
