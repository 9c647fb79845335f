"""Data too large to load: rows read from .npy files a chunk at a time, as Dask arrays.

Three layouts, each read where it lies:

- ``X.npy`` with ``--targets Y.npy``: two arrays with one row per sample, split into chunks of rows;
- ``DATA.npz`` written by ``numpy.savez`` (stored, not compressed): its arrays ``X`` and ``Y`` (and
  optionally ``X_test`` and ``Y_test``), read in place inside the archive;
- a folder of chunk files ``X_000.npy``, ``Y_000.npy``, ``X_001.npy``, ...: each pair one chunk.

A Dask task memory-maps just its chunk's rows (handing on the map itself when the file holds
float64, so that a mini-batch reads only its own rows' pages; else a float64 copy), so no array is
ever held whole, not even in the address space. Every file is checked before any
training: its header (dtype, shape, byte order, length) at once, its values (finite, targets the
loss can take) in one pass of Dask reductions.
"""

from __future__ import annotations

import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symbp.errors import DataError
from symbp.registry.rules import loss_named
from symbp.registry.targets import ROW_SUM_SLACK
from symbp.spec.schema import Spec

# A task's working memory when --chunk-rows is not given: small enough that one per thread fits in
# memory, large enough that Dask's bookkeeping per task costs nothing next to its arithmetic.
DEFAULT_CHUNK_BYTES = 64 * 2**20
# What a task holds per row besides the row itself: for each unit its pre-activation, its output and its error term.
ARRAYS_PER_UNIT = 3
CHUNK_FILE = re.compile(r"([XY])_(.+)\.npy")
ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then (skipped) up to the name and extra lengths
NUMERIC_KINDS = "biuf"


@dataclass(frozen=True)
class StoredRows:
    """Where an array's rows lie in a file: what a Dask task needs to read some of them.

    Indexing with a pair of slices (what dask.array.from_array does) memory-maps just those rows
    and returns them as float64: the map itself when the file holds native float64, else a copy
    converted from the file's dtype. A 1-D array reads as one column.
    """

    path: str
    offset: int  # of the first value, in bytes from the start of the file
    stored: str  # the file's dtype, e.g. '<f4'
    rows: int
    columns: int
    where: str  # how messages name the array, e.g. 'train.npz: X'

    dtype = np.dtype(np.float64)
    ndim = 2

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.columns)

    def __getitem__(self, index) -> np.ndarray:
        rows, columns = index if isinstance(index, tuple) else (index, slice(None))
        start, stop, step = rows.indices(self.rows)
        count = max(0, stop - start)
        if count == 0:
            return np.empty((0, self.columns))[:, columns]
        stored = np.dtype(self.stored)
        first = self.offset + start * self.columns * stored.itemsize
        mapped = np.memmap(self.path, dtype=stored, mode="r", offset=first, shape=(count, self.columns))
        if stored == np.float64 and stored.isnative:
            # The map itself: the tasks that use these rows read them from the page cache, and a
            # mini-batch's take touches only its own rows' pages. Dropped with the task's result.
            return mapped[::step, columns]
        try:
            return np.array(mapped[::step, columns], dtype=np.float64)
        finally:
            del mapped  # the map is let go as soon as the rows are copied out


@dataclass(frozen=True)
class ChunkedData:
    """Training data as Dask arrays of float64 rows (X: inputs, Y: targets), with what to call them."""

    X: object
    Y: object
    X_test: object | None = None
    Y_test: object | None = None
    description: str = ""


def require_dask():
    """dask.array, or one DataError line naming the extra that installs it."""
    try:
        import dask
        import dask.array
    except ImportError:
        raise DataError('--dask: Dask is not installed; install it with pip install "symbp[dask]"') from None
    return dask


def default_chunk_rows(spec: Spec) -> int:
    """Rows per chunk so that a task's float64 arrays (its rows, and each layer's) take about DEFAULT_CHUNK_BYTES."""
    per_row = spec.inputs + spec.outputs + ARRAYS_PER_UNIT * sum(layer.units for layer in spec.layers)
    return max(1, DEFAULT_CHUNK_BYTES // (8 * per_row))


def load_chunked_data(spec: Spec, data: str | Path | None, targets: str | Path | None = None, *,
                      chunk_rows: int | None = None) -> ChunkedData:
    """The data to train ``spec`` on as Dask arrays, checked against the spec; see the module's docstring."""
    require_dask()
    import dask.array as da

    if chunk_rows is not None and chunk_rows < 1:
        raise DataError(f"--chunk-rows: must be at least 1, got {chunk_rows}")
    rows_per_chunk = chunk_rows or default_chunk_rows(spec)
    if data is None:
        return _in_memory(spec, rows_per_chunk)
    path = Path(data)
    if targets is not None and path.suffix.lower() != ".npy":
        raise DataError(f"--targets: goes with --data X.npy (the inputs); {path} holds both, so leave --targets out")
    if path.is_dir():
        sources = _chunk_files(path)
        description = f"{path.name}: {len(sources['X'])} chunk files"
    elif not path.exists():
        raise DataError(f"{path}: no such file or folder")
    elif path.suffix.lower() == ".npy":
        if targets is None:
            raise DataError(f"--targets: {path} holds the inputs; give the targets' .npy file with --targets Y.npy")
        sources = {"X": [_npy_rows(path)], "Y": [_npy_rows(Path(targets))]}
        description = f"{path.name} and {Path(targets).name}"
    elif path.suffix.lower() == ".npz":
        sources = _npz_rows(path)
        description = path.name
    else:
        raise DataError(f"{path}: --dask reads .npy files: give X.npy with --targets Y.npy, an .npz written by "
                        "numpy.savez, or a folder of chunk files X_000.npy, Y_000.npy, ...")
    for name, pieces in sources.items():
        for piece in pieces:
            _check_columns(spec, name, piece)
    for x_name, y_name in (("X", "Y"), ("X_test", "Y_test")):
        if x_name in sources:
            _check_rows(sources[x_name], sources[y_name])
    chunked = {name: da.concatenate([da.from_array(piece, chunks=(rows_per_chunk, -1), name=_token(piece),
                                                   asarray=False) for piece in pieces])
               for name, pieces in sources.items()}
    _check_values(spec, chunked, sources)
    for name in [name for name in chunked if name.startswith("Y")]:
        if chunked[name].shape[1] != spec.outputs:  # class labels, checked above: one-hot rows from here on
            chunked[name] = chunked[name].map_blocks(_one_hot, spec.outputs, chunks=(chunked[name].chunks[0],
                                                                                     (spec.outputs,)))
    blocks = chunked["X"].numblocks[0]
    return ChunkedData(chunked["X"], chunked["Y"], chunked.get("X_test"), chunked.get("Y_test"),
                       description=f"{description}: {chunked['X'].shape[0]} rows in {blocks} "
                       f"chunk{'' if blocks == 1 else 's'}")


def _in_memory(spec: Spec, rows_per_chunk: int) -> ChunkedData:
    """The spec's own data (bundled or named in its [data] table), loaded as usual and split into chunks."""
    import dask.array as da

    from symbp.data.datafiles import load_training_data

    data = load_training_data(spec)
    chunked = [None if array is None else da.from_array(array, chunks=(rows_per_chunk, -1))
               for array in (data.X, data.Y, data.X_test, data.Y_test)]
    return ChunkedData(*chunked, description=f"{data.description or spec.name}: {len(data.X)} rows in "
                       f"{chunked[0].numblocks[0]} chunks")


def _token(piece: StoredRows) -> str:
    """A name for the piece's Dask array: the same file, place and shape give the same tasks."""
    from dask.base import tokenize

    return f"symbp-rows-{tokenize(piece.path, piece.offset, piece.stored, piece.rows, piece.columns)}"


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return (labels[:, :1] == np.arange(classes)).astype(np.float64)


# --- headers --------------------------------------------------------------------------------------


def _read_header(stream, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(stream)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return read(stream)
    except (ValueError, SyntaxError, TypeError, EOFError) as error:
        reason = str(error).splitlines()[0][:60] if str(error) else type(error).__name__
        raise DataError(f"{where}: not a NumPy .npy array ({reason}); write it with numpy.save") from None


def _rows_at(path: Path, offset: int, header, where: str) -> StoredRows:
    """The stored array's rows, after checking that it holds numbers in C order, in one or two dimensions."""
    shape, fortran, dtype = header
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise DataError(f"{where} has dtype {dtype}; it must hold numbers (e.g. float64 or float32)")
    if len(shape) not in (1, 2):
        raise DataError(f"{where} has shape {shape}; it must be (rows, columns), one row per sample")
    if fortran and len(shape) == 2 and shape[1] > 1:
        raise DataError(f"{where} is stored column by column (Fortran order); save it row by row with "
                        "numpy.save(path, numpy.ascontiguousarray(array))")
    rows, columns = shape[0], (shape[1] if len(shape) == 2 else 1)
    needed = offset + rows * columns * dtype.itemsize
    size = path.stat().st_size
    if size < needed:
        raise DataError(f"{where}: the file ends after {size:,} bytes, before its {rows:,} rows (which end at "
                        f"{needed:,}); it is truncated, write it again")
    return StoredRows(str(path.resolve()), offset, dtype.str, rows, columns, where)


def _npy_rows(path: Path, where: str | None = None) -> StoredRows:
    where = where or path.name
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; give a .npy file written by numpy.save")
    if path.suffix.lower() != ".npy":
        raise DataError(f"{path}: --targets takes a .npy file (written by numpy.save)")
    try:
        with open(path, "rb") as stream:
            header = _read_header(stream, where)
            offset = stream.tell()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    return _rows_at(path, offset, header, where)


def _npz_rows(path: Path) -> dict[str, list[StoredRows]]:
    """X and Y (and X_test and Y_test) inside an .npz, located by their zip headers and read in place."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable .npz file ({str(error)[:80] or type(error).__name__})") from None
    missing = [name for name in ("X", "Y") if name not in members]
    if missing:
        found = ", ".join(sorted(members)) or "none"
        raise DataError(f"{path}: needs arrays named X and Y; missing {' and '.join(missing)} (found: {found})")
    if ("X_test" in members) != ("Y_test" in members):
        raise DataError(f"{path}: give X_test and Y_test together, or neither")
    found = {}
    with open(path, "rb") as stream:
        for name in ("X", "Y", "X_test", "Y_test"):
            info = members.get(name)
            if info is None:
                continue
            where = f"{path.name}: {name}"
            if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 1:
                raise DataError(f"{where} is compressed, so it cannot be read a chunk at a time; write the file "
                                "with numpy.savez, not numpy.savez_compressed")
            stream.seek(info.header_offset)
            signature, name_length, extra_length = ZIP_LOCAL_HEADER.unpack(stream.read(ZIP_LOCAL_HEADER.size))
            if signature != b"PK\x03\x04":
                raise DataError(f"{where}: the archive's entry is damaged; write the file again with numpy.savez")
            stream.seek(info.header_offset + ZIP_LOCAL_HEADER.size + name_length + extra_length)
            header = _read_header(stream, where)
            found[name] = [_rows_at(path, stream.tell(), header, where)]
    return found


def _chunk_key(suffix: str):
    """Chunks in numeric order when numbered (2 before 10), else in the order of their names."""
    return (0, int(suffix), suffix) if suffix.isdigit() else (1, 0, suffix)


def _chunk_files(folder: Path) -> dict[str, list[StoredRows]]:
    try:
        names = sorted(entry.name for entry in folder.iterdir())
    except OSError as error:
        raise DataError(f"{folder}: cannot be read ({error.strerror or error})") from None
    found: dict[str, dict[str, str]] = {"X": {}, "Y": {}}
    for name in names:
        match = CHUNK_FILE.fullmatch(name)
        if match:
            found[match[1]][match[2]] = name
    if not found["X"] and not found["Y"]:
        raise DataError(f"{folder}: no chunk files; --dask reads a folder of pairs X_000.npy, Y_000.npy, "
                        "X_001.npy, ... (inputs and targets of each chunk)")
    for have, lack in (("X", "Y"), ("Y", "X")):
        alone = sorted(set(found[have]) - set(found[lack]), key=_chunk_key)
        if alone:
            raise DataError(f"{folder}: {found[have][alone[0]]} has no {lack}_{alone[0]}.npy; each chunk is a pair "
                            "of files, its inputs and its targets")
    order = sorted(found["X"], key=_chunk_key)
    return {name: [_npy_rows(folder / found[name][suffix], f"{folder.name}/{found[name][suffix]}")
                   for suffix in order] for name in "XY"}


# --- checks ---------------------------------------------------------------------------------------


def _check_columns(spec: Spec, name: str, piece: StoredRows) -> None:
    if name.startswith("X"):
        if piece.columns != spec.inputs:
            raise DataError(f"{piece.where} has {piece.columns} column{'' if piece.columns == 1 else 's'}; "
                            f"the spec needs (rows, {spec.inputs}), one column per input")
        return
    if piece.columns != spec.outputs and not (piece.columns == 1 and spec.outputs > 1):
        labels = f", or one column of class labels 0..{spec.outputs - 1}" if spec.outputs > 1 else ""
        raise DataError(f"{piece.where} has {piece.columns} columns; the spec needs (rows, {spec.outputs}), "
                        f"one column per output{labels}")


def _check_rows(inputs: list[StoredRows], targets: list[StoredRows]) -> None:
    for x, y in zip(inputs, targets, strict=True):
        if x.rows != y.rows:
            raise DataError(f"{x.where} has {x.rows:,} rows but {y.where} has {y.rows:,}; give each input row "
                            "its targets")
    if any(y.columns != targets[0].columns for y in targets):
        odd = next(y for y in targets if y.columns != targets[0].columns)
        raise DataError(f"{odd.where} has {odd.columns} columns but {targets[0].where} has {targets[0].columns}; "
                        "give every chunk's targets the same columns")
    if sum(x.rows for x in inputs) == 0:
        raise DataError(f"{inputs[0].where} has no rows")


def _check_values(spec: Spec, chunked: dict, pieces: dict[str, list[StoredRows]]) -> None:
    """One pass over the data: the first row, if any, that breaks each rule, named by file and row."""
    import dask
    import dask.array as da

    rules = []
    for name, array in chunked.items():
        rules.append((name, ~da.isfinite(array).all(axis=1), "holds NaN or infinite values; every value must be "
                      "a finite number; fix the data before training"))
        if not name.startswith("Y"):
            continue
        if array.shape[1] != spec.outputs:
            outside = (array[:, 0] != da.floor(array[:, 0])) | (array[:, 0] < 0) | (array[:, 0] >= spec.outputs)
            rules.append((name, outside, f"holds a class label that is not one of 0..{spec.outputs - 1} (the spec "
                          f"has {spec.outputs} outputs)"))
            continue
        # What the loss requires of its targets is the registry entry's; the checks run on the chunks, lazily.
        loss = loss_named(spec.loss.name)
        if loss.targets.bounded:
            rules.append((name, ((array < 0) | (array > 1)).any(axis=1),
                          f"has a target outside [0, 1]; {loss.requirement} needs targets between 0 and 1"))
        if loss.targets.rows_sum_to_one:
            rules.append((name, da.fabs(array.sum(axis=1) - 1.0) > ROW_SUM_SLACK,
                          f"has a target row that does not sum to 1; {loss.requirement} needs each target "
                          "row to be one-hot (or probabilities summing to 1)"))
    # On this machine's threads, named here: the data are checked before any cluster is reached, and Dask's default
    # scheduler may still be a distributed client that an earlier run in this process has closed.
    found = dask.compute(*[(broken.any(), da.argmax(broken)) for _, broken, _ in rules], scheduler="threads")
    for (name, _, problem), (any_broken, first) in zip(rules, found, strict=True):
        if any_broken:
            where, row = _place(pieces[name], int(first))
            raise DataError(f"{where}: row {row} {problem}")


def _place(pieces: list[StoredRows], row: int) -> tuple[str, int]:
    """The file (or array) and the row within it of a row of the data as a whole."""
    for piece in pieces:
        if row < piece.rows:
            return piece.where, row
        row -= piece.rows
    return pieces[-1].where, row
