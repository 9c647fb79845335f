"""Claiming every output before any work, then writing through symbp.output, each file with its marker.

LaTeX, PDF, zip packages, XML, HTML and Python files carry symbp's marker at a fixed place and are
replaced when they carry it; CSV and JSON files cannot carry one, so an existing one is replaced only
with ``--force``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from symbp.errors import OutputError
from symbp.output import (
    NO_MARKER,
    FirstLineMarker,
    HtmlGeneratorMarker,
    Marker,
    Output,
    ZipCommentMarker,
    check_folder_for,
    claim_outputs,
    write_atomically,
    write_binary_atomically,
)
from symbp.render.latex.document import MARKER as DOCUMENT_MARKER
from symbp.render.latex.tex import PDF_MARKER

# Opens the comment that marks XML, HTML and Python outputs as symbp's.
MARKER = "symbp-generated"
_FIRST_LINES_BYTES = 4096


@dataclass(frozen=True)
class XmlCommentMarker(Marker):
    """An XML file whose comment right after the XML declaration (its second line) starts with the marker."""

    text: str

    def is_on(self, path: Path) -> bool:
        with path.open("rb") as stream:
            declaration = stream.readline(_FIRST_LINES_BYTES)
            comment = stream.readline(_FIRST_LINES_BYTES)
        return declaration.startswith(b"<?xml") and comment.decode("utf-8", "replace").startswith(self.text)


@dataclass(frozen=True)
class EitherMarker(Marker):
    """A file that carries any one of the markers (PrairieLearn's question.html or a worksheet's page)."""

    markers: tuple[Marker, ...]

    def is_on(self, path: Path) -> bool:
        return any(marker.is_on(path) for marker in self.markers)


_MARKERS: dict[str, Marker] = {
    ".tex": FirstLineMarker(DOCUMENT_MARKER),
    ".pdf": PDF_MARKER,
    ".zip": ZipCommentMarker(b"symbp package"),
    ".xml": XmlCommentMarker(f"<!-- {MARKER}:"),
    ".html": EitherMarker((FirstLineMarker(f"<!-- {MARKER}:"), HtmlGeneratorMarker("symbp-generated-page"))),
    ".py": FirstLineMarker(f"# {MARKER}:"),
}


def marker_for(path: Path) -> Marker:
    return _MARKERS.get(Path(path).suffix, NO_MARKER)


def _existing_ancestor(path: Path) -> Path:
    return next((folder for folder in Path(path).parents if folder.exists()), Path("."))


def claim(paths, *, inputs=(), force: bool) -> None:
    """Fails, before anything is written, when any of ``paths`` could not or should not be written.

    Outputs in folders this run will create cannot replace anything; for them the nearest existing
    folder must be a writable directory.
    """
    present, planned = [], []
    for path in map(Path, paths):
        (present if path.parent.is_dir() else planned).append(path)
    claim_outputs([Output(path, marker_for(path)) for path in present], inputs=inputs, force=force)
    for path in planned:
        ancestor = _existing_ancestor(path)
        # The first folder to be created must be creatable: its parent a writable directory.
        check_folder_for(ancestor / path.relative_to(ancestor).parts[0])


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
    write_atomically(Path(path), text, marker=marker_for(path), force=True)


def write_bytes(path: Path, data: bytes) -> None:
    write_binary_atomically(Path(path), lambda stream: stream.write(data), marker=marker_for(path), force=True)
