"""Bundled data sets, an IDX (MNIST) reader and writer, and a loader for MNIST directories.

Every loader returns a :class:`Dataset` of float64 matrices: ``X`` is (samples, features) and
``Y`` is (samples, outputs); ``X_test``/``Y_test`` are set when the data set has a held-out split.
"""

from __future__ import annotations

import difflib
import gzip
import io
import math
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import BinaryIO

import numpy as np

from symbp.errors import DataError


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays elementwise has no single truth value
class Dataset:
    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray | None = None
    Y_test: np.ndarray | None = None
    description: str = ""

    def __post_init__(self) -> None:
        _check_pair("X", self.X, "Y", self.Y)
        if (self.X_test is None) != (self.Y_test is None):
            raise DataError("X_test and Y_test must be given together")
        if self.X_test is not None:
            _check_pair("X_test", self.X_test, "Y_test", self.Y_test)


def _check_pair(x_name: str, x: np.ndarray, y_name: str, y: np.ndarray) -> None:
    if x.ndim != 2 or y.ndim != 2:
        raise DataError(f"{x_name} and {y_name} must be 2-D, got shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{x_name} has {len(x)} rows but {y_name} has {len(y)}")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[np.asarray(labels, dtype=np.int64)]


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test), each sorted, with ``test_fraction`` of every class held out."""
    rng = np.random.default_rng(seed)
    test_parts = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test_parts.append(members[: round(test_fraction * len(members))])
    test = np.sort(np.concatenate(test_parts))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def _standardise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (values - mean) / std


# --- builtins -----------------------------------------------------------------------------------


def actuarial_lab() -> Dataset:
    # RandomState(0) draws exactly what the lab's `np.random.seed(0); np.random.randn(...)` drew,
    # without disturbing the caller's global random state.
    X = np.random.RandomState(0).randn(10000, 3)
    W1 = np.array([[0.25, 0.75], [0.5, 0.5], [0.75, 0.25]])
    W2 = np.array([[2.0], [3.0]])
    Y = np.exp(_sigmoid(X @ W1) @ W2)
    return Dataset(X, Y, description="10000 standard normal inputs, Y = exp(sigmoid(X @ W1) @ W2) (actuarial lab)")


def actuarial_lab_keras() -> Dataset:
    # The lab's Keras model ended up with two output units (its Constant initialiser broadcast the 1 x 2
    # value to a 2 x 2 kernel), and Keras's MSE then compared both with the one target column.
    lab = actuarial_lab()
    return Dataset(lab.X, np.hstack([lab.Y, lab.Y]),
                   description="the actuarial lab's data with Y repeated in two columns, as its Keras model saw it")


def linear_regression() -> Dataset:
    x = np.array([[1.0], [2.0], [3.0], [4.0]])
    return Dataset(x, 3.0 * x + 1.0, description="four points on y = 3x + 1")


def parity() -> Dataset:
    numbers = np.arange(1024)
    bits = (numbers[:, None] >> np.arange(9, -1, -1)) & 1
    is_even = numbers % 2 == 0
    X = bits.astype(np.float64)
    Y = np.column_stack([~is_even, is_even]).astype(np.float64)
    return Dataset(
        X[:700], Y[:700], X[700:], Y[700:],
        description="10-bit binary of 0..1023 (most significant bit first); one-hot [odd, even]; "
        "first 700 train, last 324 test",
    )


_HOUSE_PRICE_ROWS = np.array([
    (2104, 3, 399900), (1600, 3, 329900), (2400, 3, 369000), (1416, 2, 232000), (3000, 4, 539900),
    (1985, 4, 299900), (1534, 3, 314900), (1427, 3, 198999), (1380, 3, 212000), (1494, 3, 242500),
], dtype=np.float64)


def house_prices() -> Dataset:
    raw_X, raw_Y = _HOUSE_PRICE_ROWS[:, :2], _HOUSE_PRICE_ROWS[:, 2:]
    x_mean, x_std = raw_X.mean(axis=0), raw_X.std(axis=0)
    y_mean, y_std = raw_Y.mean(axis=0), raw_Y.std(axis=0)
    description = (
        "ten houses (living area in sq ft, bedrooms -> sold price), standardised with population std; "
        f"raw X mean {x_mean.tolist()}, std {x_std.tolist()}; raw Y mean {y_mean.tolist()}, std {y_std.tolist()}"
    )
    return Dataset(_standardise(raw_X, x_mean, x_std), _standardise(raw_Y, y_mean, y_std), description=description)


def xor() -> Dataset:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    return Dataset(X, Y, description="the four points of XOR")


def iris() -> Dataset:
    text = files("symbp").joinpath("data/iris.csv").read_text(encoding="utf-8")
    table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1)
    features, species = table[:, :4], table[:, 4].astype(np.int64)
    train, test = _stratified_split(species, test_fraction=0.2, seed=0)
    mean, std = features[train].mean(axis=0), features[train].std(axis=0)
    return Dataset(
        _standardise(features[train], mean, std), _one_hot(species[train], 3),
        _standardise(features[test], mean, std), _one_hot(species[test], 3),
        description="Fisher's iris: 4 measurements standardised with train mean/std; one-hot "
        "[setosa, versicolor, virginica]; stratified 120 train / 30 test (seed 0)",
    )


def fausett() -> Dataset:
    rng = np.random.default_rng(42)
    X = rng.random((50, 2))
    u1, u2 = rng.random(), rng.random()
    Y = _sigmoid(_sigmoid(X) + 0.1 * u1) + 0.1 * u2
    return Dataset(X, Y, description="50 uniform points, Y = sigmoid(sigmoid(X) + 0.1*u1) + 0.1*u2 (seed 42)")


# --- IDX files ----------------------------------------------------------------------------------

_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 2**24

# --- how much data may be loaded ------------------------------------------------------------------

LIMIT_VARIABLE = "SYMBP_MAX_DATA_BYTES"
DEFAULT_MAX_DATA_BYTES = 2 * 2**30


def max_data_bytes() -> int:
    """The most bytes of float64 data a data file may load into: $SYMBP_MAX_DATA_BYTES, else 2 GiB."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_DATA_BYTES
    if not text.isdigit() or len(text) > 30:
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise DataError(f"{LIMIT_VARIABLE}: {shown!r} is not a whole number of bytes; "
                        f"set it to e.g. {4 * 2**30} for 4 GiB, or unset it for {DEFAULT_MAX_DATA_BYTES}")
    return int(text)


def _size_text(count: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} bytes"


def check_data_size(where: str, values: int) -> None:
    """Refuses, before anything is allocated, data of ``values`` numbers whose float64 form is over the limit."""
    limit = max_data_bytes()
    needed = values * 8
    if needed > limit:
        raise DataError(f"{where}: holds {values:,} values, {_size_text(needed)} as float64, over the limit of "
                        f"{_size_text(limit)}; set {LIMIT_VARIABLE} (in bytes) to allow more")


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (a link to one is fine); DataError otherwise.

    A device, a FIFO or a folder is refused before it is read: /dev/zero would never end, a FIFO would block.
    """
    try:
        status = path.stat()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(status.st_mode):
        raise DataError(f"{path}: not a regular file; give a data file")
    try:
        return path.open("rb")
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed, into an array of the file's own element type."""
    path = Path(path)
    try:
        with open_regular(path) as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            if compressed:
                with gzip.GzipFile(fileobj=raw) as unzipped:
                    return _read_idx_stream(unzipped, path)
            return _read_idx_stream(raw, path)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(f"{path}: corrupt gzip data ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read IDX file ({error.strerror or error})") from None


def _read_idx_stream(stream: BinaryIO, path: Path) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: bad magic number {magic.hex() or '(empty file)'}, not an IDX file")
    dtype, ndim = _IDX_DTYPES[magic[2]], magic[3]
    header = stream.read(4 * ndim)
    if len(header) < 4 * ndim:
        raise DataError(f"{path}: truncated header, expected {ndim} dimension sizes")
    shape = tuple(int(size) for size in np.frombuffer(header, dtype=">u4"))
    # Sized from the header before a byte is decompressed, as the float64 data it becomes.
    check_data_size(f"{path}: shape {shape}", math.prod(shape))
    expected = math.prod(shape) * dtype.itemsize
    data = _read_at_most(stream, expected + 1)
    if len(data) < expected:
        raise DataError(f"{path}: truncated data, expected {expected} bytes for shape {shape}, found {len(data)}")
    if len(data) > expected:
        raise DataError(f"{path}: trailing bytes after the {expected} bytes of shape {shape}")
    return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(shape)


def _read_at_most(stream: BinaryIO, size: int) -> bytes:
    # Chunked so that a header claiming gigabytes in a truncated file does not allocate them up front.
    chunks: list[bytes] = []
    while size > 0:
        chunk = stream.read(min(size, _READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends with ``.gz``."""
    path = Path(path)
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"{path}: IDX cannot store dtype {array.dtype}; use one of uint8, int8, int16, int32, "
                        "float32, float64")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"{path}: IDX needs 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(_IDX_DTYPES[code]).tobytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload)
    path.write_bytes(payload)


# --- MNIST and digits ---------------------------------------------------------------------------

_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_mnist_files(directory: Path) -> dict[str, Path]:
    found, missing = {}, []
    for role, stem in _MNIST_FILES.items():
        candidates = [directory / stem, directory / f"{stem}.gz"]
        existing = [candidate for candidate in candidates if candidate.is_file()]
        if existing:
            found[role] = existing[0]
        else:
            missing.append(f"{stem}[.gz]")
    if missing:
        raise DataError(f"{directory}: MNIST files missing: {', '.join(missing)}")
    return found


def _mnist_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected uint8 images of shape (n, rows, cols), got {images.dtype} "
                        f"{images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected a 1-D list of labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{images_path.name} has {len(images)} images but {labels_path.name} has {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{labels_path}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    pixels = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return pixels, _one_hot(labels, 10)


def load_mnist(directory: str | Path) -> Dataset:
    """MNIST from the four standard IDX files (each optionally .gz): pixels in [0, 1], labels one-hot."""
    directory = Path(directory)
    paths = _find_mnist_files(directory)
    X, Y = _mnist_split(paths["train_images"], paths["train_labels"])
    X_test, Y_test = _mnist_split(paths["test_images"], paths["test_labels"])
    return Dataset(
        X, Y, X_test, Y_test,
        description=f"MNIST from {directory}: {len(X)} train / {len(X_test)} test images, "
        f"{X.shape[1]} pixels scaled to [0, 1], labels one-hot",
    )


def load_digits_8x8() -> Dataset:
    """scikit-learn's 8x8 digits: 64 pixels scaled to [0, 1], one-hot labels, stratified 20% test (seed 0)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the 8x8 digits data set needs scikit-learn: pip install 'symbp[digits]'") from None
    digits = load_digits()
    pixels, labels = digits.data.astype(np.float64) / 16.0, digits.target
    train, test = _stratified_split(labels, test_fraction=0.2, seed=0)
    return Dataset(
        pixels[train], _one_hot(labels[train], 10), pixels[test], _one_hot(labels[test], 10),
        description=f"scikit-learn 8x8 digits: {len(train)} train / {len(test)} test, pixels / 16, labels one-hot",
    )


# --- by name, as a spec's [data] builtin names them ------------------------------------------------


BUILTINS: dict[str, Callable[..., Dataset]] = {
    "actuarial_lab": actuarial_lab,
    "actuarial_lab_keras": actuarial_lab_keras,
    "linear_regression": linear_regression,
    "parity": parity,
    "house_prices": house_prices,
    "xor": xor,
    "iris": iris,
    "fausett": fausett,
    "digits": load_digits_8x8,
}


def load_builtin(name: str) -> Dataset:
    try:
        loader = BUILTINS[name]
    except KeyError:
        close = difflib.get_close_matches(name, BUILTINS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(sorted(BUILTINS))}"
        raise DataError(f"unknown data set {name!r}; {hint}") from None
    return loader()
