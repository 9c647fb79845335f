"""Training data for a spec: its builtin data set, a CSV or NPZ file, or a folder of MNIST IDX files.

Whatever the source, the data are checked against the spec before any training starts (columns, finite
values, targets the loss can take), and every problem is one ``DataError`` line naming the row or array.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from symbp.data.datasets import (
    LIMIT_VARIABLE,
    Dataset,
    check_data_size,
    load_builtin,
    load_mnist,
    max_data_bytes,
    open_regular,
)
from symbp.errors import DataError
from symbp.registry.rules import loss_named
from symbp.spec.schema import Spec


def load_training_data(spec: Spec, data: str | Path | None = None) -> Dataset:
    """The data to train ``spec`` on: ``data`` when given, else what the spec's [data] table names."""
    if data is not None:
        dataset = load_data_path(Path(data), spec)
    else:
        dataset = _spec_data(spec)
    check_fits(spec, dataset)
    return dataset


def _spec_data(spec: Spec) -> Dataset:
    table = dict(spec.data)
    if "builtin" in table:
        return load_builtin(str(table["builtin"]))
    if "path" in table:
        path = Path(str(table["path"]))
        if not path.is_absolute() and spec.source not in ("<dict>", ""):
            path = Path(spec.source).parent / path
        return load_data_path(path, spec)
    if table.get("format") == "mnist":
        raise DataError(f"spec '{spec.name}' trains on MNIST, which cannot be bundled: give the folder holding "
                        "the four IDX files with --data DIR")
    raise DataError(f"spec '{spec.name}' names no data; give a .csv or .npz file (or an MNIST folder) with --data")


def shape_hint(spec: Spec) -> str:
    """For a message about the inputs' columns: how a spec with an input_shape reads them."""
    if not spec.input_shape:
        return ""
    return f"; input_shape {list(spec.input_shape)} is {spec.inputs} inputs a row, read row-major"


def load_data_path(path: Path, spec: Spec) -> Dataset:
    if path.is_dir():
        return load_mnist(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return load_csv(path, spec.inputs, spec.outputs)
        if suffix == ".npz":
            return load_npz(path, spec.inputs, spec.outputs)
    except DataError as error:
        if spec.input_shape and "the spec needs" in str(error):
            raise DataError(f"{error}{shape_hint(spec)}") from None
        raise
    raise DataError(f"{path}: unknown data file type {path.suffix!r}; give a .csv or .npz file, "
                    "or a folder of MNIST IDX files")


# --- CSV ----------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    # The text itself must fit under the limit too (it is held while parsed): no read goes past it.
    most = max_data_bytes()
    try:
        with open_regular(path) as stream:
            data = stream.read(most + 1)
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(data) > most:
        raise DataError(f"{path}: over {most:,} bytes of text, more than the data limit; "
                        f"set {LIMIT_VARIABLE} (in bytes) to allow more")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (bad byte at offset {error.start}); save the CSV as UTF-8") from None


def _csv_rows(path: Path, text: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text))
    rows = []
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as error:
        reason = str(error).split(" (")[0]
        raise DataError(f"{path}: line {max(reader.line_num, 1)} is not valid CSV ({reason}); "
                        "a data cell is one number") from None
    return rows


def _not_finite(where: str, places: list[str], values: list[float], total: int) -> DataError:
    """NaN or inf in the data, named where it is (the first few places) before any training blames the rate."""
    shown = ", ".join(f"{place} is {value}" for place, value in zip(places, values, strict=True))
    more = f" (and {total - len(places)} more)" if total > len(places) else ""
    return DataError(f"{where}: {shown}{more}; every value must be a finite number; fix the data before training")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def load_csv(path: Path, inputs: int, outputs: int) -> Dataset:
    """Rows of ``inputs`` features then ``outputs`` targets, or one class label 0..outputs-1 when outputs > 1.

    A first row that is not all numbers is taken as a header; blank lines are skipped.
    """
    rows = _csv_rows(path, _read_text(path))
    if rows and not all(_is_number(cell) for cell in rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path}: no data rows")
    width = len(rows[0][1])
    with_label = outputs > 1 and width == inputs + 1
    if width != inputs + outputs and not with_label:
        label_hint = f", or {inputs + 1} with a class label last" if outputs > 1 else ""
        raise DataError(f"{path}: line {rows[0][0]} has {width} columns; the spec needs {inputs + outputs} "
                        f"({inputs} inputs then {outputs} targets{label_hint})")
    check_data_size(str(path), len(rows) * width)
    table = np.empty((len(rows), width))
    for index, (line, row) in enumerate(rows):
        if len(row) != width:
            raise DataError(f"{path}: line {line} has {len(row)} columns, the first data line has {width}")
        for column, cell in enumerate(row):
            try:
                table[index, column] = float(cell)
            except ValueError:
                shown = "empty" if not cell.strip() else f"{cell.strip()[:20]!r}, not a number"
                raise DataError(f"{path}: line {line}, column {column + 1} is {shown}") from None
    bad = np.argwhere(~np.isfinite(table))
    if bad.size:
        places = [f"line {rows[index][0]}, column {column + 1}" for index, column in bad[:3]]
        raise _not_finite(str(path), places, [table[tuple(index)] for index in bad[:3]], len(bad))
    X = table[:, :inputs]
    if with_label:
        Y = _one_hot_labels(table[:, inputs], outputs, lambda i: f"{path}: line {rows[i][0]}")
    else:
        Y = table[:, inputs:]
    return Dataset(X, Y, description=f"{path.name}: {len(X)} rows")


# --- NPZ ----------------------------------------------------------------------------------------


def load_npz(path: Path, inputs: int, outputs: int) -> Dataset:
    """Arrays X and Y (and optionally X_test and Y_test); Y may hold class labels when outputs > 1."""
    try:
        with open_regular(path) as stream:
            _check_npz_sizes(path, stream)
            stream.seek(0)
            with np.load(stream, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        reason = str(error).splitlines()[0][:80] if str(error) else type(error).__name__
        raise DataError(f"{path}: not a readable .npz file ({reason})") from None
    missing = [name for name in ("X", "Y") if name not in arrays]
    if missing:
        found = ", ".join(sorted(arrays)) or "none"
        raise DataError(f"{path}: needs arrays named X and Y; missing {' and '.join(missing)} (found: {found})")
    if ("X_test" in arrays) != ("Y_test" in arrays):
        raise DataError(f"{path}: give X_test and Y_test together, or neither")
    parts = {}
    for x_name, y_name in (("X", "Y"), ("X_test", "Y_test")):
        if x_name in arrays:
            X = _matrix(arrays[x_name], inputs, f"{path}: {x_name}", "input")
            Y = _targets(arrays[y_name], outputs, f"{path}: {y_name}")
            if len(X) != len(Y):
                raise DataError(f"{path}: {x_name} has {len(X)} rows but {y_name} has {len(Y)}")
            parts[x_name], parts[y_name] = X, Y
    return Dataset(parts["X"], parts["Y"], parts.get("X_test"), parts.get("Y_test"),
                   description=f"{path.name}: {len(parts['X'])} rows")


def _check_npz_sizes(path: Path, stream) -> None:
    """Reads every array's header (its shape and type) and refuses the file before any array is loaded
    if together they are over the data limit, or if an array's header is not a NumPy header."""
    values = 0
    with zipfile.ZipFile(stream) as archive:
        for member in archive.infolist():
            if not member.filename.endswith(".npy"):
                continue
            with archive.open(member) as array_file:
                try:
                    version = np.lib.format.read_magic(array_file)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, _ = read_header(array_file)
                except (ValueError, SyntaxError, TypeError, EOFError) as error:
                    reason = str(error).splitlines()[0][:60] if str(error) else type(error).__name__
                    raise DataError(f"{path}: array {member.filename[:-4]!r} has a bad header ({reason})") from None
            values += math.prod(shape)
    check_data_size(str(path), values)


def _numeric(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where} has dtype {array.dtype}; it must hold numbers")
    array = array.astype(np.float64)
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        head, _, name = where.rpartition(": ")
        places = [f"{name}[{', '.join(str(int(i)) for i in index)}]" for index in bad[:3]]
        raise _not_finite(head or where, places, [array[tuple(index)] for index in bad[:3]], len(bad))
    return array


def _matrix(array: np.ndarray, columns: int, where: str, what: str) -> np.ndarray:
    array = _numeric(array, where)
    if array.ndim == 1 and columns == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != columns:
        raise DataError(f"{where} has shape {array.shape}; the spec needs (rows, {columns}), one column per {what}")
    if not len(array):
        raise DataError(f"{where} has no rows")
    return array


def _targets(array: np.ndarray, outputs: int, where: str) -> np.ndarray:
    if array.ndim == 1 and outputs > 1:
        labels = _numeric(array, where)
        return _one_hot_labels(labels, outputs, lambda i: f"{where}[{i}]")
    return _matrix(array, outputs, where, "output")


def _one_hot_labels(labels: np.ndarray, classes: int, where) -> np.ndarray:
    for index, label in enumerate(labels):
        if not float(label).is_integer():
            raise DataError(f"{where(index)}: label {label:g} is not a whole number; class labels are 0..{classes - 1}")
        if not 0 <= label < classes:
            raise DataError(f"{where(index)}: label {label:g} is outside 0..{classes - 1} "
                            f"(the spec has {classes} outputs)")
    return np.eye(classes)[labels.astype(np.int64)]


# --- fitting the spec ---------------------------------------------------------------------------


def check_fits(spec: Spec, data: Dataset) -> None:
    """Raises DataError unless the data have the spec's columns and targets its loss accepts."""
    for x_name, y_name, X, Y in (("X", "Y", data.X, data.Y), ("X_test", "Y_test", data.X_test, data.Y_test)):
        if X is None:
            continue
        if X.shape[1] != spec.inputs or Y.shape[1] != spec.outputs:
            raise DataError(f"spec '{spec.name}' has {spec.inputs} inputs and {spec.outputs} outputs, but the data "
                            f"have {X.shape[1]} input and {Y.shape[1]} target columns")
        if not len(X):
            raise DataError(f"the data's {x_name} has no rows")
        for name, array in ((x_name, X), (y_name, Y)):
            if not np.isfinite(array).all():
                raise DataError(f"the data's {name} holds NaN or infinite values; every value must be finite")
        _check_targets(spec, Y, y_name)


def _check_targets(spec: Spec, Y: np.ndarray, name: str) -> None:
    problem = loss_named(spec.loss.name).target_problem(Y, name)
    if problem:
        raise DataError(problem)


# --- what kind of targets -----------------------------------------------------------------------


def target_kind(Y: np.ndarray) -> str | None:
    """'one-hot' for class rows, 'binary' for a single 0/1 column, else None (a regression)."""
    if not np.isin(Y, (0.0, 1.0)).all():
        return None
    if Y.shape[1] == 1:
        return "binary"
    return "one-hot" if (Y.sum(axis=1) == 1).all() else None


def accuracy(prediction: np.ndarray, Y: np.ndarray) -> float:
    """The fraction classified right: largest output for one-hot rows, output above 1/2 for one 0/1 column."""
    if Y.shape[1] == 1:
        return float(np.mean((prediction[:, 0] > 0.5) == (Y[:, 0] > 0.5)))
    return float(np.mean(prediction.argmax(axis=1) == Y.argmax(axis=1)))

