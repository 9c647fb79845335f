"""The /Creator of a PDF's document information dictionary, found from the trailer with bounded reads.

A PDF ends with ``startxref OFFSET %%EOF``. At OFFSET is either a classic ``xref`` table followed by
a ``trailer`` dictionary, or (PDF 1.5 and later, as pdfTeX writes by default) a cross-reference
stream whose dictionary is the trailer. The trailer's ``/Info N 0 R`` names the information
dictionary; the cross-reference says where object N is, possibly inside a compressed object stream.
Only those places are read, each with a capped read, so a large or hostile file costs little.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import BinaryIO

_TAIL_BYTES = 1024
_OBJECT_BYTES = 64 * 1024
_STREAM_BYTES = 4 * 1024 * 1024

_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
_INFO = re.compile(rb"/Info\s+(\d+)\s+(\d+)\s+R")
_OBJECT_HEAD = re.compile(rb"\s*(\d+)\s+(\d+)\s+obj\s*")
_CREATOR = re.compile(rb"/Creator\s*\(((?:[^()\\]|\\.)*)\)", re.DOTALL)


def _read_at(stream: BinaryIO, offset: int, size: int) -> bytes:
    stream.seek(offset)
    return stream.read(size)


def _dictionary(data: bytes, start: int = 0) -> bytes | None:
    """The text of the dictionary ``<< ... >>`` that opens at ``start``, nested ones included."""
    if data[start:start + 2] != b"<<":
        return None
    depth = 0
    position = start
    while position < len(data) - 1:
        pair = data[position:position + 2]
        if pair == b"<<":
            depth += 1
            position += 2
        elif pair == b">>":
            depth -= 1
            position += 2
            if depth == 0:
                return data[start:position]
        else:
            position += 1
    return None


def _number(dictionary: bytes, key: bytes) -> int | None:
    found = re.search(rb"/" + key + rb"\s+(\d+)", dictionary)
    return int(found.group(1)) if found else None


def _stream_data(stream: BinaryIO, offset: int) -> tuple[bytes, bytes] | None:
    """The dictionary and the decoded data of the stream object at ``offset``."""
    head = _read_at(stream, offset, _OBJECT_BYTES)
    opened = _OBJECT_HEAD.match(head)
    if not opened:
        return None
    dictionary = _dictionary(head, opened.end())
    length = _number(dictionary or b"", b"Length")
    if dictionary is None or length is None or length > _STREAM_BYTES:
        return None
    keyword = head.find(b"stream", opened.end() + len(dictionary))
    if keyword < 0:
        return None
    begin = keyword + len(b"stream")
    begin += 2 if head[begin:begin + 2] == b"\r\n" else 1
    raw = _read_at(stream, offset + begin, length)
    if b"/FlateDecode" not in dictionary:
        return dictionary, raw
    decoder = zlib.decompressobj()
    try:
        data = decoder.decompress(raw, _STREAM_BYTES)
    except zlib.error:
        return None
    return dictionary, data


def _xref_stream_entry(dictionary: bytes, data: bytes, number: int) -> tuple[int, int, int] | None:
    widths = re.search(rb"/W\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s*\]", dictionary)
    if not widths:
        return None
    sizes = [int(width) for width in widths.groups()]
    index = re.search(rb"/Index\s*\[([\d\s]*)\]", dictionary)
    if index:
        values = [int(value) for value in index.group(1).split()]
        ranges = list(zip(values[::2], values[1::2], strict=False))
    else:
        ranges = [(0, _number(dictionary, b"Size") or 0)]
    row = sum(sizes)
    position = 0
    for first, count in ranges:
        if first <= number < first + count:
            at = (position + number - first) * row
            entry = data[at:at + row]
            if len(entry) < row:
                return None
            fields, cursor = [], 0
            for size in sizes:
                fields.append(int.from_bytes(entry[cursor:cursor + size], "big") if size else 1)
                cursor += size
            return fields[0], fields[1], fields[2]
        position += count
    return None


def _classic_entry(stream: BinaryIO, offset: int, number: int) -> tuple[tuple[int, int, int] | None, bytes | None]:
    """The entry for ``number`` in a classic xref table at ``offset``, and the trailer dictionary after it."""
    text = _read_at(stream, offset, _OBJECT_BYTES)
    entry = None
    position = len(b"xref")
    while True:
        section = re.compile(rb"\s*(\d+)\s+(\d+)[ \t]*\r?\n").match(text, position)
        if not section:
            break
        first, count = int(section.group(1)), int(section.group(2))
        position = section.end()
        if first <= number < first + count:
            row = text[position + (number - first) * 20:position + (number - first) * 20 + 18].split()
            if len(row) == 3 and row[2] == b"n":
                entry = (1, int(row[0]), int(row[1]))
        position += count * 20
    trailer = text.find(b"trailer", position)
    found = _dictionary(text, text.find(b"<<", trailer)) if trailer >= 0 else None
    return entry, found


def _info_object(stream: BinaryIO, size: int) -> bytes | None:
    tail = _read_at(stream, max(0, size - _TAIL_BYTES), _TAIL_BYTES)
    found = _STARTXREF.search(tail)
    if not found or int(found.group(1)) >= size:
        return None
    offset = int(found.group(1))
    if _read_at(stream, offset, 4) == b"xref":
        _, trailer = _classic_entry(stream, offset, 0)
        info = _INFO.search(trailer or b"")
        if not info:
            return None
        entry, _ = _classic_entry(stream, offset, int(info.group(1)))
    else:
        xref = _stream_data(stream, offset)
        if xref is None:
            return None
        info = _INFO.search(xref[0])
        if not info:
            return None
        entry = _xref_stream_entry(xref[0], xref[1], int(info.group(1)))
    if entry is None:
        return None
    kind, where, index = entry
    if kind == 1:
        text = _read_at(stream, where, _OBJECT_BYTES)
        opened = _OBJECT_HEAD.match(text)
        return _dictionary(text, opened.end()) if opened else None
    if kind == 2 and int(info.group(1)) != where:
        return _from_object_stream(stream, offset, where, index, int(info.group(1)))
    return None


def _from_object_stream(stream: BinaryIO, xref_offset: int, container: int, index: int, number: int) -> bytes | None:
    xref = _stream_data(stream, xref_offset)
    entry = _xref_stream_entry(xref[0], xref[1], container) if xref else None
    if entry is None or entry[0] != 1:
        return None
    contained = _stream_data(stream, entry[1])
    if contained is None:
        return None
    dictionary, data = contained
    count, first = _number(dictionary, b"N"), _number(dictionary, b"First")
    if count is None or first is None or index >= count:
        return None
    pairs = data[:first].split()
    if len(pairs) < 2 * count or int(pairs[2 * index]) != number:
        return None
    start = first + int(pairs[2 * index + 1])
    return _dictionary(data, start + len(data[start:]) - len(data[start:].lstrip()))


def pdf_creator(path: Path) -> bytes | None:
    """The /Creator string of the PDF's information dictionary, or None when there is none to be found."""
    with Path(path).open("rb") as stream:
        stream.seek(0, 2)
        size = stream.tell()
        try:
            info = _info_object(stream, size)
        except (ValueError, IndexError, OverflowError):
            return None
    if info is None:
        return None
    creator = _CREATOR.search(info)
    return creator.group(1) if creator else None
