"""Every catalogue network's generated gradient against finite differences and SymPy's expansion."""

import numpy as np
import pytest

from symbp.checks.gradients import TOLERANCE, check_gradients, load_module_from_source
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec
from symbp.symbolic.expanded import EXPANDED_PARAMETER_LIMIT


def test_gradient_matches_both_oracles(catalogue_spec):
    spec = load_spec(catalogue_spec)
    report = check_gradients(spec, samples=5, seed=3)
    assert report.passed, report.table()
    assert all(p.finite_difference_error < TOLERANCE for p in report.parameters)
    if spec.parameter_count <= EXPANDED_PARAMETER_LIMIT:
        assert all(p.expanded_error is not None and p.expanded_error < 1e-10 for p in report.parameters)


def test_check_catches_a_wrong_gradient():
    spec = load_spec({"name": "net", "inputs": 2, "layers": [{"units": 2, "activation": "sigmoid"},
                                                            {"units": 1, "activation": "linear"}]})
    source = generate_module(spec).replace("grad_W1 = X.T @ delta1", "grad_W1 = 1.001 * (X.T @ delta1)")
    module = load_module_from_source(source, "broken")
    report = check_gradients(spec, module=module)
    assert not report.passed
    broken = {p.name: p for p in report.parameters}["W1"]
    assert broken.finite_difference_error > 1e-4 and broken.expanded_error > 1e-4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_keeps_working_in_float32(dtype):
    spec = load_spec({"name": "net", "inputs": 3, "layers": [{"units": 4, "activation": "tanh"},
                                                            {"units": 3, "activation": "softmax"}],
                      "loss": "cross_entropy"})
    module = load_module_from_source(generate_module(spec), "net")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    Y = np.eye(3)[rng.integers(0, 3, 8)]
    params64 = module.init_params(1)
    params = {k: v.astype(dtype) for k, v in params64.items()}
    value, grads = module.loss_and_grad(params, X.astype(dtype), Y.astype(dtype))
    value64, grads64 = module.loss_and_grad(params64, X, Y)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert abs(value - value64) <= tolerance * abs(value64)
    for name in module.PARAMS:
        assert grads[name].dtype == dtype
        assert np.allclose(grads[name], grads64[name], rtol=tolerance * 10, atol=tolerance)


@pytest.mark.parametrize("samples_as_columns", [False, True], ids=["rows", "columns"])
def test_in_place_training_step_matches_loss_and_grad(catalogue_spec, samples_as_columns):
    spec = load_spec(catalogue_spec)
    module = load_module_from_source(generate_module(spec, samples_as_columns), "net")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(7, spec.inputs))
    Y = np.eye(spec.outputs)[rng.integers(0, spec.outputs, 7)] if spec.outputs > 1 else rng.uniform(0.1, 0.9, (7, 1))
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in module.init_params(2).items()}
    value, grads = module.loss_and_grad(params, X, Y)
    work = module._workspace(7, np.float64)
    step_X, step_Y = (X.T.copy(), Y.T.copy()) if samples_as_columns else (X, Y)
    for _ in range(2):  # the second call reuses the arrays the first one wrote
        in_place_value, in_place = module._loss_and_grad_into(params, step_X, step_Y, work)
        assert in_place_value == pytest.approx(value, rel=1e-12, abs=1e-300)
        for name in module.PARAMS:
            assert np.allclose(in_place[name], grads[name], rtol=1e-12, atol=1e-14), name
        # The forward pass alone, into its own arrays: the loss train() records after each epoch.
        loss_only = module._loss_into(params, step_X, step_Y, module._loss_workspace(7, np.float64))
        assert loss_only == pytest.approx(value, rel=1e-12, abs=1e-300)
