"""Numbers in the generated code: stable forms agree with the registry, and extreme inputs stay finite."""

import warnings

import numpy as np
import pytest
import sympy as sp

from symbp.checks.gradients import load_module_from_source
from symbp.registry.calculus import activation_calculus
from symbp.registry.rules import ACTIVATIONS, LOSSES, K, RowMax, k, m, y, yhat, z, z_vec
from symbp.render.code.numpy_module import generate_module

# Underflow to zero is the exact float answer for exp(-10000); everything else would be a fault.
STRICT = {"over": "raise", "divide": "raise", "invalid": "raise", "under": "ignore"}
EXTREME = 1e4


def _concrete_rowwise(expr: sp.Expr, units: int, unit: int) -> tuple[sp.Expr, list[sp.Symbol]]:
    """expr written for ``units`` named pre-activations z0, z1, ..., with RowMax as a free symbol."""
    names = sp.symbols(f"z0:{units}", real=True)
    shift = sp.Symbol("M", real=True)
    concrete = expr.subs(RowMax(z_vec), shift).subs({K: units, k: unit}).doit()
    concrete = concrete.replace(lambda e: isinstance(e, sp.Indexed) and e.base == z_vec,
                                lambda e: names[int(e.indices[0])])
    return concrete, [*names, shift]


# Each side of zero separately, where max, min and |z| have plain forms: z = log(1 + w) runs over every positive
# number as w does, and exp(-|z|) is then 1/(1 + w), which SymPy can tell is below 1 (exp(-w) it cannot).
_W = sp.Symbol("w", positive=True)
SIDES = (sp.log(1 + _W), -sp.log(1 + _W), sp.Integer(0))


@pytest.mark.parametrize("name", [n for n, a in ACTIVATIONS.items() if a.stable_expr is not None and not a.rowwise])
def test_stable_activation_equals_the_registry_form(name):
    activation = ACTIVATIONS[name]
    difference = (activation.stable_expr - activation.expr).rewrite(sp.exp).rewrite(sp.log)
    for side in SIDES:
        assert sp.simplify(difference.subs(z, side)) == 0, side
    for point in (-700, -30, -1.5, 0, 0.25, 3, 40, 700):
        want = activation.expr.evalf(40, subs={z: point})
        got = activation.stable_expr.rewrite(sp.log).evalf(40, subs={z: point})
        assert abs(got - want) <= 1e-30 * (1 + abs(want))


@pytest.mark.parametrize("name", [n for n, a in ACTIVATIONS.items() if a.library_expr is not None])
def test_library_activation_is_the_registry_form(name):
    activation = ACTIVATIONS[name]
    assert sp.simplify(activation.library_expr.rewrite(sp.exp) - activation.expr) == 0


def test_stable_softmax_is_the_softmax_for_any_shift():
    softmax = ACTIVATIONS["softmax"]
    for unit in range(3):
        plain, _ = _concrete_rowwise(softmax.expr, 3, unit)
        stable, _ = _concrete_rowwise(softmax.stable_expr, 3, unit)
        assert sp.simplify(stable - plain) == 0


@pytest.mark.parametrize("name", [n for n, loss in LOSSES.items() if loss.stable_expr is not None])
def test_stable_loss_equals_the_loss_of_the_required_output(name):
    loss = LOSSES[name]
    output = ACTIVATIONS[loss.requires_output]
    rng = np.random.default_rng(0)
    if output.rowwise:
        for unit in range(3):
            plain, names = _concrete_rowwise(loss.expr.subs(yhat, output.expr), 3, unit)
            stable, _ = _concrete_rowwise(loss.stable_expr, 3, unit)
            for _ in range(5):
                point = dict(zip(names, rng.normal(scale=5, size=4).tolist()))
                point[y] = float(rng.uniform())
                assert abs((stable - plain).evalf(40, subs=point)) < 1e-25
    else:
        plain = loss.expr.subs(yhat, output.expr)
        difference = plain - loss.stable_expr.rewrite(sp.log)
        for side in SIDES:
            assert sp.simplify(sp.expand_log(difference.subs(z, side), force=True)) == 0, side
        for _ in range(10):
            point = {z: float(rng.normal(scale=20)), y: float(rng.uniform())}
            assert abs((loss.stable_expr.rewrite(sp.log) - plain).evalf(40, subs=point)) < 1e-25


def test_printed_forward_differs_only_in_form():
    sigmoid = activation_calculus("sigmoid")
    assert sigmoid.forward == 1 / (1 + sp.exp(-z))
    assert sigmoid.numeric_forward != sigmoid.forward
    for side in SIDES:
        assert sp.simplify((sigmoid.numeric_forward - sigmoid.forward).subs(z, side)) == 0
    assert activation_calculus("tanh").numeric_forward == activation_calculus("tanh").forward


# (output activation, loss, targets for the rows of Z = [+E, -E, 0]); each exact loss is finite.
OUTPUTS = [
    ("sigmoid", "squared_error", [[1.0], [0.0], [0.5]]),
    ("sigmoid", "binary_cross_entropy", [[0.0], [1.0], [0.3]]),
    ("tanh", "squared_error", [[-1.0], [1.0], [0.0]]),
    ("softplus", "squared_error", [[0.0], [1.0], [0.0]]),
    ("linear", "squared_error", [[0.0], [0.0], [0.0]]),
    ("relu", "squared_error", [[0.0], [1.0], [0.0]]),
]


def _single_layer(activation, loss, units=1):
    spec = {"name": "edge", "inputs": 1, "layers": [{"units": units, "activation": activation,
                                                      "weights": [[1.0] * units], "biases": [0.0] * units}],
            "loss": loss}
    return load_module_from_source(generate_module(spec), "edge")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("activation", "loss", "targets"), OUTPUTS)
def test_extreme_preactivations_stay_finite(activation, loss, targets, dtype):
    module = _single_layer(activation, loss)
    params = module.init_params(dtype=dtype)
    X = np.array([[EXTREME], [-EXTREME], [0.0]], dtype=dtype)
    Y = np.array(targets, dtype=dtype)
    with np.errstate(**STRICT):
        prediction = module.forward(params, X)
        value, grads = module.loss_and_grad(params, X, Y)
        assert module.loss(params, X, Y) == pytest.approx(value, rel=1e-6)
    assert np.isfinite(prediction).all() and np.isfinite(value)
    assert all(np.isfinite(g).all() and g.dtype == dtype for g in grads.values())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_goes_through_log_sum_exp(dtype):
    spec = {"name": "edge", "inputs": 3, "layers": [{"units": 3, "activation": "softmax", "bias": False,
                                                      "weights": [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]}],
            "loss": {"name": "cross_entropy", "reduction": "sum"}}
    module = load_module_from_source(generate_module(spec), "edge")
    params = module.init_params(dtype=dtype)
    # Each row's true class gets a probability of about exp(-2E): zero in floating point, finite in log space.
    X = np.array([[EXTREME, -EXTREME, 0.0], [0.0, EXTREME, -EXTREME]], dtype=dtype)
    Y = np.array([[0, 1, 0], [0, 0, 1]], dtype=dtype)
    with np.errstate(**STRICT):
        value, grads = module.loss_and_grad(params, X, Y)
        probabilities = module.forward(params, X)
    assert value == pytest.approx(4 * EXTREME, rel=1e-6)
    assert np.allclose(probabilities.sum(axis=1), 1) and np.isfinite(grads["W1"]).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_cross_entropy_uses_logits(dtype):
    module = _single_layer("sigmoid", {"name": "binary_cross_entropy", "reduction": "sum"})
    params = module.init_params(dtype=dtype)
    X = np.array([[-EXTREME], [EXTREME], [-40.0]], dtype=dtype)
    Y = np.array([[1.0], [0.0], [1.0]], dtype=dtype)
    with np.errstate(**STRICT):
        value = module.loss(params, X, Y)
    assert value == pytest.approx(2 * EXTREME + 40.0, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_saturated_hidden_layers_stay_quiet(dtype):
    spec = {"name": "deep", "inputs": 1, "layers": [
        {"units": 2, "activation": "sigmoid", "weights": [[1.0, -1.0]]},
        {"units": 2, "activation": "softplus", "weights": [[EXTREME, -EXTREME], [-EXTREME, EXTREME]]},
        {"units": 2, "activation": "softmax", "weights": [[1.0, -1.0], [-1.0, 1.0]]}],
        "loss": "cross_entropy"}
    module = load_module_from_source(generate_module(spec), "deep")
    params = module.init_params(dtype=dtype)
    X = np.array([[EXTREME], [-EXTREME], [3.0]], dtype=dtype)
    Y = np.array([[1, 0], [0, 1], [1, 0]], dtype=dtype)
    with np.errstate(**STRICT):
        value, grads = module.loss_and_grad(params, X, Y)
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in grads.values())


def test_a_diverging_run_warns_once_naming_step_and_causes():
    module = load_module_from_source(generate_module(
        {"name": "boom", "inputs": 1, "layers": [{"units": 1, "activation": "exponential"}]}), "boom")
    X = np.linspace(1, 3, 20)[:, None]
    Y = np.exp(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        params, history = module.train(module.init_params(0), X, Y, learning_rate=5.0, epochs=100)
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert caught[0].category is RuntimeWarning
    assert history["stopped"] == "diverged"
    assert f"training stopped at epoch {len(history['loss'])}, step {len(history['loss']) + 1}" in message
    assert "the learning rate 5.0 is too high (try 0.5)" in message
    assert "the exponential output layer overflows" in message
    assert "NumPy first reported 'overflow'" in message
    assert np.isfinite(module.loss(params, X, Y))


def test_mini_batch_divergence_names_its_step():
    layers = [{"units": 2, "activation": "relu"}, {"units": 1, "activation": "linear"}]
    module = load_module_from_source(generate_module({"name": "boom", "inputs": 1, "layers": layers}), "boom")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 1)) * 10
    Y = 3 * X
    with pytest.warns(RuntimeWarning, match=r"training stopped at epoch \d+, step \d+") as record:
        params, history = module.train(module.init_params(0), X, Y, learning_rate=1.0, epochs=50, batch_size=8)
    assert len(record) == 1 and "exponential" not in str(record[0].message)
    assert all(np.isfinite(v).all() for v in params.values())


def test_quiet_training_raises_no_warning():
    module = _single_layer("sigmoid", "binary_cross_entropy")
    X = np.linspace(-3, 3, 30)[:, None]
    Y = (X > 0).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, history = module.train(module.init_params(), X, Y, learning_rate=50.0, epochs=200)
    assert history["loss"][-1] < history["loss"][0]


def test_rowwise_sum_placeholders_are_registry_symbols():
    assert ACTIVATIONS["softmax"].stable_expr.has(RowMax(z_vec)) and ACTIVATIONS["softmax"].expr.has(m)


def test_a_callbacks_own_arithmetic_is_not_reported_as_training_trouble():
    module = load_module_from_source(generate_module(
        {"name": "calm", "inputs": 1, "layers": [{"units": 1, "activation": "sigmoid"}]}), "calm")
    X = np.linspace(-1, 1, 20)[:, None]
    Y = (X > 0).astype(float)

    def callback(epoch, logs, params):
        np.log(np.zeros(1))  # divides by zero, under the caller's settings
        return False

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(divide="warn"):
            module.train(module.init_params(0), X, Y, epochs=3, callback=callback)
    messages = [str(w.message) for w in caught]
    assert messages == ["divide by zero encountered in log"] * 3, messages
