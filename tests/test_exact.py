"""Exact-arithmetic gradient descent agrees with the generated module and with the update rule."""

import numpy as np
import sympy as sp

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module
from symbp.symbolic.exact import exact_descent

SPEC = {"name": "line", "inputs": 1, "layers": [{"units": 1, "activation": "linear"}],
        "training": {"learning_rate": 0.1}}
X = [[1], [2], [3], [4]]
Y = [[4], [7], [10], [13]]


def test_first_step_by_hand():
    # L = 1/4 sum (w x + b - y)^2 at (w, b) = (1, 0): residuals -3, -5, -7, -9, so dL/dw = -35, dL/db = -12.
    steps = exact_descent(SPEC, X, Y, {"W1": [[1]], "b1": [0]}, 1)
    assert steps[1]["W1"][0, 0] == 1 + sp.Rational(1, 10) * 35
    assert steps[1]["b1"][0, 0] == sp.Rational(12, 10)


def test_exact_steps_match_the_generated_trainer():
    steps = exact_descent(SPEC, X, Y, {"W1": [[1]], "b1": [0]}, 3)
    assert all(isinstance(v, sp.Rational) for p in steps for m in p.values() for v in m)
    module = load_module_from_source(generate_module(SPEC), "line")
    params, _ = module.train({"W1": np.array([[1.0]]), "b1": np.array([0.0])}, np.array(X, float),
                             np.array(Y, float), epochs=3)
    assert np.isclose(params["W1"][0, 0], float(steps[3]["W1"][0, 0]), rtol=1e-14)
    assert np.isclose(params["b1"][0], float(steps[3]["b1"][0, 0]), rtol=1e-14)


def test_float_initial_values_are_read_as_rationals():
    steps = exact_descent(SPEC, X, Y, {"W1": [[1.0]], "b1": [0.0]}, 2)
    assert all(isinstance(v, sp.Rational) for p in steps for m in p.values() for v in m)
    assert steps[2]["W1"][0, 0] == sp.Rational(43, 20) and steps[2]["b1"][0, 0] == sp.Rational(41, 100)
