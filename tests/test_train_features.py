"""symbp train day to day: one loss everywhere, validation and early stopping, the history file, drawings."""

import csv
import io
import re

import numpy as np
import pytest

from symbp.checks.gradients import load_module_from_source
from symbp.cli.commands import train as train_command
from symbp.cli.main import main
from symbp.cli.plots import MAX_LABELLED_EDGES, drawing_plan, loss_curve_png
from symbp.cli.progress import ProgressBar
from symbp.data.datafiles import load_training_data
from symbp.data.splits import validation_split
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import OPTIMIZERS, load_spec

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def train(*args):
    return main(["train", *args])


def printed_number(out: str, prefix: str) -> float:
    (line,) = [line for line in out.splitlines() if line.startswith(prefix)]
    return float(line[len(prefix):].split()[0])


def test_the_progress_bar_the_history_and_the_final_loss_show_the_same_loss(tmp_path, monkeypatch, capsys):
    """iris trains in mini-batches of one with a summed loss: every figure is still the whole set's loss."""
    monkeypatch.chdir(tmp_path)
    assert train("iris", "--epochs", "15", "--progress", "--history", "h.csv") == 0
    captured = capsys.readouterr()
    bar = re.findall(r"loss ([0-9.e+-]+)", captured.err.split("\r")[-1])
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert len(rows) == 15 and list(rows[0]) == ["epoch", "loss"]
    final = printed_number(captured.out, "final loss ")
    assert "final loss" in captured.out and "(training set; summed over 120 samples)" in captured.out
    assert float(bar[0]) == pytest.approx(final, rel=1e-5)
    assert float(rows[-1]["loss"]) == pytest.approx(final, rel=1e-5)
    module = load_module_from_source(generate_module("iris"), "iris")
    data = load_training_data(load_spec("iris"))
    params = module.load_params(tmp_path / "iris.npz")
    assert module.loss(params, data.X, data.Y) == pytest.approx(final, rel=1e-5)


def test_validation_split_is_reproducible_and_stratified():
    Y = np.eye(3)[np.repeat([0, 1, 2], [50, 30, 20])]
    X = np.arange(100.0)[:, None]
    X_train, Y_train, X_val, Y_val = validation_split(X, Y, 0.2, seed=4)
    assert Y_val.sum(axis=0).tolist() == [10, 6, 4] and len(X_train) == 80
    assert sorted(np.concatenate([X_train, X_val]).ravel().tolist()) == X.ravel().tolist()
    again = validation_split(X, Y, 0.2, seed=4)
    np.testing.assert_array_equal(again[2], X_val)
    assert not np.array_equal(validation_split(X, Y, 0.2, seed=5)[2], X_val)
    # Regression targets: a plain random share of the rows.
    _, _, X_val, _ = validation_split(X, X * 0.5, 0.25, seed=0)
    assert len(X_val) == 25


def test_early_stopping_restores_the_best_parameters(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("iris", "--validation", "0.2", "--patience", "3", "--epochs", "400", "--learning-rate", "2",
                 "--history", "h.csv", "--plot", "loss.png") == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert list(rows[0]) == ["epoch", "loss", "val_loss"]
    match = re.search(r"stopped early: no better validation loss in 3 epochs; the parameters of epoch (\d+) restored",
                      out)
    assert match, out
    best = int(match.group(1))
    assert len(rows) < 400 and len(rows) - best == 3
    val_losses = [float(row["val_loss"]) for row in rows]
    assert min(val_losses) == val_losses[best - 1]
    assert printed_number(out, "final loss ") == pytest.approx(float(rows[best - 1]["loss"]), rel=1e-5)
    assert printed_number(out, "validation loss ") == pytest.approx(val_losses[best - 1], rel=1e-5)
    assert "on 96 samples (validation: 24)" in out
    assert (tmp_path / "loss.png").read_bytes().startswith(PNG_SIGNATURE)


def test_validation_data_from_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "val.csv").write_text("x1,x2,y\n0,0,0\n1,1,0\n0,1,1\n")
    assert train("xor", "--validation-data", "val.csv", "--epochs", "20", "--history", "h.csv") == 0
    out = capsys.readouterr().out
    assert "on 4 samples (validation: 3)" in out and "validation loss " in out
    assert "validation accuracy " in out
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert len(rows) == 20 and rows[-1]["val_loss"]


def test_a_diverging_run_fails_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("actuarial", "--learning-rate", "50", "--epochs", "50", "--history", "h.csv") == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("symbp: error: actuarial: training diverged: ") and "nothing written" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec, labelled, named", [
    ({"name": "n321", "inputs": 3, "layers": [{"units": 2, "activation": "sigmoid", "bias": False},
                                              {"units": 1, "activation": "linear", "bias": False}]}, {1, 2}, {0, 1, 2}),
    ({"name": "n453", "inputs": 4, "layers": [{"units": 5, "activation": "tanh"},
                                              {"units": 3, "activation": "softmax"}],
      "loss": {"name": "cross_entropy"}}, set(), {0, 1, 2}),
    ({"name": "n64", "inputs": 64, "layers": [{"units": 32, "activation": "relu"},
                                              {"units": 10, "activation": "softmax"}],
      "loss": {"name": "cross_entropy"}}, set(), {2}),
])
def test_a_drawing_labels_only_what_fits(spec, labelled, named):
    plan = drawing_plan(load_spec(spec))
    assert plan.labelled_layers == labelled and plan.named_columns == named
    assert (plan.note is None) == bool(labelled)
    assert MAX_LABELLED_EDGES < 25  # a 4-5-3 network's first layer, unreadable when labelled


def test_a_large_network_is_drawn_without_stopping_training(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    assert train("digits", "--epochs", "1", "--draw", "net.png") == 0
    out = capsys.readouterr().out
    assert "wrote net.png" in out
    assert "note: net.png: 2410 weights shown by the width and colour of their edges (too many to label)" in out
    assert (tmp_path / "net.png").read_bytes().startswith(PNG_SIGNATURE)


def test_the_loss_plot_draws_both_curves():
    pytest.importorskip("matplotlib")
    stream = io.BytesIO()
    history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.5, 2.5, 2.6], "stopped": "early_stopping", "best_epoch": 1}
    loss_curve_png(history, stream, "net", "squared_error, mean over samples", (80, 20))
    assert stream.getvalue().startswith(PNG_SIGNATURE)


def test_the_history_csv_has_full_precision():
    text = train_command.history_csv({"loss": [0.1 + 0.2, 1e-300], "val_loss": [2.0, 3.0]})
    assert text == "epoch,loss,val_loss\n1,0.30000000000000004,2.0\n2,1e-300,3.0\n"


def test_a_bar_that_stops_early_ends_on_its_last_epoch():
    stream = io.StringIO()
    bar = ProgressBar(100, stream=stream, enabled=True, min_interval=3600)
    for epoch in range(7):
        bar.update(epoch, 1.0 / (epoch + 1), 2.0)
    bar.close()
    assert stream.getvalue().split("\r")[-1].startswith("[##....") and "7/100 epochs" in stream.getvalue()
    assert "val_loss 2" in stream.getvalue() and stream.getvalue().endswith("\n")


def test_the_command_line_offers_the_spec_optimizers():
    assert tuple(train_command.OPTIMIZERS) == tuple(OPTIMIZERS)
