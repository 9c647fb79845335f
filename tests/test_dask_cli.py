"""symbp train --dask: data read a chunk at a time from .npy files, trained to the NumPy module's parameters."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from symbp.checks.gradients import load_module_from_source
from symbp.cli.main import main
from symbp.render.code.numpy_module import generate_module

pytest.importorskip("dask.array")
pytest.importorskip("array_api_compat")

ROWS, CHUNK = 400, 50  # 8 chunks
SETTINGS = {
    "gd": {"epochs": 6, "learning_rate": 0.0005, "optimizer": "gd", "batch_size": None},
    "sgd": {"epochs": 3, "learning_rate": 0.0005, "optimizer": "sgd", "batch_size": 64},
    "adam": {"epochs": 4, "learning_rate": 0.01, "optimizer": "adam", "batch_size": None},
}
CLASSES_SPEC = """name = "classes"
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
learning_rate = 0.1
epochs = 5
"""


@functools.cache
def _numpy_module(spec: str):
    return load_module_from_source(generate_module(spec), f"np_dask_{Path(spec).stem}")


def _lab_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, 3))
    hidden = 1 / (1 + np.exp(-X @ np.array([[0.25, 0.75], [0.5, 0.5], [0.75, 0.25]])))
    return X, np.exp(hidden @ np.array([[2.0], [3.0]]))


def _write(layout: str, folder: Path, X: np.ndarray, Y: np.ndarray) -> list[str]:
    """The data in one of the three layouts --dask reads; returns the --data (and --targets) arguments."""
    if layout == "npy":
        np.save(folder / "X.npy", X)
        np.save(folder / "Y.npy", Y)
        return ["--data", str(folder / "X.npy"), "--targets", str(folder / "Y.npy"), "--chunk-rows", str(CHUNK)]
    if layout == "npz":
        np.savez(folder / "data.npz", X=X, Y=Y)
        return ["--data", str(folder / "data.npz"), "--chunk-rows", str(CHUNK)]
    chunks = folder / "chunks"
    chunks.mkdir()
    for index, start in enumerate(range(0, len(X), CHUNK)):
        np.save(chunks / f"X_{index:03d}.npy", X[start:start + CHUNK])
        np.save(chunks / f"Y_{index:03d}.npy", Y[start:start + CHUNK])
    return ["--data", str(chunks)]


def _history(path: Path) -> list[float]:
    return [float(line.split(",")[1]) for line in path.read_text().splitlines()[1:]]


def _options(settings: dict) -> list[str]:
    options = ["--epochs", str(settings["epochs"]), "--learning-rate", str(settings["learning_rate"]),
               "--optimizer", settings["optimizer"]]
    return options + (["--batch-size", str(settings["batch_size"])] if settings["batch_size"] else [])


@pytest.mark.parametrize("layout", ["npy", "npz", "folder"])
@pytest.mark.parametrize("optimizer", list(SETTINGS))
def test_training_on_chunks_ends_at_the_numpy_modules_parameters(tmp_path, capsys, layout, optimizer):
    X, Y = _lab_data()
    data = _write(layout, tmp_path, X, Y)
    settings = SETTINGS[optimizer]
    assert main(["train", "actuarial", *data, "--dask", *_options(settings), "-o", str(tmp_path / "p.npz"),
                 "--history", str(tmp_path / "h.csv")]) == 0
    out = capsys.readouterr().out
    assert f"on {ROWS} samples in 8 chunks on Dask's threads" in out
    module = _numpy_module("actuarial")
    want, history = module.train(module.init_params(), X, Y, **settings)
    got = module.load_params(tmp_path / "p.npz")
    for name in module.PARAMS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(_history(tmp_path / "h.csv"), history["loss"], rtol=1e-10)
    assert f"final loss {module.loss(want, X, Y):.6g} (training set)" in out


def test_class_labels_in_chunk_files_train_as_one_hot_rows(tmp_path, capsys):
    spec = tmp_path / "classes.toml"
    spec.write_text(CLASSES_SPEC)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(ROWS, 2))
    labels = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    data = _write("folder", tmp_path, X, labels.astype(np.int32))
    assert main(["train", str(spec), *data, "--dask", "-o", str(tmp_path / "p.npz")]) == 0
    out = capsys.readouterr().out
    module = _numpy_module(str(spec))
    Y = np.eye(3)[labels]
    want, _ = module.train(module.init_params(), X, Y)
    got = module.load_params(tmp_path / "p.npz")
    for name in module.PARAMS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)
    right = int(np.sum(module.predict(want, X).argmax(axis=1) == labels))
    assert f"training accuracy {right / ROWS:.4f} ({right}/{ROWS})" in out


def test_the_spec_s_own_data_trains_in_chunks(tmp_path, capsys):
    assert main(["train", "xor", "--dask", "--chunk-rows", "1", "--epochs", "3", "-o", str(tmp_path / "p.npz")]) == 0
    assert "on 4 samples in 4 chunks on Dask's threads" in capsys.readouterr().out


def test_the_array_api_backend_trains_without_dask_as_the_numpy_module_does(tmp_path):
    X, Y = _lab_data()
    np.savez(tmp_path / "data.npz", X=X, Y=Y)
    assert main(["train", "actuarial", "--data", str(tmp_path / "data.npz"), "--backend", "array-api",
                 "--epochs", "5", "-o", str(tmp_path / "p.npz")]) == 0
    module = _numpy_module("actuarial")
    want, _ = module.train(module.init_params(), X, Y, epochs=5)
    got = module.load_params(tmp_path / "p.npz")
    for name in module.PARAMS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, err_msg=name)


def test_training_on_a_distributed_scheduler_ends_at_the_numpy_modules_parameters(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    X, Y = _lab_data()
    data = _write("folder", tmp_path, X, Y)
    settings = SETTINGS["gd"]
    # Workers in this process (no forked interpreters), reached over TCP as a remote scheduler would be.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  dashboard_address=None) as cluster:
        assert main(["train", "actuarial", *data, "--dask", "--scheduler", cluster.scheduler_address,
                     *_options(settings), "-o", str(tmp_path / "p.npz")]) == 0
    out = capsys.readouterr().out
    assert f"on the Dask scheduler at {cluster.scheduler_address} (2 workers)" in out
    module = _numpy_module("actuarial")
    want, _ = module.train(module.init_params(), X, Y, **settings)
    got = module.load_params(tmp_path / "p.npz")
    for name in module.PARAMS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)


# --- refusals: one line, exit 2 (1 for a diverged run), nothing written ---------------------------------------


def _refused(tmp_path, capsys, args, fragment, status=2):
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    assert main(["train", *args, "-o", str(tmp_path / "p.npz")]) == status
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("symbp: error: "), err
    assert fragment in err, err
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before


def _folder(tmp_path) -> Path:
    X, Y = _lab_data()
    _write("folder", tmp_path, X, Y)
    return tmp_path / "chunks"


def test_dask_without_the_array_api_backend_is_refused(tmp_path, capsys):
    _refused(tmp_path, capsys, ["actuarial", "--data", str(_folder(tmp_path)), "--dask", "--backend", "numpy"],
             "--dask: trains the array-API module")


@pytest.mark.parametrize(("options", "fragment"), [
    (["--targets", "Y.npy"], "--targets: reads data for Dask; add --dask"),
    (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler: reads data for Dask; add --dask"),
    (["--dask", "--validation", "0.2"], "--validation-data PATH"),
    (["--dask", "--diagnose"], "--diagnose: diagnoses the NumPy module's training"),
    (["--dask", "--chunk-rows", "0"], "--chunk-rows: must be at least 1, got 0"),
    (["--dask", "--scheduler-timeout", "0"], "--scheduler-timeout: must be a positive number"),
    (["--dask", "--scheduler-timeout", "nan"], "--scheduler-timeout: must be a positive number"),
])
def test_options_that_do_not_fit_together_are_refused(tmp_path, capsys, options, fragment):
    _refused(tmp_path, capsys, ["actuarial", "--data", str(_folder(tmp_path)), *options], fragment)


def test_a_scheduler_that_does_not_answer_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _refused(tmp_path, capsys, ["actuarial", "--data", str(_folder(tmp_path)), "--dask", "--scheduler",
                                f"tcp://127.0.0.1:{port}", "--scheduler-timeout", "1"],
             f"--scheduler: no Dask scheduler answered at tcp://127.0.0.1:{port} within 1 s")


def test_a_scheduler_address_that_is_not_one_is_one_line(tmp_path, capsys):
    _refused(tmp_path, capsys, ["actuarial", "--data", str(_folder(tmp_path)), "--dask", "--scheduler", "nowhere"],
             "--scheduler: 'nowhere' is not a scheduler's address")


def test_dask_missing_names_the_extra_to_install(tmp_path):
    folder = _folder(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    # The interpreter that runs symbp finds no dask: a None in sys.modules makes every import of it fail.
    script = ("import sys; sys.modules['dask'] = None; from symbp.cli.main import main; "
              f"sys.exit(main(['train', 'actuarial', '--data', {str(folder)!r}, '--dask', '-o', "
              f"{str(tmp_path / 'p.npz')!r}]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert result.returncode == 2, result.stderr
    assert result.stderr == 'symbp: error: --dask: Dask is not installed; install it with pip install "symbp[dask]"\n'
    assert sorted(tmp_path.rglob("*")) == before


def _chunk_problem(tmp_path, problem: str) -> Path:
    folder = _folder(tmp_path)
    X, Y = _lab_data()
    if problem == "rows":
        np.save(folder / "Y_003.npy", Y[150:199])
    elif problem == "columns":
        np.save(folder / "X_002.npy", np.hstack([X[100:150], X[100:150, :1]]))
    elif problem == "targets":
        np.save(folder / "Y_005.npy", np.hstack([Y[250:300], Y[250:300]]))
    elif problem == "unpaired":
        (folder / "Y_007.npy").unlink()
    elif problem == "nan":
        bad = X[300:350].copy()
        bad[12, 1] = np.nan
        np.save(folder / "X_006.npy", bad)
    elif problem == "strings":
        np.save(folder / "X_001.npy", X[50:100].astype(str))
    elif problem == "complex":
        np.save(folder / "X_001.npy", X[50:100].astype(complex))
    elif problem == "three-d":
        np.save(folder / "X_004.npy", X[200:250].reshape(50, 3, 1))
    elif problem == "fortran":
        np.save(folder / "X_000.npy", np.asfortranarray(X[:50]))
    elif problem == "truncated":
        path = folder / "X_003.npy"
        path.write_bytes(path.read_bytes()[:-8])
    elif problem == "not-npy":
        (folder / "X_003.npy").write_text("1,2,3\n")
    return folder


@pytest.mark.parametrize(("problem", "fragment"), [
    ("rows", "chunks/X_003.npy has 50 rows but chunks/Y_003.npy has 49"),
    ("columns", "chunks/X_002.npy has 4 columns; the spec needs (rows, 3), one column per input"),
    ("targets", "chunks/Y_005.npy has 2 columns; the spec needs (rows, 1)"),
    ("unpaired", "X_007.npy has no Y_007.npy"),
    ("nan", "chunks/X_006.npy: row 12 holds NaN or infinite values"),
    ("strings", "chunks/X_001.npy has dtype <U"),
    ("complex", "chunks/X_001.npy has dtype complex128; it must hold numbers"),
    ("three-d", "chunks/X_004.npy has shape (50, 3, 1)"),
    ("fortran", "chunks/X_000.npy is stored column by column"),
    ("truncated", "chunks/X_003.npy: the file ends after"),
    ("not-npy", "X_003.npy: not a NumPy .npy array"),
])
def test_bad_chunk_files_are_refused_in_one_line(tmp_path, capsys, problem, fragment):
    folder = _chunk_problem(tmp_path, problem)
    _refused(tmp_path, capsys, ["actuarial", "--data", str(folder), "--dask"], fragment)


def test_bad_npy_and_npz_files_are_refused_in_one_line(tmp_path, capsys):
    X, Y = _lab_data()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y[:-1])
    _refused(tmp_path, capsys, ["actuarial", "--data", str(tmp_path / "X.npy"), "--targets",
                                str(tmp_path / "Y.npy"), "--dask"], "X.npy has 400 rows but Y.npy has 399")
    _refused(tmp_path, capsys, ["actuarial", "--data", str(tmp_path / "X.npy"), "--dask"],
             f"--targets: {tmp_path / 'X.npy'} holds the inputs; give the targets' .npy file with --targets Y.npy")
    np.save(tmp_path / "Y.npy", np.full((ROWS, 1), "a"))
    _refused(tmp_path, capsys, ["actuarial", "--data", str(tmp_path / "X.npy"), "--targets",
                                str(tmp_path / "Y.npy"), "--dask"], "Y.npy has dtype <U1; it must hold numbers")
    np.savez_compressed(tmp_path / "packed.npz", X=X, Y=Y)
    _refused(tmp_path, capsys, ["actuarial", "--data", str(tmp_path / "packed.npz"), "--dask"],
             "packed.npz: X is compressed, so it cannot be read a chunk at a time; write the file with numpy.savez")
    np.savez(tmp_path / "half.npz", X=X)
    _refused(tmp_path, capsys, ["actuarial", "--data", str(tmp_path / "half.npz"), "--dask"],
             "half.npz: needs arrays named X and Y; missing Y (found: X)")
    (tmp_path / "T.npy").mkdir()
    _refused(tmp_path, capsys, ["actuarial", "--data", str(tmp_path / "X.npy"), "--targets", str(tmp_path / "T.npy"),
                                "--dask"], "T.npy: not a regular file")
    with zipfile.ZipFile(tmp_path / "half.npz", "a") as archive:
        archive.writestr("Y.npy", b"not an array")
    _refused(tmp_path, capsys, ["actuarial", "--data", str(tmp_path / "half.npz"), "--dask"],
             "half.npz: Y: not a NumPy .npy array")


def test_a_label_outside_the_classes_is_refused(tmp_path, capsys):
    spec = tmp_path / "classes.toml"
    spec.write_text(CLASSES_SPEC)
    labels = np.arange(ROWS) % 3
    labels[123] = 3
    data = _write("npy", tmp_path, np.zeros((ROWS, 2)), labels)
    _refused(tmp_path, capsys, [str(spec), *data, "--dask"],
             "Y.npy: row 123 holds a class label that is not one of 0..2 (the spec has 3 outputs)")


def test_a_diverging_run_fails_and_writes_nothing(tmp_path, capsys):
    _refused(tmp_path, capsys, ["actuarial", "--data", str(_folder(tmp_path)), "--dask", "--learning-rate", "1e6",
                                "--epochs", "5"], "training diverged", status=1)


def test_a_validation_set_read_in_chunks_stops_training_early_as_the_numpy_module_does(tmp_path, capsys):
    X, Y = _lab_data()
    rng = np.random.default_rng(7)
    X_val = rng.normal(size=(120, 3))
    Y_val = np.exp(1 / (1 + np.exp(-X_val[:, :2])) @ np.array([[2.0], [3.0]])) + rng.normal(size=(120, 1))
    data = _write("npz", tmp_path, X, Y)
    np.savez(tmp_path / "held_out.npz", X=X_val, Y=Y_val)
    settings = {"epochs": 30, "learning_rate": 0.002}
    assert main(["train", "actuarial", *data, "--dask", "--validation-data", str(tmp_path / "held_out.npz"),
                 "--patience", "2", "--epochs", "30", "--learning-rate", "0.002", "-o", str(tmp_path / "p.npz"),
                 "--history", str(tmp_path / "h.csv")]) == 0
    out = capsys.readouterr().out
    module = _numpy_module("actuarial")
    want, history = module.train(module.init_params(), X, Y, validation=(X_val, Y_val), patience=2, **settings)
    assert history["stopped"] == "early_stopping"  # the case this test is about
    assert f"stopped early: no better validation loss in 2 epochs; the parameters of epoch " \
           f"{history['best_epoch'] + 1} restored" in out
    got = module.load_params(tmp_path / "p.npz")
    for name in module.PARAMS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)
    rows = [line.split(",") for line in (tmp_path / "h.csv").read_text().splitlines()]
    assert rows[0] == ["epoch", "loss", "val_loss"]
    np.testing.assert_allclose([float(row[2]) for row in rows[1:]], history["val_loss"], rtol=1e-10)


def test_pictures_and_the_progress_bar_come_from_a_dask_run_too(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data = _write("folder", tmp_path, *_lab_data())
    assert main(["train", "actuarial", *data, "--dask", "--epochs", "3", "--progress", "-o", str(tmp_path / "p.npz"),
                 "--plot", str(tmp_path / "loss.png"), "--draw", str(tmp_path / "net.png")]) == 0
    captured = capsys.readouterr()
    assert "3/3" in captured.err
    for picture in ("loss.png", "net.png"):
        assert (tmp_path / picture).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_test_set_in_the_npz_is_read_in_chunks_too(tmp_path, capsys):
    X, Y = _lab_data()
    np.savez(tmp_path / "data.npz", X=X[:300], Y=Y[:300], X_test=X[300:], Y_test=Y[300:])
    assert main(["train", "actuarial", "--data", str(tmp_path / "data.npz"), "--dask", "--chunk-rows", "30",
                 "--epochs", "4", "-o", str(tmp_path / "p.npz")]) == 0
    out = capsys.readouterr().out
    module = _numpy_module("actuarial")
    want, _ = module.train(module.init_params(), X[:300], Y[:300], epochs=4)
    assert "on 300 samples in 10 chunks" in out
    assert f"test loss {module.loss(want, X[300:], Y[300:]):.6g} (test set)" in out


def test_a_chunk_that_cannot_be_read_during_training_is_one_line(tmp_path, capsys, monkeypatch):
    from symbp.data import chunks

    folder = _folder(tmp_path)

    def gone(self, index):
        raise FileNotFoundError(2, "No such file or directory", self.path)

    # As if the files vanished, or a worker cannot see them, after they were checked.
    monkeypatch.setattr(chunks, "_check_values", lambda *args: None)
    monkeypatch.setattr(chunks.StoredRows, "__getitem__", gone)
    _refused(tmp_path, capsys, ["actuarial", "--data", str(folder), "--dask", "--epochs", "2"],
             "--data: a chunk could not be read during training ([Errno 2] No such file or directory:")
