"""symbp train and symbp reproduce as a person uses them: outputs written, and bad data refused cleanly."""

import io
import os
import sys

import numpy as np
import pytest

from symbp.checks.gradients import load_module_from_source
from symbp.cli.main import main
from symbp.cli.progress import ProgressBar
from symbp.output import write_binary_atomically
from symbp.render.code.numpy_module import generate_module

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IRIS_LIKE = """name = "flowers"
inputs = 2
[[layers]]
units = 4
activation = "tanh"
[[layers]]
units = 3
activation = "softmax"
[loss]
name = "cross_entropy"
[training]
learning_rate = 0.5
epochs = 50
"""


def train(*args):
    return main(["train", *args])


def one_line_error(capsys, fragment):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("symbp: error: ") and fragment in err, err
    assert "Traceback" not in err


def test_train_writes_parameters_plot_and_drawing(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    assert train("parity", "--epochs", "20", "-o", "p.npz", "--plot", "loss.png", "--draw", "net.png") == 0
    out = capsys.readouterr().out
    assert "parity: 20 epochs of sgd, learning rate 0.3, batches of 8 on 700 samples" in out
    assert "test accuracy 1.0000 (324/324)" in out
    assert "wrote p.npz" in out and "wrote loss.png" in out and "wrote net.png" in out
    for picture in ("loss.png", "net.png"):
        assert (tmp_path / picture).read_bytes().startswith(PNG_SIGNATURE)
    module = load_module_from_source(generate_module("parity"), "parity")
    params = module.load_params(tmp_path / "p.npz")
    assert set(params) == {"W1", "b1", "W2", "b2"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["loss.png", "net.png", "p.npz"]


def test_train_defaults_to_name_npz_and_quiet_prints_only_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("xor", "--epochs", "3000", "--quiet") == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("final loss ")
    assert captured.out.splitlines()[1] == "training accuracy 1.0000 (4/4)"
    assert captured.err == ""  # not a terminal and not forced: no progress bar
    assert (tmp_path / "xor.npz").is_file()


def test_overrides_reach_the_generated_train(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("house_prices", "--epochs", "7", "--learning-rate", "0.5", "--optimizer", "adam", "--seed", "3") == 0
    assert "house_prices: 7 epochs of adam, learning rate 0.5, full batch on 10 samples" in capsys.readouterr().out
    assert train("house_prices", "--epochs", "2", "--optimizer", "sgd") == 0
    assert "batches of 32" in capsys.readouterr().out


def test_progress_bar_when_forced(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("fausett", "--epochs", "50", "--progress") == 0
    err = capsys.readouterr().err
    assert err.startswith("\r[") and "50/50 epochs" in err and err.endswith("\n")


def test_progress_bar_pads_over_a_longer_line():
    stream = io.StringIO()
    bar = ProgressBar(3, stream=stream, enabled=True, min_interval=0)
    bar.update(0, 0.123456789)
    bar.update(1, 1.0)
    bar.close()
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second.rstrip("\n")) >= len(first) and "2/3 epochs" in second


def test_missing_matplotlib_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert train("xor", "--plot", "loss.png") == 2
    one_line_error(capsys, "pip install 'symbp[plot]'")
    assert list(tmp_path.iterdir()) == []


def test_csv_with_header_and_class_labels(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    rows = "\n".join(f"{a},{b},{label}" for (a, b), label in zip(X, labels))
    (tmp_path / "flowers.toml").write_text(IRIS_LIKE)
    (tmp_path / "data.csv").write_text("width,height,species\n" + rows + "\n\n")
    out_path = tmp_path / "flowers.npz"
    assert train(str(tmp_path / "flowers.toml"), "--data", str(tmp_path / "data.csv"), "-o", str(out_path)) == 0
    assert "training accuracy" in capsys.readouterr().out
    assert out_path.is_file()


def test_npz_with_test_split(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    labels = (X[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=X[:30], Y=labels[:30], X_test=X[30:], Y_test=labels[30:])
    (tmp_path / "flowers.toml").write_text(IRIS_LIKE)
    assert train(str(tmp_path / "flowers.toml"), "--data", str(tmp_path / "d.npz"), "-o", str(tmp_path / "p.npz")) == 0
    out = capsys.readouterr().out
    assert "test loss" in out and "test accuracy" in out and "/10)" in out


def test_mnist_from_idx_files(tmp_path, tiny_mnist, capsys):
    (tiny_mnist / "unrelated.txt").write_text("not an IDX file")
    args = ["mnist", "--data", str(tiny_mnist), "--epochs", "40", "--batch-size", "20", "-o", str(tmp_path / "m.npz")]
    assert train(*args) == 0
    accuracy = float(capsys.readouterr().out.split("test accuracy ")[1].split()[0])
    assert accuracy >= 0.9


BAD_CSV = {
    "wrong_columns.csv": ("1,2,3,4\n5,6,7,8\n", "line 1 has 4 columns; the spec needs 5 (2 inputs then 3 targets, "
                                               "or 3 with a class label last)"),
    "ragged.csv": ("1,2,0\n5,6\n", "line 2 has 2 columns, the first data line has 3"),
    "nan.csv": ("a,b,c\n1,2,0\n3,nan,1\n", "line 3, column 2 is nan"),
    "empty_cell.csv": ("1,2,0\n3,,1\n", "line 2, column 2 is empty"),
    "word.csv": ("1,2,0\n3,four,1\n", "line 2, column 2 is 'four', not a number"),
    "label_too_big.csv": ("1,2,0\n3,4,3\n", "line 2: label 3 is outside 0..2"),
    "label_fraction.csv": ("1,2,0.5\n", "line 1: label 0.5 is not a whole number"),
    "one_hot_not_summing.csv": ("1,2,1,1,0\n", "Y row 0 sums to 2; cross_entropy after softmax"),
    "header_only.csv": ("a,b,c\n", "no data rows"),
}


@pytest.mark.parametrize("name", sorted(BAD_CSV))
def test_bad_csv_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, name):
    text, message = BAD_CSV[name]
    (tmp_path / name).write_text(text)
    (tmp_path / "flowers.toml").write_text(IRIS_LIKE)
    monkeypatch.chdir(tmp_path)
    assert train("flowers.toml", "--data", name) == 2
    one_line_error(capsys, message)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["flowers.toml", name])


BAD_NPZ = {
    "missing_y": ({"X": np.zeros((3, 2))}, "needs arrays named X and Y; missing Y (found: X)"),
    "wrong_shape": ({"X": np.zeros((3, 5)), "Y": np.zeros(3)}, "X has shape (3, 5); the spec needs (rows, 2)"),
    "rows_differ": ({"X": np.zeros((3, 2)), "Y": np.zeros(4)}, "X has 3 rows but Y has 4"),
    "nan": ({"X": np.array([[0.0, np.nan]]), "Y": np.zeros(1)}, "X[0, 1] is nan"),
    "bad_label": ({"X": np.zeros((2, 2)), "Y": np.array([0, 7])}, "Y[1]: label 7 is outside 0..2"),
    "strings": ({"X": np.array([["a", "b"]]), "Y": np.zeros(1)}, "X has dtype <U1; it must hold numbers"),
    "test_alone": ({"X": np.zeros((2, 2)), "Y": np.zeros(2), "X_test": np.zeros((1, 2))}, "X_test and Y_test together"),
}


@pytest.mark.parametrize("name", sorted(BAD_NPZ))
def test_bad_npz_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, name):
    arrays, message = BAD_NPZ[name]
    np.savez(tmp_path / "d.npz", **arrays)
    (tmp_path / "flowers.toml").write_text(IRIS_LIKE)
    monkeypatch.chdir(tmp_path)
    assert train("flowers.toml", "--data", "d.npz") == 2
    one_line_error(capsys, message)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["d.npz", "flowers.toml"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mnist"], "give the folder holding the four IDX files with --data DIR"),
        (["xor", "--data", "nowhere.csv"], "nowhere.csv: no such file or folder"),
        (["xor", "--data", "flowers.toml"], "unknown data file type '.toml'"),
        (["xor", "--data", "."], "MNIST files missing"),
        (["parity", "--data", "d.csv"], "line 1 has 3 columns; the spec needs 12"),
        (["xor", "-o", "missing/dir/x.npz"], "missing/dir: directory does not exist"),
        (["xor", "--epochs", "-1"], "--epochs: must be at least 0"),
        (["xor", "--learning-rate", "nan"], "--learning-rate: must be a finite number"),
        (["xor", "--patience", "5"], "--patience: early stopping watches a validation loss"),
        (["xor", "--validation", "1"], "--validation: must be a fraction between 0 and 1"),
        (["xor", "--validation", "0.5", "--validation-data", "d.csv"], "--validation: give a fraction"),
        (["xor", "--validation", "0.2"], "leaves no validation samples"),
        (["xor", "--history", "missing/h.csv"], "missing: directory does not exist"),
    ],
)
def test_command_line_mistakes_are_one_line(tmp_path, monkeypatch, capsys, args, message):
    (tmp_path / "flowers.toml").write_text(IRIS_LIKE)
    (tmp_path / "d.csv").write_text("1,2,3\n")
    monkeypatch.chdir(tmp_path)
    assert train(*args) == 2
    one_line_error(capsys, message)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["d.csv", "flowers.toml"]


def test_reproduce_prints_the_table(capsys):
    assert main(["reproduce", "parity", "linear_regression"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["example", "source", "reports", "symbp", "gets", "result", "command"]
    assert any(line.startswith("parity ") and " ok " in line for line in lines)
    assert any("symbp reproduce linear_regression" in line for line in lines)


def test_reproduce_one_example_shows_its_working_and_markdown(capsys):
    assert main(["reproduce", "fausett"]) == 0
    assert "first forward pass from the post's weights" in capsys.readouterr().out
    assert main(["reproduce", "xor", "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("| example | source | source reports | symbp gets | command |")


def test_reproduce_unknown_example(capsys):
    assert main(["reproduce", "partiy"]) == 2
    one_line_error(capsys, "did you mean 'parity'?")


def test_demo_runs_examples_without_weight_tables(capsys):
    assert main(["demo", "xor"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("PASS: solved")


def test_spec_data_path_is_relative_to_the_spec(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "flowers.toml").write_text(IRIS_LIKE + '[data]\npath = "d.npz"\n')
    np.savez(folder / "d.npz", X=np.eye(3)[:, :2], Y=np.array([0, 1, 2]))
    monkeypatch.chdir(tmp_path)
    assert train("project/flowers.toml", "--quiet") == 0
    assert "training accuracy" in capsys.readouterr().out
    written = tmp_path / "flowers.npz"
    umask = os.umask(0)
    os.umask(umask)
    assert written.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    def failing(stream):
        stream.write(b"half a file")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_binary_atomically(tmp_path / "out.npz", failing)
    assert list(tmp_path.iterdir()) == []


def test_diagnose_after_training_reports_each_layer(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("house_prices", "--epochs", "50", "--diagnose", "--quiet") == 0
    out = capsys.readouterr().out
    assert "diagnostics on 10 samples" in out
    assert any(line.startswith("1     sigmoid") for line in out.splitlines())
    assert "gradient norm of the first layer / the last" in out
