"""The runtime that every generated module includes, tested on its own with a hand-written network."""

import math
import warnings

import numpy as np
import pytest
import sympy as sp

from symbp.derivation.backprop import derive
from symbp.runtime import diagnostics, optimizers, training
from symbp.runtime.training import IN_PLACE_FROM, Trainable, WholeSetLoss, run_training
from symbp.symbolic.quantities import (
    BETA1,
    BETA2,
    EPSILON,
    LEARNING_RATE,
    LOSS,
    MOMENT,
    MOMENTUM,
    STEP,
    VELOCITY,
    Current,
    Partial,
    Updated,
)

SETTINGS = {"learning_rate": 0.02, "epochs": 5, "batch_size": None, "seed": 0, "optimizer": "gd", "momentum": 0.9,
            "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7, "tolerance": None}


def _loss(params, X, Y):
    return float(0.5 * np.sum((X @ params["w"] - Y) ** 2))


def _loss_and_grad(params, X, Y):
    error = X @ params["w"] - Y
    return float(0.5 * np.sum(error**2)), {"w": X.T @ error}


LINE = Trainable(loss=_loss, loss_and_grad=_loss_and_grad)


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 2))
    return X, X @ np.array([[1.5], [-0.5]]) + 0.01 * rng.normal(size=(12, 1))


def _train(network, data, **overrides):
    X, Y = data
    return run_training(network, {"w": np.zeros((2, 1))}, X, Y, **{**SETTINGS, **overrides})


def test_gradient_descent_is_the_textbook_loop(data):
    X, Y = data
    params, history = _train(LINE, data, epochs=7)
    w, losses = np.zeros((2, 1)), []
    for _ in range(7):
        w = w - 0.02 * _loss_and_grad({"w": w}, X, Y)[1]["w"]
        losses.append(_loss({"w": w}, X, Y))
    assert np.allclose(params["w"], w, rtol=1e-14, atol=0)
    assert history["loss"] == pytest.approx(losses, rel=1e-14)
    assert history["loss"][-1] == _loss(params, X, Y)
    assert history["stopped"] == "epochs" and history["best_epoch"] is None and "val_loss" not in history


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_momentum_and_adam_follow_their_formulas(data, optimizer):
    X, Y = data
    params, _ = _train(LINE, data, optimizer=optimizer, epochs=4)
    w, v, s = np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1))
    for t in range(1, 5):
        g = X.T @ (X @ w - Y)
        if optimizer == "momentum":
            v = 0.9 * v - 0.02 * g
            w = w + v
        else:
            v, s = 0.9 * v + 0.1 * g, 0.999 * s + 0.001 * g * g
            m_hat, s_hat = v / (1 - 0.9**t), s / (1 - 0.999**t)
            # Keras's placement of epsilon: added to the root of the uncorrected second moment.
            w = w - 0.02 * m_hat / (np.sqrt(s_hat) + 1e-7 / math.sqrt(1 - 0.999**t))
    assert np.allclose(params["w"], w, rtol=1e-12, atol=1e-15)


def test_mini_batches_cover_every_row_once_per_epoch_in_a_seeded_order():
    rng = np.random.default_rng(5)
    parts = training.batches(10, 4, rng)
    assert [len(rows) for rows in parts] == [4, 4, 2]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    assert np.array_equal(np.concatenate(parts), np.random.default_rng(5).permutation(10))
    assert training.batches(10, None, rng) == [slice(None)] == training.batches(10, 10, rng)


def test_sgd_steps_on_each_batch_and_records_the_whole_sets_loss(data):
    X, Y = data
    params, history = _train(LINE, data, batch_size=5, epochs=3, seed=4)
    rng, w, losses = np.random.default_rng(4), np.zeros((2, 1)), []
    for _ in range(3):
        for rows in training.batches(12, 5, rng):
            w = w - 0.02 * _loss_and_grad({"w": w}, X[rows], Y[rows])[1]["w"]
        losses.append(_loss({"w": w}, X, Y))
    assert np.allclose(params["w"], w, rtol=1e-14, atol=0)
    assert history["loss"] == losses


def test_early_stopping_returns_the_best_epochs_parameters(data):
    X, Y = data
    # A validation set whose best fit is w = 0: every step of training makes its loss worse.
    X_val, Y_val = X[:4], np.zeros((4, 1))
    seen = []
    params, history = _train(LINE, data, epochs=50, validation=(X_val, Y_val), patience=3,
                             callback=lambda epoch, logs, params: seen.append(dict(params)) and False)
    assert history["stopped"] == "early_stopping" and history["best_epoch"] == 0
    assert len(history["loss"]) == len(history["val_loss"]) == 4
    assert history["val_loss"][0] == min(history["val_loss"])
    assert np.array_equal(params["w"], seen[0]["w"])


def test_callback_and_tolerance_stop_training(data):
    _, history = _train(LINE, data, epochs=50, callback=lambda epoch, logs, params: epoch == 2)
    assert history["stopped"] == "callback" and len(history["loss"]) == 3
    _, history = _train(LINE, data, epochs=10_000, tolerance=1e-9)
    assert history["stopped"] == "tolerance" and abs(history["loss"][-1] - history["loss"][-2]) < 1e-9


@pytest.mark.parametrize("batch_size", [None, 4])
def test_a_diverging_run_warns_and_returns_the_last_finite_parameters(data, batch_size):
    X, Y = data
    kept = []
    with pytest.warns(RuntimeWarning, match=r"training stopped at epoch \d+, step \d+.*learning rate 1000"):
        params, history = _train(LINE, data, learning_rate=1e3, epochs=500, batch_size=batch_size,
                                 callback=lambda epoch, logs, params: kept.append(dict(params)) and False)
    assert history["stopped"] == "diverged" and 0 < len(history["loss"]) < 500
    assert np.array_equal(params["w"], kept[-1]["w"]) and math.isfinite(_loss(params, X, Y))


def test_likely_causes_are_named_in_the_warning(data):
    network = Trainable(_loss, _loss_and_grad, likely_causes=("the output grows too fast",))
    with pytest.warns(RuntimeWarning, match="or the output grows too fast"):
        _train(network, data, learning_rate=1e3, epochs=500)


def test_bad_arguments_and_a_bad_start_are_value_errors(data):
    X, Y = data
    with pytest.raises(ValueError, match="optimizer: unknown 'rmsprop'"):
        _train(LINE, data, optimizer="rmsprop")
    with pytest.raises(ValueError, match="patience"):
        _train(LINE, data, patience=3)
    with pytest.raises(ValueError, match="starting parameters is nan: X holds NaN"):
        _train(LINE, (np.where(X > 1, np.nan, X), Y))


class Counted:
    """A Trainable whose in-place functions count their calls and compute what the allocating ones do."""

    def __init__(self):
        self.calls = {"loss": 0, "loss_and_grad": 0, "into": 0, "loss_into": 0}

    def network(self, widest):
        def loss(params, X, Y):
            self.calls["loss"] += 1
            return _loss(params, X, Y)

        def loss_and_grad(params, X, Y):
            self.calls["loss_and_grad"] += 1
            return _loss_and_grad(params, X, Y)

        def into(params, X, Y, work):
            self.calls["into"] += 1
            assert X.shape[0] == 2 and work["rows"] == X.shape[1]  # a sample per column
            value, grads = _loss_and_grad(params, X.T, Y.T)
            work["grad_w"][...] = grads["w"]
            return value, {"w": work["grad_w"]}

        def loss_into(params, X, Y, work):
            self.calls["loss_into"] += 1
            return _loss(params, X.T, Y.T)

        return Trainable(loss, loss_and_grad, into, lambda rows, dtype: {"rows": rows,
                         "grad_w": np.empty((2, 1), dtype)}, loss_into, lambda rows, dtype: {}, widest, 1)


def test_large_batches_take_the_in_place_route_and_small_ones_the_allocating_one(data):
    X, Y = data
    counted = Counted()
    wide = counted.network(widest=-(-IN_PLACE_FROM // 5))  # batches of 5 and more rows step in place
    params, history = _train(wide, data, batch_size=5, epochs=2)
    reference, reference_history = _train(LINE, data, batch_size=5, epochs=2)
    assert np.allclose(params["w"], reference["w"], rtol=1e-14, atol=0)
    assert history["loss"] == pytest.approx(reference_history["loss"], rel=1e-14)
    # Each epoch: two batches of 5 in place, one of 2 allocating, the whole set's loss from the forward pass alone.
    assert counted.calls == {"loss": 0, "loss_and_grad": 2, "into": 4, "loss_into": 2}
    assert WholeSetLoss(wide, params, X[:4], Y[:4])() == _loss(params, X[:4], Y[:4])
    assert counted.calls["loss"] == 1


def test_full_batch_training_reads_each_loss_off_the_next_step(data):
    counted = Counted()
    _, history = _train(counted.network(widest=1), data, epochs=6)
    # One step per epoch plus the first; the last loss is measured again by loss() itself.
    assert counted.calls == {"loss": 1, "loss_and_grad": 7, "into": 0, "loss_into": 0}
    assert len(history["loss"]) == 6


def test_optimizer_rules_work_on_arrays_and_numbers_alike():
    update = training.optimizer_update("adam", 0.01, 0.9, 0.9, 0.999, 1e-7)
    params = {"w": np.array([1.0, -2.0])}
    update(params, {"w": np.array([0.5, 0.5])}, 1)
    # Adam's first step moves every parameter by about the learning rate, against the gradient's sign.
    assert np.allclose(params["w"], [0.99, -2.01], atol=1e-6)
    assert optimizers.descent(1.0, 2.0, 0.25) == 0.5
    with pytest.raises(ValueError, match="choose gd, sgd, momentum or adam"):
        training.optimizer_update("rmsprop", 0.1, 0.9, 0.9, 0.999, 1e-7)


def test_diagnostic_numbers():
    A = np.array([[0.999, 0.5], [0.9999, 0.4], [0.001, 0.6]])
    assert diagnostics.saturated_fraction(A, 0.0, 1.0) == 0.5
    assert diagnostics.dead_fraction(np.array([[0.0, 1.0], [0.0, 0.0]]) == 0) == 0.5
    assert diagnostics.gradient_norm({"a": np.array([3.0]), "b": np.array([[4.0]])}, ("a", "b")) == 5.0
    trend = diagnostics.loss_trend({"loss": [4.0, 2.0, 1.0, 3.0], "stopped": "epochs"})
    assert trend["best_epoch"] == 2 and trend["increases"] == 1 and trend["climb"] == 2.0 and trend["rising"]
    assert diagnostics.loss_trend([3.0, 2.0, 1.0])["rising"] is False
    assert diagnostics.loss_trend({"loss": [], "stopped": "diverged"})["rising"]
    layers = [{"gradient_norm": 1e-4}, {"gradient_norm": 1.0}]
    assert diagnostics.diagnosis(0.5, 10, layers, None)["gradient_ratio"] == pytest.approx(1e-4)


def test_parameters_round_trip_through_npz(tmp_path):
    arrays = {"W1": np.arange(6.0).reshape(2, 3), "b1": np.ones(3)}
    training.save_arrays(tmp_path / "p.npz", arrays)
    loaded = training.load_arrays(tmp_path / "p.npz", {"W1": (2, 3), "b1": (3,)})
    assert all(np.array_equal(arrays[name], loaded[name]) for name in arrays)
    with pytest.raises(ValueError, match="W1 has shape"):
        training.load_arrays(tmp_path / "p.npz", {"W1": (3, 2)})
    with pytest.raises(ValueError, match="missing parameter 'W2'"):
        training.load_arrays(tmp_path / "p.npz", {"W2": (1,)})


def test_numpy_warnings_do_not_leak_out_of_training(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _train(LINE, data)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_the_documents_update_rule_is_the_one_train_runs(optimizer):
    """The derivation's SymPy update rule, evaluated on numbers, lands where the runtime's step does."""
    spec = {"name": "one", "inputs": 1, "layers": [{"units": 1, "activation": "linear", "bias": False}],
            "training": {"optimizer": optimizer}}
    chains = {chain.key: chain for section in derive(spec).sections for chain in section.chains}
    parameter, gradient, step_number = 0.7, 0.3, 3
    settings = {"learning_rate": 0.05, "momentum": 0.8, "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-3}
    state = {"velocity": 0.2, "moment": 0.1, "second": 0.04}
    numbers = {LEARNING_RATE: settings["learning_rate"], MOMENTUM: settings["momentum"], BETA1: settings["beta1"],
               BETA2: settings["beta2"], EPSILON: settings["epsilon"], STEP: step_number}
    current = {MOMENT: state["moment"], VELOCITY: state["second"] if optimizer == "adam" else state["velocity"]}

    def evaluate(key, updated=None):
        expr = chains[key].steps[-1].expr
        expr = expr.replace(lambda e: isinstance(e, Partial) and e.args[0] == LOSS, lambda e: sp.Float(gradient))
        expr = expr.replace(lambda e: isinstance(e, Current), lambda e: sp.Float(current.get(e.args[0], parameter)))
        expr = expr.replace(lambda e: isinstance(e, Updated), lambda e: sp.Float((updated or {})[e.args[0]]))
        return float(expr.xreplace(numbers))

    if optimizer == "gd":
        documented = evaluate(next(key for key in chains if key.startswith("update.weight")))
    elif optimizer == "momentum":
        documented = evaluate("update.parameter", {VELOCITY: evaluate("update.velocity")})
    else:
        documented = evaluate("update.parameter", {MOMENT: evaluate("update.moment"),
                                                   VELOCITY: evaluate("update.velocity")})

    update = training.optimizer_update(optimizer, **settings)
    params = {"w": np.array([parameter])}
    # From the state the document's "current" values stand for: the rules optimizer_update applies
    # (test_momentum_and_adam_follow_their_formulas checks that it applies them).
    if optimizer == "momentum":
        velocity = optimizers.momentum_velocity(state["velocity"], gradient, settings["learning_rate"],
                                                settings["momentum"])
        ran = optimizers.momentum_parameter(parameter, velocity)
    elif optimizer == "adam":
        moment = optimizers.adam_moment(state["moment"], gradient, settings["beta1"])
        second = optimizers.adam_second_moment(state["second"], gradient, settings["beta2"])
        rate = optimizers.adam_rate(settings["learning_rate"], settings["beta1"], settings["beta2"], step_number)
        ran = optimizers.adam_parameter(parameter, rate, moment, second, settings["epsilon"], math.sqrt)
    else:
        update(params, {"w": np.array([gradient])}, step_number)
        ran = float(params["w"][0])
    assert documented == pytest.approx(ran, rel=1e-14)
