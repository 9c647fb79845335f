import gzip
import re

import numpy as np
import pytest

from symbp.data.datasets import BUILTINS, Dataset, load_builtin, load_mnist, read_idx, write_idx
from symbp.errors import DataError

EXPECTED_SHAPES = {
    "actuarial_lab": ((10000, 3), (10000, 1), None),
    "actuarial_lab_keras": ((10000, 3), (10000, 2), None),
    "linear_regression": ((4, 1), (4, 1), None),
    "parity": ((700, 10), (700, 2), ((324, 10), (324, 2))),
    "house_prices": ((10, 2), (10, 1), None),
    "xor": ((4, 2), (4, 1), None),
    "iris": ((120, 4), (120, 3), ((30, 4), (30, 3))),
    "fausett": ((50, 2), (50, 2), None),
    "digits": ((1438, 64), (1438, 10), ((359, 64), (359, 10))),
}

HOUSE_ROWS = np.array([
    (2104, 3, 399900), (1600, 3, 329900), (2400, 3, 369000), (1416, 2, 232000), (3000, 4, 539900),
    (1985, 4, 299900), (1534, 3, 314900), (1427, 3, 198999), (1380, 3, 212000), (1494, 3, 242500),
], dtype=np.float64)


def test_every_builtin_is_checked():
    assert set(BUILTINS) == set(EXPECTED_SHAPES)


@pytest.mark.parametrize("name", sorted(EXPECTED_SHAPES))
def test_builtin_shapes_and_dtypes(name):
    if name == "digits":
        pytest.importorskip("sklearn")
    data = load_builtin(name)
    x_shape, y_shape, test_shapes = EXPECTED_SHAPES[name]
    assert isinstance(data, Dataset)
    assert (data.X.shape, data.Y.shape) == (x_shape, y_shape)
    assert data.X.dtype == data.Y.dtype == np.float64
    if test_shapes is None:
        assert data.X_test is None and data.Y_test is None
    else:
        assert (data.X_test.shape, data.Y_test.shape) == test_shapes
        assert data.X_test.dtype == data.Y_test.dtype == np.float64
    assert data.description
    assert np.isfinite(data.X).all() and np.isfinite(data.Y).all()


def test_actuarial_lab_matches_the_legacy_global_seed_and_formula():
    state_before = np.random.get_state()
    data = load_builtin("actuarial_lab")
    state_after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state_before[1:], state_after[1:], strict=True))

    np.random.seed(0)
    legacy = np.random.randn(10000, 3)
    np.random.set_state(state_before)
    np.testing.assert_array_equal(data.X[0], legacy[0])
    np.testing.assert_array_equal(data.X, legacy)

    hidden = 1 / (1 + np.exp(-data.X @ np.array([[0.25, 0.75], [0.5, 0.5], [0.75, 0.25]])))
    np.testing.assert_allclose(data.Y, np.exp(hidden @ np.array([[2.0], [3.0]])), rtol=1e-12)


def test_linear_regression_is_3x_plus_1():
    data = load_builtin("linear_regression")
    np.testing.assert_array_equal(data.X.ravel(), [1, 2, 3, 4])
    np.testing.assert_array_equal(data.Y.ravel(), [4, 7, 10, 13])


def test_xor_truth_table():
    data = load_builtin("xor")
    expected = np.logical_xor(data.X[:, 0], data.X[:, 1]).astype(float)
    np.testing.assert_array_equal(data.Y[:, 0], expected)
    assert {tuple(row) for row in data.X} == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_parity_bits_labels_and_split():
    data = load_builtin("parity")
    np.testing.assert_array_equal(data.X[5], [0, 0, 0, 0, 0, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(data.Y[5], [1, 0])  # 5 is odd: column 0
    np.testing.assert_array_equal(data.Y[4], [0, 1])  # 4 is even: column 1
    np.testing.assert_array_equal(data.X_test[0], [1, 0, 1, 0, 1, 1, 1, 1, 0, 0])  # 700 = 0b1010111100
    np.testing.assert_array_equal(data.X_test[-1], np.ones(10))  # 1023
    all_X = np.vstack([data.X, data.X_test])
    numbers = all_X @ (2 ** np.arange(9, -1, -1))
    np.testing.assert_array_equal(numbers, np.arange(1024))
    all_Y = np.vstack([data.Y, data.Y_test])
    np.testing.assert_array_equal(all_Y[:, 1], numbers % 2 == 0)
    np.testing.assert_array_equal(all_Y.sum(axis=1), 1)


def test_house_prices_standardised_and_recoverable():
    data = load_builtin("house_prices")
    np.testing.assert_allclose(data.X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.Y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X.std(axis=0), 1, rtol=1e-12)
    np.testing.assert_allclose(data.Y.std(axis=0), 1, rtol=1e-12)

    raw_X, raw_Y = HOUSE_ROWS[:, :2], HOUSE_ROWS[:, 2:]
    recovered_X = data.X * raw_X.std(axis=0) + raw_X.mean(axis=0)
    recovered_Y = data.Y * raw_Y.std(axis=0) + raw_Y.mean(axis=0)
    np.testing.assert_allclose(recovered_X[0], [2104, 3])
    np.testing.assert_allclose(recovered_Y[0], [399900])
    np.testing.assert_allclose(np.hstack([recovered_X, recovered_Y]), HOUSE_ROWS)


def test_house_prices_description_states_raw_statistics():
    numbers = [float(n) for n in re.findall(r"\d+\.\d+", load_builtin("house_prices").description)]
    for expected in (1834.0, 3.1, 313899.9, 98667.33491936426):
        assert any(np.isclose(n, expected) for n in numbers), expected


def test_iris_classes_and_stratified_split():
    data = load_builtin("iris")
    train_counts, test_counts = data.Y.sum(axis=0), data.Y_test.sum(axis=0)
    np.testing.assert_array_equal(test_counts, [10, 10, 10])
    np.testing.assert_array_equal(train_counts + test_counts, [50, 50, 50])
    np.testing.assert_allclose(data.X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.X.std(axis=0), 1, rtol=1e-12)
    np.testing.assert_array_equal(load_builtin("iris").X_test, data.X_test)  # the split is fixed


def test_bundled_iris_csv_is_fishers_data():
    from importlib.resources import files

    lines = files("symbp").joinpath("data/iris.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sepal_length,sepal_width,petal_length,petal_width,species"
    table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    assert table.shape == (150, 5)
    np.testing.assert_array_equal(table[0], [5.1, 3.5, 1.4, 0.2, 0])
    # Fisher's values for samples 35 and 38, which the UCI copy gets wrong.
    np.testing.assert_array_equal(table[34], [4.9, 3.1, 1.5, 0.2, 0])
    np.testing.assert_array_equal(table[37], [4.9, 3.6, 1.4, 0.1, 0])
    np.testing.assert_allclose(table[:, :4].sum(axis=0), [876.5, 458.6, 563.7, 179.9])
    np.testing.assert_array_equal(np.bincount(table[:, 4].astype(int)), [50, 50, 50])


def test_fausett_is_reproducible_and_in_range():
    first, second = load_builtin("fausett"), load_builtin("fausett")
    np.testing.assert_array_equal(first.X, second.X)
    assert ((0 <= first.X) & (first.X < 1)).all()
    np.testing.assert_array_equal(first.X, np.random.default_rng(42).random((50, 2)))
    assert (first.Y > 0.5).all() and (first.Y < 1.1).all()



def test_keras_variant_repeats_the_lab_target():
    lab, keras = load_builtin("actuarial_lab"), load_builtin("actuarial_lab_keras")
    np.testing.assert_array_equal(keras.X, lab.X)
    np.testing.assert_array_equal(keras.Y, np.hstack([lab.Y, lab.Y]))

def test_unknown_builtin_suggests_closest_name():
    with pytest.raises(DataError, match="did you mean 'parity'") as error:
        load_builtin("partiy")
    assert "\n" not in str(error.value)


def test_unknown_builtin_without_close_match_lists_names():
    with pytest.raises(DataError, match="xor"):
        load_builtin("zzzzzz")


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28),
        np.array([7, 0, 9, 3], dtype=np.uint8),
        np.array([[-1.5, 2.25], [3.0, 1e300]], dtype=np.float64),
        np.array([-30000, 5, 30000], dtype=np.int16),
    ],
    ids=["images", "labels", "float64", "int16"],
)
def test_idx_round_trip(tmp_path, suffix, array):
    path = tmp_path / f"data-idx{suffix}"
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    loaded = read_idx(path)
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


def test_idx_header_layout(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([1, 2, 3], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3])


def test_idx_data_is_big_endian(tmp_path):
    path = tmp_path / "values-idx1-short"
    write_idx(path, np.array([1, -2], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x00, 0x01, 0xFF, 0xFE])
    path.write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 1, 0x01, 0x02, 0x03, 0x04]))
    np.testing.assert_array_equal(read_idx(path), [0x01020304])


def test_gzip_is_detected_by_content_not_name(tmp_path):
    path = tmp_path / "compressed-without-suffix"
    plain = bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 5, 6])
    path.write_bytes(gzip.compress(plain))
    np.testing.assert_array_equal(read_idx(path), [5, 6])


def test_read_idx_rejects_truncated_data(tmp_path):
    path = tmp_path / "short-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 5, 1, 2, 3]))
    with pytest.raises(DataError, match="truncated data") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = tmp_path / "short.gz"
    write_idx(path, np.zeros((4, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match=re.escape(str(path))):
        read_idx(path)


def test_read_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"PK\x03\x04 definitely a zip file")
    with pytest.raises(DataError, match="bad magic") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_rejects_trailing_bytes(tmp_path):
    path = tmp_path / "long-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 1, 2, 3]))
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)


def test_read_idx_rejects_absurd_sizes(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + np.array([2**32 - 1] * 3, dtype=">u4").tobytes())
    with pytest.raises(DataError, match="over the limit of 2 GiB; set SYMBP_MAX_DATA_BYTES"):
        read_idx(path)


def _write_mnist(directory, train=5, train_labels=None, test=3, gz=""):
    rng = np.random.default_rng(0)
    write_idx(directory / f"train-images-idx3-ubyte{gz}", rng.integers(0, 256, (train, 28, 28), dtype=np.uint8))
    labels = np.arange(train if train_labels is None else train_labels, dtype=np.uint8) % 10
    write_idx(directory / f"train-labels-idx1-ubyte{gz}", labels)
    write_idx(directory / f"t10k-images-idx3-ubyte{gz}", rng.integers(0, 256, (test, 28, 28), dtype=np.uint8))
    write_idx(directory / f"t10k-labels-idx1-ubyte{gz}", np.array([9, 0, 4][:test], dtype=np.uint8))


@pytest.mark.parametrize("gz", ["", ".gz"])
def test_load_mnist_from_small_files(tmp_path, gz):
    _write_mnist(tmp_path, gz=gz)
    data = load_mnist(tmp_path)
    assert data.X.shape == (5, 784) and data.Y.shape == (5, 10)
    assert data.X_test.shape == (3, 784) and data.Y_test.shape == (3, 10)
    assert data.X.dtype == np.float64
    assert 0 <= data.X.min() and data.X.max() <= 1
    raw = read_idx(tmp_path / f"train-images-idx3-ubyte{gz}")
    np.testing.assert_array_equal(data.X[1], raw[1].ravel() / 255)
    np.testing.assert_array_equal(data.Y.argmax(axis=1), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(data.Y_test.argmax(axis=1), [9, 0, 4])
    np.testing.assert_array_equal(data.Y.sum(axis=1), 1)


def test_load_mnist_names_missing_files(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as error:
        load_mnist(tmp_path)
    assert "train-images-idx3-ubyte" in str(error.value)
    assert "train-labels-idx1-ubyte" not in str(error.value)


def test_load_mnist_rejects_count_mismatch(tmp_path):
    _write_mnist(tmp_path, train=5, train_labels=4)
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_labels_outside_0_to_9(tmp_path):
    _write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 12, 3], dtype=np.uint8))
    with pytest.raises(DataError, match="0..9"):
        load_mnist(tmp_path)
