"""Writing generated files: atomically, and never over anything that symbp did not write.

Every command that writes calls ``claim_outputs`` with all of its outputs and inputs before it does any
work. An output is refused when it is not a regular file (directory, FIFO, device, socket, symbolic
link), when it is one of the command's inputs (same device and inode, so links and ``../`` paths are
caught; ``--force`` does not override this), when its folder is missing or not writable, or when it
exists and does not carry symbp's marker at the marker's place (unless ``--force``). Nothing here
opens a file that is not regular, so no check can block, and every marker is read with a bounded read.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO

from symbp.errors import OutputError
from symbp.render.latex.pdfinfo import pdf_creator

# Generated modules keep their marker right after a docstring of a few short lines; titles are capped.
_MODULE_HEAD_BYTES = 16 * 1024
_FIRST_LINE_BYTES = 4096
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_SOFTWARE = b"Software"
_ZIP_END_RECORD = b"PK\x05\x06"
_ZIP_END_SIZE = 22


class Marker:
    """How symbp recognises a file of one kind as its own, reading only the marker's place.

    The base class recognises nothing: an output without a marker never replaces an existing file
    unless forced.
    """

    def is_on(self, path: Path) -> bool:
        return False


NO_MARKER = Marker()


@dataclass(frozen=True)
class FirstLineMarker(Marker):
    """Text whose first line starts with the marker (LaTeX documents)."""

    text: str

    def is_on(self, path: Path) -> bool:
        with path.open("rb") as stream:
            line = stream.readline(_FIRST_LINE_BYTES)
        return _starts_with_word(line.decode("utf-8", errors="replace").rstrip("\r\n"), self.text)


@dataclass(frozen=True)
class ModuleMarker(Marker):
    """A Python module whose first comment, on the line right after its docstring, starts with the marker."""

    text: str

    def is_on(self, path: Path) -> bool:
        with path.open("rb") as stream:
            head = stream.read(_MODULE_HEAD_BYTES).decode("utf-8", errors="replace")
        tokens = tokenize.generate_tokens(io.StringIO(head).readline)
        try:
            docstring = next(tokens)
            if docstring.type != tokenize.STRING or docstring.start != (1, 0):
                return False
            for token in tokens:
                if token.type in (tokenize.NEWLINE, tokenize.NL):
                    continue
                return (token.type == tokenize.COMMENT and token.start == (docstring.end[0] + 1, 0)
                        and _starts_with_word(token.string, self.text))
        except (tokenize.TokenError, SyntaxError):
            return False
        return False


@dataclass(frozen=True)
class ZipCommentMarker(Marker):
    """A zip archive (NumPy's .npz) whose archive comment, at the very end of the file, is the marker."""

    comment: bytes

    def is_on(self, path: Path) -> bool:
        size = _ZIP_END_SIZE + len(self.comment)
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            if stream.tell() < size:
                return False
            stream.seek(-size, os.SEEK_END)
            tail = stream.read(size)
        return (tail[:4] == _ZIP_END_RECORD and struct.unpack("<H", tail[20:22])[0] == len(self.comment)
                and tail[22:] == self.comment)

    def stamp(self, data: bytes) -> bytes:
        """The archive with the marker as its comment."""
        buffer = io.BytesIO(data)
        with zipfile.ZipFile(buffer, "a") as archive:
            archive.comment = self.comment
        return buffer.getvalue()


@dataclass(frozen=True)
class PngSoftwareMarker(Marker):
    """A PNG whose first chunk after the header is a tEXt chunk ``Software`` naming symbp."""

    software: bytes

    def _chunk(self) -> bytes:
        body = _PNG_SOFTWARE + b"\0" + self.software
        return _png_chunk(b"tEXt", body)

    def is_on(self, path: Path) -> bool:
        wanted = _PNG_SIGNATURE + b"\0\0\0\x0dIHDR"
        chunk = self._chunk()
        with path.open("rb") as stream:
            head = stream.read(len(_PNG_SIGNATURE) + 25 + len(chunk))
        return head.startswith(wanted) and head[len(_PNG_SIGNATURE) + 25:] == chunk

    def stamp(self, data: bytes) -> bytes:
        """The picture with the marker right after IHDR, and no other Software text."""
        if not data.startswith(_PNG_SIGNATURE):
            raise ValueError("not a PNG image")
        chunks = []
        position = len(_PNG_SIGNATURE)
        while position < len(data):
            (length,) = struct.unpack(">I", data[position:position + 4])
            kind = data[position + 4:position + 8]
            end = position + 12 + length
            body = data[position + 8:position + 8 + length]
            if not (kind == b"tEXt" and body.split(b"\0", 1)[0] == _PNG_SOFTWARE):
                chunks.append(data[position:end])
            position = end
        return _PNG_SIGNATURE + chunks[0] + self._chunk() + b"".join(chunks[1:])


class _HeadReader(HTMLParser):
    """Reads the first element inside <head> and stops there."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.in_head = False
        self.first: tuple[str, dict[str, str]] | None = None

    def handle_starttag(self, tag, attrs):
        if self.first is not None:
            return
        if self.in_head:
            self.first = (tag, {name: value or "" for name, value in attrs})
        elif tag == "head":
            self.in_head = True
        elif tag != "html":
            self.first = ("", {})  # content before <head>: not symbp's layout

    handle_startendtag = handle_starttag


@dataclass(frozen=True)
class HtmlGeneratorMarker(Marker):
    """An HTML page whose first element in <head> is ``<meta name="generator">`` with the marker opening its content."""

    text: str

    def is_on(self, path: Path) -> bool:
        with path.open("rb") as stream:
            head = stream.read(_FIRST_LINE_BYTES).decode("utf-8", errors="replace")
        reader = _HeadReader()
        reader.feed(head)
        if reader.first is None:
            return False
        tag, attributes = reader.first
        return (tag == "meta" and attributes.get("name", "").lower() == "generator"
                and _starts_with_word(attributes.get("content", ""), self.text))


@dataclass(frozen=True)
class PdfCreatorMarker(Marker):
    """A PDF whose document information dictionary, found from the trailer, names symbp as /Creator."""

    prefix: bytes

    def is_on(self, path: Path) -> bool:
        creator = pdf_creator(path)
        return creator is not None and creator.startswith(self.prefix)


def _starts_with_word(line: str, marker: str) -> bool:
    return line == marker or line.startswith(marker + " ")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@dataclass(frozen=True)
class Output:
    """A file a command will write, and how to tell a previous one of symbp's from someone else's."""

    path: Path
    marker: Marker


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a special file"


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def check_folder_for(path: Path) -> None:
    """OutputError with one line unless ``path``'s folder exists, is a directory and is writable."""
    _check_folder(Path(path))


def _check_folder(path: Path) -> None:
    folder = path.parent
    try:
        status = os.stat(folder)
    except FileNotFoundError:
        raise OutputError(f"{folder}: directory does not exist; create it first or choose another path for {path}") \
            from None
    except NotADirectoryError:
        raise OutputError(f"{folder}: is not a directory (a part of it is a file); choose another path for {path}") \
            from None
    except OSError as error:
        raise OutputError(f"{folder}: directory cannot be reached ({error.strerror}); choose another path for {path}") \
            from None
    if not stat.S_ISDIR(status.st_mode):
        kind = _kind(status.st_mode)
        raise OutputError(f"{folder}: is not a directory (it is {kind}); choose another path for {path}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: directory is not writable; choose another path for {path} or fix its permissions")


def _check_existing(output: Output, inputs: dict[tuple[int, int], Path], *, force: bool) -> None:
    path = output.path
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise OutputError(f"{path}: cannot be examined ({error.strerror}); choose another path") from None
    source = inputs.get(_identity(path))
    if source is not None:
        same = "" if Path(source) == path else f" ({source})"
        raise OutputError(f"{path}: is one of this command's inputs{same}; write the output to another path")
    if not stat.S_ISREG(status.st_mode):
        raise OutputError(f"{path}: is {_kind(status.st_mode)}; symbp writes only regular files, choose another path")
    if force:
        return
    try:
        ours = output.marker.is_on(path)
    except OSError:
        ours = False
    if not ours:
        raise OutputError(f"{path}: exists and was not written by symbp; choose another path or pass --force")


def claim_outputs(outputs: Iterable[Output], *, inputs: Iterable[str | os.PathLike] = (), force: bool = False) -> None:
    """Checks every output before any work is done; OutputError with one line for the first that is refused."""
    outputs = [Output(Path(output.path), output.marker) for output in outputs]
    known_inputs = {}
    for source in inputs:
        identity = _identity(Path(source))
        if identity is not None:
            known_inputs[identity] = Path(source)
    seen: set[tuple] = set()
    for output in outputs:
        _check_folder(output.path)
        # The same folder reached by two paths (a link, ../) is caught by its identity.
        key = (_identity(output.path.parent), os.path.normcase(output.path.name))
        if key in seen:
            raise OutputError(f"{output.path}: is given as two outputs; give each output its own path")
        seen.add(key)
        _check_existing(output, known_inputs, force=force)
    present = [identity for identity in map(_identity, (output.path for output in outputs)) if identity]
    if len(set(present)) != len(present):
        raise OutputError(f"{outputs[0].path}: two outputs name the same file; give each output its own path")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _publish(temporary: str, path: Path) -> None:
    """Moves a finished temporary file into place with the permissions a plain open() would give."""
    # mkstemp creates files readable by their owner only.
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, path)


def _write_via_temporary(path: Path, write: Callable[[BinaryIO], None]) -> None:
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise OutputError(f"{path.parent}: directory is not writable; choose another path for {path}") from None
        raise
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        _publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, text: str, *, marker: Marker, force: bool = False) -> None:
    """Writes text via a temporary file in the same folder and a rename, so readers never see half a file.

    The output is checked again just before the rename's temporary file is made, in case it changed
    since the command claimed it.
    """
    path = Path(path)
    claim_outputs([Output(path, marker)], force=force)
    data = text.encode("utf-8")
    _write_via_temporary(path, lambda stream: stream.write(data))


def write_binary_atomically(path: Path, write: Callable[[BinaryIO], None], *, marker: Marker = NO_MARKER,
                            force: bool = False) -> None:
    """Calls ``write`` on an in-memory buffer, puts the marker in, and renames a temporary file into place.

    A failure part-way leaves no file behind and never a truncated one at ``path``.
    """
    path = Path(path)
    claim_outputs([Output(path, marker)], force=force)
    buffer = io.BytesIO()
    write(buffer)
    data = buffer.getvalue()
    stamp = getattr(marker, "stamp", None)
    if stamp is not None:
        data = stamp(data)
    _write_via_temporary(path, lambda stream: stream.write(data))


# The markers of symbp's binary outputs; the writers above put them in place.
NPZ_MARKER = ZipCommentMarker(b"symbp parameters")
PNG_MARKER = PngSoftwareMarker(b"symbp")
