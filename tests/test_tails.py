"""The sigmoid and the binary cross-entropy in generated code, to a few ulps in both tails (against mpmath)."""

import mpmath
import numpy as np
import pytest

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module

STRICT = {"over": "raise", "divide": "raise", "invalid": "raise", "under": "ignore"}
ARGUMENTS = [-1e4, -745.0, -720.0, -700.0, -100.0, -40.0, -37.0, -36.5, -20.0, -3.0, -0.5, -1e-9, 0.0, 1e-9, 0.5,
             3.0, 20.0, 36.5, 37.0, 40.0, 100.0, 700.0, 1e4]
mpmath.mp.prec = 200


def _sigmoid(z):
    return 1 / (1 + mpmath.exp(-mpmath.mpf(float(z))))


def _ulps(got, want, dtype=np.float64):
    """|got - want| in units of the last place of want (of the smallest normal number, below it)."""
    tiny = np.finfo(dtype).tiny
    spacing = float(np.spacing(dtype(max(abs(float(want)), tiny))))
    return float(abs(mpmath.mpf(float(got)) - want) / spacing)


@pytest.fixture(scope="module")
def logistic():
    spec = {"name": "logistic", "inputs": 1,
            "layers": [{"units": 1, "activation": "sigmoid", "weights": [[1.0]], "biases": [0.0]}],
            "loss": "binary_cross_entropy"}
    return load_module_from_source(generate_module(spec), "logistic")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_is_accurate_in_both_tails(logistic, dtype):
    X = np.array(ARGUMENTS, dtype=dtype)[:, None]
    with np.errstate(**STRICT):
        predicted = logistic.predict(logistic.init_params(dtype=dtype), X).ravel()
    assert predicted.dtype == dtype
    worst = max(_ulps(got, _sigmoid(dtype(z)), dtype) for z, got in zip(ARGUMENTS, predicted))
    assert worst <= 3, worst
    # The lower tail keeps its relative precision: no more exact zeros from -37 on (float64).
    if dtype is np.float64:
        assert predicted[ARGUMENTS.index(-40.0)] == pytest.approx(float(_sigmoid(-40)), rel=1e-15, abs=0)
        assert predicted[ARGUMENTS.index(-700.0)] > 0


def _bce(z, y):
    # -log(sigmoid(z)) = log(1 + exp(-z)) and -log(1 - sigmoid(z)) = log(1 + exp(z)), with mpmath's log1p:
    # log(1 - p) itself would need thousands of bits at |z| = 700 before 1 - p kept a digit.
    z, y = mpmath.mpf(float(z)), mpmath.mpf(float(y))
    return y * mpmath.log1p(mpmath.exp(-z)) + (1 - y) * mpmath.log1p(mpmath.exp(z))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
# 0.9, a soft label that is not a binary fraction: y z rounds, and the loss must not lose digits to it.
@pytest.mark.parametrize("target", [0.0, 1.0, 0.25, 0.9])
def test_binary_cross_entropy_is_accurate_for_confident_predictions(logistic, target, dtype):
    params = logistic.init_params(dtype=dtype)
    worst = 0.0
    for z in ARGUMENTS:
        X, Y = np.array([[z]], dtype=dtype), np.array([[target]], dtype=dtype)
        with np.errstate(**STRICT):
            value = logistic.loss(params, X, Y)
            stepped, _ = logistic.loss_and_grad(params, X, Y)
        want = _bce(dtype(z), dtype(target))  # the target as the module holds it
        worst = max(worst, _ulps(value, want, dtype), _ulps(stepped, want, dtype))
    assert worst <= 3, worst


def test_a_confident_right_prediction_keeps_its_small_loss(logistic):
    params = logistic.init_params()
    right = logistic.loss(params, np.array([[40.0], [-40.0]]), np.array([[1.0], [0.0]]))
    # The mean of two equal terms, each log(1 + exp(-40)): 4.2e-18, not the 0 that log(1 + exp(40)) - 40 gives.
    assert right == pytest.approx(float(mpmath.log1p(mpmath.exp(-40))), rel=1e-15, abs=0)
    assert right > 0


@pytest.mark.parametrize("samples_as_columns", [False, True], ids=["rows", "columns"])
def test_the_in_place_step_has_the_same_tails(samples_as_columns):
    # A hidden sigmoid layer and a sigmoid output, on a batch big enough for train()'s in-place step.
    spec = {"name": "tails", "inputs": 1,
            "layers": [{"units": 2, "activation": "sigmoid", "weights": [[1.0, -1.0]], "biases": [0.0, 0.0]},
                       {"units": 1, "activation": "sigmoid", "weights": [[30.0], [-30.0]], "biases": [0.0]}],
            "loss": "binary_cross_entropy"}
    module = load_module_from_source(generate_module(spec, samples_as_columns), "tails")
    X = np.repeat(np.array(ARGUMENTS)[:, None], 200, axis=0)
    Y = (X > 0).astype(float)
    params = module.init_params()
    with np.errstate(**STRICT):
        value, grads = module.loss_and_grad(params, X, Y)
        step_X, step_Y = (X.T.copy(), Y.T.copy()) if samples_as_columns else (X, Y)
        in_place, in_place_grads = module._loss_and_grad_into(params, step_X, step_Y,
                                                              module._workspace(len(X), X.dtype))
    assert in_place == pytest.approx(value, rel=1e-14, abs=0)
    for name in module.PARAMS:
        assert np.allclose(in_place_grads[name], grads[name], rtol=1e-12, atol=1e-300), name
