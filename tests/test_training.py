"""The generated train(): optimizers, mini-batches, stopping rules, callbacks and persistence."""

import numpy as np
import pytest

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module

SPEC = {"name": "xorish", "inputs": 2, "layers": [{"units": 4, "activation": "tanh"},
                                                  {"units": 1, "activation": "sigmoid"}],
        "training": {"learning_rate": 0.5, "epochs": 300}}


@pytest.fixture(scope="module")
def module():
    return load_module_from_source(generate_module(SPEC), "xorish")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    Y = (X[:, :1] + 0.5 * X[:, 1:] > 0).astype(float)
    return X, Y


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "momentum", "adam"])
def test_every_optimizer_lowers_the_loss(module, data, optimizer):
    X, Y = data
    rate = 0.05 if optimizer == "adam" else 0.5
    batch = 16 if optimizer == "sgd" else None
    params, history = module.train(module.init_params(1), X, Y, optimizer=optimizer, learning_rate=rate,
                                   epochs=200, batch_size=batch)
    assert len(history["loss"]) == 200 and history["stopped"] == "epochs"
    assert history["loss"][-1] < 0.5 * module.loss(module.init_params(1), X, Y)
    assert history["loss"][-1] == module.loss(params, X, Y)


def test_training_is_reproducible_and_does_not_touch_its_input(module, data):
    X, Y = data
    start = module.init_params(1)
    before = {k: v.copy() for k, v in start.items()}
    a = module.train(start, X, Y, optimizer="sgd", batch_size=8, epochs=5, seed=3)[0]
    b = module.train(start, X, Y, optimizer="sgd", batch_size=8, epochs=5, seed=3)[0]
    c = module.train(start, X, Y, optimizer="sgd", batch_size=8, epochs=5, seed=4)[0]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    assert all(np.array_equal(start[k], before[k]) for k in start)


def test_one_gd_step_is_the_update_rule(module, data):
    X, Y = data
    start = module.init_params(2)
    _, grads = module.loss_and_grad(start, X, Y)
    after, _ = module.train(start, X, Y, epochs=1, learning_rate=0.1)
    for name in module.PARAMS:
        assert np.allclose(after[name], start[name] - 0.1 * grads[name], rtol=0, atol=1e-15)


CLASSIFIER = {"name": "three_way", "inputs": 3, "layers": [{"units": 6, "activation": "tanh"},
                                                        {"units": 3, "activation": "softmax"}],
              "loss": {"name": "cross_entropy"}}


def _reference_steps(module, X, Y, batches, optimizer, rate):
    """The optimizers' textbook updates, each step from loss_and_grad."""
    settings = module.TRAINING
    params = module.init_params(3)
    velocity = {name: np.zeros_like(value) for name, value in params.items()}
    second = {name: np.zeros_like(value) for name, value in params.items()}
    for step, rows in enumerate(batches, start=1):
        _, grads = module.loss_and_grad(params, X[rows], Y[rows])
        for name, gradient in grads.items():
            if optimizer == "sgd":
                params[name] = params[name] - rate * gradient
            elif optimizer == "momentum":
                velocity[name] = settings["momentum"] * velocity[name] - rate * gradient
                params[name] = params[name] + velocity[name]
            else:
                beta1, beta2 = settings["beta1"], settings["beta2"]
                velocity[name] = beta1 * velocity[name] + (1 - beta1) * gradient
                second[name] = beta2 * second[name] + (1 - beta2) * gradient**2
                corrected = rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
                params[name] = params[name] - corrected * velocity[name] / (np.sqrt(second[name]) + settings["epsilon"])
    return params


@pytest.mark.parametrize("samples_as_columns", [False, True], ids=["rows", "columns"])
@pytest.mark.parametrize("batch_size", [None, 1500], ids=["full", "mini"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_train_takes_the_steps_loss_and_grad_gives(samples_as_columns, batch_size, optimizer):
    # Batches this large take the in-place step (the last mini-batch, of 1000, one of its own size).
    module = load_module_from_source(generate_module(CLASSIFIER, samples_as_columns), "three_way")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4000, 3))
    Y = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    order = np.random.default_rng(9)
    batches = []
    for _ in range(2):
        batches += [slice(None)] if batch_size is None else np.array_split(order.permutation(4000), [1500, 3000])
    rate = 0.01 if optimizer == "adam" else 0.3
    expected = _reference_steps(module, X, Y, batches, optimizer, rate)
    trained, _ = module.train(module.init_params(3), X, Y, epochs=2, learning_rate=rate, batch_size=batch_size,
                              seed=9, optimizer=optimizer)
    for name in module.PARAMS:
        assert np.allclose(trained[name], expected[name], rtol=1e-9, atol=1e-12), name


@pytest.mark.parametrize("samples_as_columns", [False, True], ids=["rows", "columns"])
def test_one_input_and_one_unit_layers_step_in_place(samples_as_columns):
    # W1 is (1, 3) and W3 is (3, 1): products with an inner dimension of 1 in both directions.
    spec = {"name": "thin", "inputs": 1, "layers": [{"units": 3, "activation": "tanh"},
                                                    {"units": 1, "activation": "relu", "bias": False},
                                                    {"units": 1, "activation": "linear"}]}
    module = load_module_from_source(generate_module(spec, samples_as_columns), "thin")
    X = np.linspace(-2, 2, 5000)[:, None]
    Y = np.sin(X)
    params = module.init_params(1)
    value, grads = module.loss_and_grad(params, X, Y)
    step_X, step_Y = (X.T.copy(), Y.T.copy()) if samples_as_columns else (X, Y)
    in_place_value, in_place = module._loss_and_grad_into(params, step_X, step_Y, module._workspace(5000, X.dtype))
    assert in_place_value == pytest.approx(value, rel=1e-12)
    for name in module.PARAMS:
        assert np.allclose(in_place[name], grads[name], rtol=1e-12, atol=1e-15), name


def test_tolerance_and_callback_stop_early(module, data):
    X, Y = data
    _, history = module.train(module.init_params(1), X, Y, epochs=5000, tolerance=1e-3)
    assert 1 < len(history["loss"]) < 5000 and history["stopped"] == "tolerance"
    assert abs(history["loss"][-1] - history["loss"][-2]) < 1e-3 <= abs(history["loss"][-2] - history["loss"][-3])
    seen = []

    def stop_at_four(epoch, logs, params):
        seen.append((epoch, logs["loss"], module.loss(params, X, Y)))
        return epoch == 4

    _, history = module.train(module.init_params(1), X, Y, epochs=50, callback=stop_at_four)
    assert [epoch for epoch, _, _ in seen] == [0, 1, 2, 3, 4] and history["stopped"] == "callback"
    assert [logged for _, logged, _ in seen] == history["loss"][:-1] + [seen[-1][1]]
    assert [logged for _, logged, _ in seen] == pytest.approx([measured for _, _, measured in seen], rel=1e-12, abs=0)


def test_non_finite_loss_stops_with_a_warning_and_finite_params():
    exploding = load_module_from_source(generate_module(
        {"name": "boom", "inputs": 1, "layers": [{"units": 1, "activation": "exponential"}]}), "boom")
    X = np.linspace(1, 3, 20)[:, None]
    Y = np.exp(X)
    with pytest.warns(RuntimeWarning, match="learning rate"):
        params, history = exploding.train(exploding.init_params(0), X, Y, learning_rate=5.0, epochs=100)
    assert all(np.isfinite(v).all() for v in params.values())
    assert np.isfinite(exploding.loss(params, X, Y))
    assert len(history["loss"]) < 100 and history["stopped"] == "diverged"


def test_save_and_load_round_trip(module, tmp_path):
    params = module.init_params(7)
    module.save_params(tmp_path / "p.npz", params)
    loaded = module.load_params(tmp_path / "p.npz")
    assert all(np.array_equal(params[k], loaded[k]) for k in module.PARAMS)
    np.savez(tmp_path / "bad.npz", W1=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="W1 has shape"):
        module.load_params(tmp_path / "bad.npz")


def test_dtype_option_trains_in_float32_end_to_end(module, data):
    X, Y = data
    start = module.init_params(1)
    single, history = module.train(start, X, Y, epochs=20, dtype=np.float32)
    double, _ = module.train(start, X, Y, epochs=20)
    assert all(single[name].dtype == np.float32 for name in module.PARAMS)
    assert all(np.allclose(single[name], double[name], rtol=1e-4, atol=1e-5) for name in module.PARAMS)
    assert all(start[name].dtype == np.float64 for name in module.PARAMS)


@pytest.mark.parametrize("samples_as_columns", [False, True], ids=["rows", "columns"])
def test_the_in_place_step_keeps_float32(samples_as_columns):
    module = load_module_from_source(generate_module(CLASSIFIER, samples_as_columns), "three_way")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 3))
    Y = np.eye(3)[rng.integers(0, 3, 3000)]
    start = module.init_params(5)
    step, seen = module._loss_and_grad_into, set()

    def watched(params, X, Y, work):
        value, grads = step(params, X, Y, work)
        seen.update(array.dtype for array in (X, Y, *grads.values()))
        return value, grads

    module._loss_and_grad_into = watched
    single, _ = module.train(start, X, Y, epochs=3, batch_size=1000, optimizer="momentum", dtype=np.float32)
    assert seen == {np.dtype(np.float32)}
    module._loss_and_grad_into = step
    double, _ = module.train(start, X, Y, epochs=3, batch_size=1000, optimizer="momentum")
    for name in module.PARAMS:
        assert single[name].dtype == np.float32
        assert np.allclose(single[name], double[name], rtol=1e-4, atol=1e-5), name


@pytest.mark.parametrize("optimizer, batch_size", [("gd", None), ("sgd", 16), ("momentum", 20), ("adam", None)])
def test_history_is_the_whole_training_sets_loss_after_each_epoch(module, data, optimizer, batch_size):
    X, Y = data
    rate = 0.05 if optimizer == "adam" else 0.5
    measured = []

    def measure(epoch, logs, params):
        measured.append(module.loss(params, X, Y))

    params, history = module.train(module.init_params(1), X, Y, optimizer=optimizer, learning_rate=rate,
                                   epochs=12, batch_size=batch_size, callback=measure)
    assert history["loss"] == pytest.approx(measured, rel=1e-12, abs=0)
    assert history["loss"][-1] == module.loss(params, X, Y)
    assert history["stopped"] == "epochs" and history["best_epoch"] is None and "val_loss" not in history


def test_validation_loss_is_logged_and_early_stopping_restores_the_best_epoch(module, data):
    X, Y = data
    rng = np.random.default_rng(5)
    # Validation labels that disagree with the training rule: the validation loss soon starts rising.
    X_val = rng.normal(size=(40, 2))
    Y_val = (X_val[:, :1] - X_val[:, 1:] > 0).astype(float)
    logged, snapshots = [], []

    def watch(epoch, logs, params):
        logged.append(logs)
        snapshots.append({name: value.copy() for name, value in params.items()})

    params, history = module.train(module.init_params(1), X, Y, epochs=400, validation=(X_val, Y_val), patience=5,
                                   callback=watch)
    assert history["stopped"] == "early_stopping"
    best = history["best_epoch"]
    assert best == int(np.argmin(history["val_loss"]))
    assert len(history["loss"]) == len(history["val_loss"]) == best + 6 < 400
    assert [logs["val_loss"] for logs in logged] == history["val_loss"]
    assert [logs["loss"] for logs in logged] == history["loss"]
    assert history["val_loss"][best] == pytest.approx(module.loss(params, X_val, Y_val), rel=1e-12, abs=0)
    assert all(np.array_equal(params[name], snapshots[best][name]) for name in module.PARAMS)
    # Without patience the same run goes on to the end, logging the validation loss all the way.
    _, full = module.train(module.init_params(1), X, Y, epochs=best + 10, validation=(X_val, Y_val))
    assert full["stopped"] == "epochs" and full["best_epoch"] is None and len(full["val_loss"]) == best + 10
    assert full["val_loss"][: best + 6] == pytest.approx(history["val_loss"], rel=1e-12, abs=0)


def test_patience_needs_validation(module, data):
    X, Y = data
    with pytest.raises(ValueError, match="patience.*validation"):
        module.train(module.init_params(1), X, Y, epochs=3, patience=2)
    with pytest.raises(ValueError, match="patience"):
        module.train(module.init_params(1), X, Y, epochs=3, patience=0, validation=(X, Y))


ACTUARIAL_DIVERGES = pytest.mark.parametrize("epochs", [1, 2, 3])


@ACTUARIAL_DIVERGES
def test_a_last_step_that_diverges_is_not_returned(epochs):
    # The lab's network with a learning rate of 5: its very first step overflows the exponential output.
    from symbp.data.datasets import load_builtin

    module = load_module_from_source(generate_module("actuarial"), "actuarial")
    data = load_builtin("actuarial_lab")
    start = module.init_params()
    with pytest.warns(RuntimeWarning, match="training stopped at epoch 0, step 1: the loss became inf"):
        params, history = module.train(start, data.X, data.Y, learning_rate=5.0, epochs=epochs)
    assert history["stopped"] == "diverged" and history["loss"] == []
    assert np.isfinite(module.loss(params, data.X, data.Y))
    assert all(np.array_equal(params[name], start[name]) for name in module.PARAMS)


@pytest.mark.parametrize("batch_size", [None, 8])
def test_divergence_mid_run_returns_the_last_epochs_parameters(batch_size):
    # A step a billion times too long: each multiplies the weight by about -1e10, until the loss overflows.
    exploding = load_module_from_source(generate_module(
        {"name": "line", "inputs": 1, "layers": [{"units": 1, "activation": "linear"}]}), "line")
    X = np.linspace(1, 3, 20)[:, None]
    Y = 2 * X
    snapshots = []

    def keep(epoch, logs, params):
        snapshots.append({name: value.copy() for name, value in params.items()})

    with pytest.warns(RuntimeWarning, match="training stopped"):
        params, history = exploding.train(exploding.init_params(0), X, Y, learning_rate=1e9, epochs=100,
                                          batch_size=batch_size, callback=keep)
    assert history["stopped"] == "diverged" and 3 <= len(history["loss"]) == len(snapshots) < 100
    assert all(np.array_equal(params[name], snapshots[-1][name]) for name in exploding.PARAMS)
    assert exploding.loss(params, X, Y) == history["loss"][-1]


@pytest.mark.parametrize("batch_size", [None, 8])
def test_a_starting_loss_that_is_not_finite_is_a_value_error(module, data, batch_size):
    X, Y = data
    X = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="starting parameters is nan: X holds NaN"):
        module.train(module.init_params(1), X, Y, epochs=3, batch_size=batch_size)


def test_integer_data_and_parameters_train_in_floating_point():
    spec = {"name": "ints", "inputs": 2,
            "layers": [{"units": 3, "activation": "tanh"}, {"units": 1, "activation": "linear"}]}
    module = load_module_from_source(generate_module(spec), "ints")
    X, Y = np.ones((5000, 2), dtype=int), np.ones((5000, 1), dtype=int)  # large enough to step in place
    params = {name: np.ones_like(value, dtype=int) for name, value in module.init_params(0).items()}
    assert module.loss(params, X, Y) == pytest.approx(module.loss(params, X.astype(float), Y.astype(float)), rel=1e-12)
    trained, history = module.train(params, X, Y, epochs=2, learning_rate=1e-4, batch_size=1000)
    assert all(trained[name].dtype == np.float64 for name in module.PARAMS) and history["stopped"] == "epochs"
