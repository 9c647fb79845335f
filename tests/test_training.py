"""The generated train(): optimizers, mini-batches, stopping rules, callbacks and persistence."""

import numpy as np
import pytest

from symbp.check import load_module_from_source
from symbp.codegen import generate_module

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
    assert len(history) == 200
    assert history[-1] < 0.5 * history[0]
    assert module.loss(params, X, Y) < history[0]


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
    in_place_value, in_place = module._loss_and_grad_into(params, step_X, step_Y, module._workspace(5000, X.dtype), 0.5)
    assert in_place_value == pytest.approx(value, rel=1e-12)
    for name in module.PARAMS:
        assert np.allclose(in_place[name], 0.5 * grads[name], rtol=1e-12, atol=1e-15), name


def test_tolerance_and_callback_stop_early(module, data):
    X, Y = data
    _, history = module.train(module.init_params(1), X, Y, epochs=5000, tolerance=1e-3)
    assert 1 < len(history) < 5000
    seen = []
    def stop_at_four(epoch, loss, params):
        seen.append(epoch)
        return epoch == 4

    _, history = module.train(module.init_params(1), X, Y, epochs=50, callback=stop_at_four)
    assert seen == [0, 1, 2, 3, 4] and len(history) == 5


def test_non_finite_loss_stops_with_a_warning_and_finite_params():
    exploding = load_module_from_source(generate_module(
        {"name": "boom", "inputs": 1, "layers": [{"units": 1, "activation": "exponential"}]}), "boom")
    X = np.linspace(1, 3, 20)[:, None]
    Y = np.exp(X)
    with pytest.warns(RuntimeWarning, match="learning rate"):
        params, history = exploding.train(exploding.init_params(0), X, Y, learning_rate=5.0, epochs=100)
    assert all(np.isfinite(v).all() for v in params.values())
    assert np.isfinite(exploding.loss(params, X, Y))
    assert len(history) < 100


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

    def watched(params, X, Y, work, scale):
        value, grads = step(params, X, Y, work, scale)
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
